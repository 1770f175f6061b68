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


UDP_LISTENER = {'listener_id': 'l-u', 'protocol': 'UDP', 'protocol_port': 53,
                'default_pool_id': 'p-u'}
UDP_POOL = {'pool_id': 'p-u', 'protocol': 'UDP',
            'lb_algorithm': 'ROUND_ROBIN',
            'members': [{'member_id': 'm-u', 'address': '198.51.100.53',
                         'protocol_port': 53}]}


def l4_state(listeners=(UDP_LISTENER,)):
    return dict(conftest.make_loadbalancer(), listeners=list(listeners),
                pools=[POOL, UDP_POOL])


def calls(agent):
    """The engine calls an agent got, by name (no get_info)."""
    return [call[0] for call in agent.method_calls
            if call[0] in ('upload_l4_config', 'get_l4_config',
                           'delete_loadbalancer', 'loadbalancer_action',
                           'upload_haproxy_config')]


def test_udp_listener_sends_the_l4_document_to_every_amphora(agents):
    amphora_state.push(l4_state(), AMPHORAE, None)
    for amphora in AMPHORAE:
        agent = agents[amphora['mgmt_ip']]
        [upload] = agent.upload_l4_config.call_args_list
        amphora_id, lb_id, document = upload.args
        assert (amphora_id, lb_id) == (amphora['id'], LB_ID)
        assert [listener['id'] for listener in document['listeners']] == [
            'l-u']
        assert document['listeners'][0]['pool']['members'][0]['address'] == (
            '198.51.100.53')
        # Only UDP listeners: haproxy is stopped, not deleted with the L4
        # state, which the agent's DELETE would take too.
        assert calls(agent) == ['upload_l4_config', 'loadbalancer_action']
        agent.loadbalancer_action.assert_called_once_with(LB_ID, 'stop')


def pushed_agent(agents, lb_state):
    """The first amphora's agent once ``lb_state`` is pushed, reset."""
    amphora_state.push(lb_state, AMPHORAE[:1], None)
    agent = agents[AMPHORAE[0]['mgmt_ip']]
    agent.reset_mock()
    return agent


def test_udp_only_on_an_amphora_without_haproxy(agents):
    agent = pushed_agent(agents, l4_state())
    agent.loadbalancer_action.side_effect = agent_client.AgentRejected(
        'PUT', 'https://198.18.0.10:9443/1.0/loadbalancer/x/stop', 404,
        'loadbalancer_id', 'no such load balancer')
    amphora_state.push(l4_state(), AMPHORAE[:1], None)
    agent.upload_l4_config.assert_called_once()
    # The 404 of the stop was met, and passed over.
    agent.loadbalancer_action.assert_called_once_with(LB_ID, 'stop')


def test_new_udp_only_load_balancer_runs_no_haproxy(agents):
    amphora_state.push(l4_state(), AMPHORAE, None, new=True)
    for agent in agents.values():
        assert calls(agent) == ['upload_l4_config']


def test_udp_and_tcp_listeners_run_both_engines(agents):
    amphora_state.push(l4_state([LISTENER, UDP_LISTENER]), AMPHORAE, None)
    for amphora in AMPHORAE:
        agent = agents[amphora['mgmt_ip']]
        # The L4 document first: the agent refuses an invalid one before
        # anything changes, haproxy included.
        assert calls(agent) == ['upload_l4_config', 'upload_haproxy_config',
                                'loadbalancer_action']
        [document] = [call.args[2] for call
                      in agent.upload_l4_config.call_args_list]
        assert [listener['id'] for listener in document['listeners']] == [
            'l-u']
        [text] = [call.args[2] for call
                  in agent.upload_haproxy_config.call_args_list]
        assert 'frontend l-1\n' in text and 'l-u' not in text
        agent.loadbalancer_action.assert_called_once_with(LB_ID, 'start')


def test_last_udp_listener_gone_empties_the_l4_table_of_those_with_one(
        agents):
    amphora_state.push(state(), AMPHORAE, None)
    for agent in agents.values():
        agent.reset_mock()
    holder = agents[AMPHORAE[0]['mgmt_ip']]
    # A side effect: each client made sets the return value afresh.
    held = {'loadbalancer_id': LB_ID, 'flow_limit': 65536,
            'listeners': [{'id': 'l-u', 'protocol': 'UDP', 'port': 53}],
            'health': {}}
    holder.get_l4_config.side_effect = lambda lb_id: held
    amphora_state.push(state(), AMPHORAE, None)
    empty = {'loadbalancer_id': LB_ID, 'flow_limit': 65536, 'listeners': []}
    holder.upload_l4_config.assert_called_once_with(
        AMPHORAE[0]['id'], LB_ID, empty)
    # The agent keeps the empty one: nothing more to remove.
    held = dict(empty, health={})
    amphora_state.push(state(), AMPHORAE, None)
    holder.upload_l4_config.assert_called_once()
    other = agents[AMPHORAE[1]['mgmt_ip']]
    assert other.get_l4_config.call_args_list == [mock.call(LB_ID)] * 2
    other.upload_l4_config.assert_not_called()
    for agent in agents.values():
        agent.delete_loadbalancer.assert_not_called()
        assert agent.loadbalancer_action.call_args_list == [
            mock.call(LB_ID, 'start')] * 2


def test_no_listener_left_is_one_delete(agents):
    amphora_state.push(l4_state(listeners=()), AMPHORAE, None)
    for agent in agents.values():
        assert calls(agent) == ['delete_loadbalancer']


def test_new_tcp_load_balancer_asks_nothing_of_the_l4_engine(agents):
    amphora_state.push(state(), AMPHORAE, None, new=True)
    for agent in agents.values():
        assert calls(agent) == ['upload_haproxy_config',
                                'loadbalancer_action']


def test_refused_l4_document_leaves_haproxy_alone(agents):
    agent = pushed_agent(agents, state())
    agent.upload_l4_config.side_effect = agent_client.AgentRejected(
        'PUT', 'https://198.18.0.10:9443/1.0/loadbalancer/a/b/l4', 400,
        'listeners[0].pool.members[0].address', 'an IPv6 member cannot '
        'serve a listener without an IPv6 address')
    with pytest.raises(agent_client.AgentRejected,
                       match=r'listeners\[0\]\.pool\.members\[0\]'):
        amphora_state.push(l4_state([LISTENER, UDP_LISTENER]),
                           AMPHORAE[:1], None)
    agent.upload_haproxy_config.assert_not_called()
    agent.loadbalancer_action.assert_not_called()


def test_cookie_persistence_fails_before_any_amphora_changes(agents):
    pool = dict(UDP_POOL, session_persistence={'type': 'APP_COOKIE',
                                               'cookie_name': 'c'})
    bad = dict(l4_state(), pools=[POOL, pool])
    with pytest.raises(ValueError, match='session_persistence.type'):
        amphora_state.push(bad, AMPHORAE, None)
    assert agents == {}
