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
"""Tasks on the amphora agents: wait for them, plug the VIP.

What these tasks change lives inside amphorae that the compute tasks'
reverts delete (agents, plugged VFs, firewalls with them), so they have
nothing of their own to undo.
"""

from oslo_log import log as logging
from taskflow import task

from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import conf as sriov_conf

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)


def _amphora_conf():
    return CONF.sriov_amphora


class WaitForAgents(task.Task):
    """Wait until the agent of every amphora answers on its mgmt IP."""

    def execute(self, amphorae):
        timeout = _amphora_conf().boot_timeout
        for amphora in amphorae:
            with amphorae_lib.agent_for(amphora) as agent:
                info = agent.wait_until_up(timeout)
            LOG.info('Amphora %s agent is up at %s: %s', amphora['id'],
                     amphora['mgmt_ip'], info)


class PlugVip(task.Task):
    """Configure each amphora's VRRP VF with its address and the VIPs.

    SINGLE: the VIPs go onto the interface. ACTIVE_STANDBY: they are left
    to VRRP (vip_on_interface false), only routed from the interface.
    """

    def __init__(self, vip_on_interface, **kwargs):
        super(PlugVip, self).__init__(**kwargs)
        self.vip_on_interface = vip_on_interface

    def execute(self, loadbalancer, amphorae, vrrp_ports, vip_plug):
        on_interface = self.vip_on_interface
        timeout = _amphora_conf().interface_timeout
        for amphora, port in zip(amphorae, vrrp_ports):
            with amphorae_lib.agent_for(amphora) as agent:
                agent.wait_for_interface(port['mac_address'], timeout)
                interface = agent.plug_vip(
                    loadbalancer['vip_address'], port['mac_address'],
                    port['ip_address'], vip_plug['subnet_cidr'],
                    gateway=vip_plug['gateway'],
                    host_routes=vip_plug['host_routes'],
                    mtu=vip_plug['mtu'],
                    additional_vips=vip_plug['additional_vips'],
                    vip_on_interface=on_interface)
            LOG.info('Amphora %s: VIP %s plugged on %s (VRRP address %s)',
                     amphora['id'], loadbalancer['vip_address'],
                     interface.get('name'), port['ip_address'])
