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
"""The worker as a provider agent of octavia-driver-agent.

octavia-driver-agent forks one process per enabled provider agent
(``[driver_agent] enabled_provider_agents = amphora-sriov``) with Octavia's
configuration already loaded, calls ``provider_agent(exit_event)`` and calls
it again if it raises.
"""

from oslo_log import log as logging

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import service

LOG = logging.getLogger(__name__)

_SOCKETS = ('status_socket_path', 'stats_socket_path', 'get_socket_path')


def _warn_on_socket_mismatch(conf):
    # Inside the driver-agent the sockets to report to are the ones it
    # serves; a different path in [sriov_worker] is almost surely a mistake.
    driver_agent = getattr(conf, 'driver_agent', None)
    if driver_agent is None:
        return
    for option in _SOCKETS:
        ours = getattr(conf.sriov_worker, option)
        theirs = getattr(driver_agent, option, ours)
        if ours != theirs:
            LOG.warning('[sriov_worker] %s is %s but this driver-agent '
                        'serves %s.', option, ours, theirs)


def provider_agent(exit_event, conf=sriov_conf.CONF):
    """Run the worker (and its health reports) until ``exit_event``."""
    _warn_on_socket_mismatch(conf)
    service.run(conf, exit_event)
