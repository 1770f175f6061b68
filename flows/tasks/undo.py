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
"""How every task's revert undoes what it made."""

import contextlib

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def reverting(what):
    """Undo ``what`` without ever raising.

    A revert that raised would stop taskflow from reverting the tasks
    before it, the one marking the load balancer ERROR among them, and
    leave the load balancer PENDING for good. What a failed undo leaves
    behind carries the load balancer's names and metadata, so deleting the
    load balancer in ERROR removes it.
    """
    try:
        yield
    except Exception:
        LOG.exception('Could not undo %s; deleting the load balancer in '
                      'ERROR removes what is left', what)
