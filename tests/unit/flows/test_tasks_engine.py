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
"""The engine tasks: haproxy and keepalived configurations to the agents."""

from unittest import mock

import pytest

from flows.tasks import amphora_state
from flows.tasks import engine
from sriov_octavia.amphora import client as agent_client
from tests.unit.flows import conftest

LB_ID = conftest.LB_ID
AMPHORAE = [{'id': 'amp-m', 'role': 'MASTER', 'mgmt_ip': '198.18.0.10'},
            {'id': 'amp-b', 'role': 'BACKUP', 'mgmt_ip': '198.18.0.11'}]
VRRP_PORTS = [{'mac_address': 'fa:16:3e:00:00:01',
               'ip_address': '203.0.113.21'},
              {'mac_address': 'fa:16:3e:00:00:02',
               'ip_address': '203.0.113.22'}]
LISTENER = {'listener_id': 'l-1', 'protocol': 'TCP', 'protocol_port': 80,
            'default_pool_id': 'p-1'}
POOL = {'pool_id': 'p-1', 'protocol': 'TCP', 'lb_algorithm': 'ROUND_ROBIN',
        'members': [{'member_id': 'm-1', 'address': '198.51.100.20',
                     'protocol_port': 8080}]}


def state(listeners=(LISTENER,)):
    return dict(conftest.make_loadbalancer(), listeners=list(listeners),
                pools=[POOL])


def test_haproxy_goes_to_every_amphora_and_starts(agents):
    engine.push_haproxy(state(), AMPHORAE)
    for amphora in AMPHORAE:
        agent = agents[amphora['mgmt_ip']]
        [upload] = agent.upload_haproxy_config.call_args_list
        amphora_id, lb_id, text = upload.args
        assert (amphora_id, lb_id) == (amphora['id'], LB_ID)
        assert 'frontend l-1\n' in text
        assert (f'stats socket /var/lib/amphora-agent/haproxy/{LB_ID}.sock'
                in text)
        agent.loadbalancer_action.assert_called_once_with(LB_ID, 'start')
        agent.delete_loadbalancer.assert_not_called()


def test_last_listener_gone_removes_haproxy(agents):
    engine.push_haproxy(state(listeners=()), AMPHORAE)
    for amphora in AMPHORAE:
        agent = agents[amphora['mgmt_ip']]
        agent.delete_loadbalancer.assert_called_once_with(LB_ID)
        agent.upload_haproxy_config.assert_not_called()
        agent.loadbalancer_action.assert_not_called()


def test_refused_configuration_is_not_started(agents):
    agents_ip = AMPHORAE[0]['mgmt_ip']
    engine.push_haproxy(state(), AMPHORAE[:1])
    agent = agents[agents_ip]
    agent.reset_mock()
    agent.upload_haproxy_config.side_effect = agent_client.AgentRejected(
        'PUT', 'https://198.18.0.10:9443/1.0/loadbalancer/x/haproxy', 400,
        'config', 'haproxy -c: parsing error')
    with pytest.raises(agent_client.AgentRejected, match='parsing error'):
        engine.push_haproxy(state(), AMPHORAE[:1])
    agent.loadbalancer_action.assert_not_called()


def test_keepalived_on_each_vf_with_the_other_as_peer(agents, worker_conf):
    names = {'198.18.0.10': 'ens5', '198.18.0.11': 'ens6'}
    for ip, name in names.items():
        agents[ip] = agent = mock.MagicMock()
        agent.wait_for_interface.side_effect = (
            lambda mac, timeout, name=name: {'name': name})
    amphora_state.push(conftest.make_loadbalancer(), AMPHORAE, VRRP_PORTS,
                       keepalived=True, new=True)
    for amphora, port, peer in zip(AMPHORAE, VRRP_PORTS,
                                   reversed(VRRP_PORTS)):
        agent = agents[amphora['mgmt_ip']]
        agent.wait_for_interface.assert_called_once_with(
            port['mac_address'], 60)
        [text] = agent.upload_keepalived_config.call_args.args
        name = names[amphora['mgmt_ip']]
        assert f'interface {name}\n' in text
        assert f'unicast_src_ip {port["ip_address"]}\n' in text
        assert f'        {peer["ip_address"]}\n' in text
        assert f'203.0.113.5 dev {name}\n' in text
        assert 'script "/var/lib/amphora-agent/vrrp-check"' in text
        agent.vrrp_action.assert_called_once_with('start')


def test_single_amphora_has_no_keepalived(agents, worker_conf):
    amphora_state.push(conftest.make_loadbalancer(), AMPHORAE[:1],
                       VRRP_PORTS[:1], new=True)
    assert agents == {}


def test_load_balancer_created_without_listeners_starts_no_haproxy(agents):
    amphora_state.push(conftest.make_loadbalancer(), AMPHORAE, None,
                       new=True)
    assert agents == {}
    amphora_state.push(state(), AMPHORAE, None, new=True)
    assert sorted(agents) == ['198.18.0.10', '198.18.0.11']
