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
"""Tasks on the amphora agents: wait for them, plug the VIP, firewall.

What these tasks change lives inside amphorae that the compute tasks'
reverts delete (agents, plugged VFs, firewalls with them), so they have
nothing of their own to undo.
"""

from oslo_config import cfg
from oslo_log import log as logging
from taskflow import task

from sriov_octavia.amphora import client as agent_client
from sriov_octavia.amphora import firewall_rules
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def _amphora_conf():
    sriov_conf.register_opts(CONF)
    return CONF.sriov_amphora


def agent_for(amphora):
    """A client for the amphora's agent, as the configuration says."""
    return agent_client.AgentClient.from_conf(
        amphora['mgmt_ip'], amphora_id=amphora.get('amphora_id'))


def push_firewall(loadbalancer, amphorae, vrrp_ips, pools=None):
    """Put the whole firewall state in force on each amphora.

    :param amphorae: the amphora dicts, ``vrrp_ips`` their VRRP addresses
        in the same order.
    :param pools: all the load balancer's pools, when the caller has them
        in a newer state than ``loadbalancer`` (see
        ``firewall_rules.security_group_body``).
    """
    for amphora, vrrp_ip in zip(amphorae, vrrp_ips):
        body = firewall_rules.security_group_body(loadbalancer, vrrp_ips,
                                                  vrrp_ip, pools=pools)
        with agent_for(amphora) as agent:
            agent.set_security_group(body)
        LOG.info('Amphora %s: firewall in force for %d listener(s), %d '
                 'VRRP peer(s), %d member(s)', amphora['id'],
                 len(body['listeners']), len(body['vrrp_peers']),
                 len(body['members']))


class WaitForAgents(task.Task):
    """Wait until the agent of every amphora answers on its mgmt IP."""

    def execute(self, amphorae):
        timeout = _amphora_conf().boot_timeout
        for amphora in amphorae:
            with agent_for(amphora) as agent:
                info = agent.wait_until_up(timeout)
            LOG.info('Amphora %s agent is up at %s: %s', amphora['id'],
                     amphora['mgmt_ip'], info)


class PlugVip(task.Task):
    """Configure each amphora's VRRP VF with its address and the VIPs.

    SINGLE: the VIPs go onto the interface. ACTIVE_STANDBY: they are left
    to VRRP (vip_on_interface false), only routed from the interface.
    """

    def execute(self, loadbalancer, flavor, amphorae, vrrp_ports,
                vip_plug):
        on_interface = (flavor[sriov_flavor.LOADBALANCER_TOPOLOGY] ==
                        sriov_flavor.TOPOLOGY_SINGLE)
        timeout = _amphora_conf().interface_timeout
        for amphora, port in zip(amphorae, vrrp_ports):
            with agent_for(amphora) as agent:
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


class ApplyFirewall(task.Task):
    """sriov_vip: put the amphora firewall in force on each amphora.

    A VF has no Neutron security groups; the firewall lets in the
    listeners' allowed CIDRs, VRRP from the peers and the members' replies,
    and nothing else. Without sriov_vip the VRRP ports have security
    groups and the amphorae keep no firewall of their own.
    """

    def execute(self, loadbalancer, flavor, amphorae, vrrp_ports):
        if not flavor[sriov_flavor.SRIOV_VIP]:
            return
        push_firewall(loadbalancer, amphorae,
                      [port['ip_address'] for port in vrrp_ports])
