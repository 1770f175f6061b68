# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Flow persistence: the SQL database holding taskflow's logbooks.

Every task's state and result is written there while a flow runs, so the
worker that takes over the job of a dead worker continues the flow where it
stopped instead of running finished tasks again.
"""

import contextlib
import threading

from oslo_log import log as logging
from taskflow.persistence import backends

LOG = logging.getLogger(__name__)

# Schemas this process has already brought up to date: the migration check
# costs a round of queries, a post or a worker start needs it once.
_UPGRADED = set()
_UPGRADE_LOCK = threading.Lock()


def _ensure_schema(backend, url):
    with _UPGRADE_LOCK:
        if url in _UPGRADED:
            return
        with contextlib.closing(backend.get_connection()) as connection:
            # taskflow's own alembic migrations create or upgrade the tables.
            connection.upgrade()
        _UPGRADED.add(url)
        LOG.debug('Flow persistence schema is up to date.')


@contextlib.contextmanager
def backend(conf):
    """The persistence backend with an up-to-date schema; closed on exit.

    The URL is ``[sriov_worker] persistence_connection``.
    """
    url = conf.sriov_worker.persistence_connection
    persistence = backends.fetch({'connection': url})
    try:
        _ensure_schema(persistence, url)
        yield persistence
    finally:
        persistence.close()
