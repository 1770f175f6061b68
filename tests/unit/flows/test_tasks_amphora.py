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

from unittest import mock

import pytest

from flows.tasks import amphora
from flows.tasks import amphora_state
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import flavor as sriov_flavor
from tests.unit.flows import conftest

AMPHORAE = [{'id': 'server-m', 'role': 'MASTER', 'mgmt_ip': '198.18.0.10'},
            {'id': 'server-b', 'role': 'BACKUP', 'mgmt_ip': '198.18.0.11'}]
PORTS = [{'id': 'port-m', 'mac_address': 'fa:16:3e:00:00:01',
          'ip_address': '203.0.113.10'},
         {'id': 'port-b', 'mac_address': 'fa:16:3e:00:00:02',
          'ip_address': '203.0.113.11'}]
VIP_PLUG = {'subnet_cidr': '203.0.113.0/24', 'gateway': '203.0.113.1',
            'host_routes': [], 'mtu': 1500, 'additional_vips': []}


def test_agent_client_uses_octavias_certificates(worker_conf):
    worker_conf.import_group('haproxy_amphora', 'octavia.common.config')
    worker_conf.set_override('client_cert', '/c.pem',
                             group='haproxy_amphora')
    worker_conf.set_override('server_ca', '/ca.pem', group='haproxy_amphora')
    try:
        client = amphorae.agent_for(AMPHORAE[0])
    finally:
        worker_conf.clear_override('client_cert', group='haproxy_amphora')
        worker_conf.clear_override('server_ca', group='haproxy_amphora')
    assert client.base_url == 'https://198.18.0.10:9443'
    assert (client._cert, client._ca_cert) == ('/c.pem', '/ca.pem')
    client.close()


def test_wait_for_agents_uses_the_boot_timeout(agents, worker_conf):
    worker_conf.set_override('boot_timeout', 42, group='sriov_amphora')
    try:
        amphora.WaitForAgents().execute(AMPHORAE)
    finally:
        worker_conf.clear_override('boot_timeout', group='sriov_amphora')
    assert sorted(agents) == ['198.18.0.10', '198.18.0.11']
    for agent in agents.values():
        agent.wait_until_up.assert_called_once_with(42)
        agent.__exit__.assert_called_once()


def test_unreachable_agent_fails_the_task(agents):
    agent = amphorae.agent_for(AMPHORAE[0])
    agent.wait_until_up.side_effect = agent_client.AgentUnreachable(
        'https://198.18.0.10:9443', 'timed out')
    with pytest.raises(agent_client.AgentUnreachable):
        amphora.WaitForAgents().execute(AMPHORAE[:1])


@pytest.mark.parametrize('topology, on_interface', [
    (sriov_flavor.TOPOLOGY_SINGLE, True),
    (sriov_flavor.TOPOLOGY_ACTIVE_STANDBY, False),
])
def test_plug_vip_waits_for_the_vf_then_plugs(agents, topology,
                                              on_interface):
    loadbalancer = conftest.make_loadbalancer()
    amphora.PlugVip(on_interface).execute(loadbalancer, AMPHORAE, PORTS,
                                          VIP_PLUG)
    for amp, port in zip(AMPHORAE, PORTS):
        agent = agents[amp['mgmt_ip']]
        assert agent.method_calls[:2] == [
            mock.call.wait_for_interface(port['mac_address'], 60),
            mock.call.plug_vip('203.0.113.5', port['mac_address'],
                               port['ip_address'], '203.0.113.0/24',
                               gateway='203.0.113.1', host_routes=[],
                               mtu=1500, additional_vips=[],
                               vip_on_interface=on_interface)]


def test_firewall_for_sriov_vip_names_the_peers(agents):
    loadbalancer = dict(conftest.make_loadbalancer(), listeners=[
        {'listener_id': 'l-1', 'protocol': 'HTTP', 'protocol_port': 80,
         'allowed_cidrs': ['198.51.100.0/24']}])
    amphora_state.push(loadbalancer, AMPHORAE, PORTS, firewall=True,
                       new=True)
    master = agents['198.18.0.10'].set_security_group.call_args.args[0]
    assert master == {
        'vip_interfaces': ['203.0.113.10'],
        'listeners': [{'protocol': 'TCP', 'port': 80,
                       'allowed_cidrs': ['198.51.100.0/24']}],
        'vrrp_peers': ['203.0.113.11'], 'members': []}
    backup = agents['198.18.0.11'].set_security_group.call_args.args[0]
    assert backup['vip_interfaces'] == ['203.0.113.11']
    assert backup['vrrp_peers'] == ['203.0.113.10']


def test_no_firewall_without_sriov_vip(agents):
    amphora_state.push(conftest.make_loadbalancer(), AMPHORAE, PORTS,
                       firewall=False, new=True)
    assert agents == {}
