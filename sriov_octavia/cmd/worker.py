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
"""sriov-octavia-worker: the worker as a service of its own.

The same conductor as the driver-agent's provider agent, for deployments
that run workers apart from octavia-driver-agent (or more of them):
``sriov-octavia-worker --config-file /etc/octavia/octavia.conf``.
SIGTERM and SIGINT stop it cleanly: running flows suspend after their
current task and their jobs go back to the jobboard.
"""

import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import service

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)


def main(argv=None, conf=None):
    conf = conf or cfg.CONF
    logging.register_options(conf)
    conf(sys.argv[1:] if argv is None else argv,
         project='octavia', prog='sriov-octavia-worker')
    logging.setup(conf, 'sriov-octavia-worker')

    stop = threading.Event()

    def _stop(signum, frame):
        LOG.info('Signal %d received, stopping.', signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.run(conf, stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
