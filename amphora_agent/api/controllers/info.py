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
"""``GET /1.0/info``: who this agent is and what it can do.

The controller polls it after booting an amphora to learn that the agent is
up (as upstream's flows poll upstream's ``/info``), and reads ``firewall``
to know that this agent filters SR-IOV ports itself. From the engine, it
also learns the haproxy version, where haproxy's stats sockets go and the
VRRP check script to name in keepalived's configuration. Given the
firewall, ``firewall_repairs`` says how often its table was found changed
(by hand?) and put right, and when last.
"""

import socket

from oslo_config import cfg
import pbr.version

from amphora_agent.api.controllers import base

API_VERSION = '1.0'

# What this agent's firewall offers callers; it changes only with the code.
FIREWALL_CAPABILITY = {
    'backend': 'nftables',
    'stateless': True,
    'endpoints': ['security-group', 'security-group/counters',
                  'interface/{ip}/rules'],
    'protocols': ['TCP', 'UDP', 'SCTP', 'VRRP'],
}


def agent_version():
    return pbr.version.VersionInfo('sriov-octavia').version_string()


def _amphora_id():
    group = getattr(cfg.CONF, 'amphora_agent', None)
    return getattr(group, 'amphora_id', None) if group else None


def info_endpoint(network_namespace, engine, firewall):
    def show():
        answer = dict({
            'hostname': socket.gethostname(),
            'amphora_id': _amphora_id(),
            'api_version': API_VERSION,
            'agent_version': agent_version(),
            'network_namespace': network_namespace,
            'firewall': FIREWALL_CAPABILITY,
        }, **engine.info())
        answer['firewall_repairs'] = firewall.repairs()
        return answer
    return base.Endpoint(get=show)
