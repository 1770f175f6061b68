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
"""The amphora firewall follows listeners, pools, members and monitors."""

import copy

import pytest

from flows.tasks import amphora_state
from flows.tasks import lb_state
from flows.tasks import network
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import flavor as sriov_flavor
from tests.unit.flows import conftest

LB_ID = conftest.LB_ID
CIDR = '198.51.100.0/24'
MEMBER = {'member_id': 'm-1', 'pool_id': 'p-1', 'address': '198.51.100.20',
          'protocol_port': 8080, 'admin_state_up': True}
POOL = {'pool_id': 'p-1', 'protocol': 'TCP', 'members': [MEMBER],
        'healthmonitor': None, 'admin_state_up': True}
LISTENER = {'listener_id': 'l-1', 'protocol': 'TCP', 'protocol_port': 80,
            'allowed_cidrs': None, 'default_pool_id': 'p-1',
            'default_pool': POOL, 'admin_state_up': True}


def octavia_lb(listeners=(), pools=()):
    """The load balancer as the driver-agent returns it."""
    return dict(conftest.make_loadbalancer(),
                listeners=copy.deepcopy(list(listeners)) or None,
                pools=copy.deepcopy(list(pools)) or None)


# apply_change / apply_member_batch


def test_created_listener_missing_in_octavia_is_added():
    state = lb_state.apply_change(octavia_lb(), 'listener', {
        'listener_id': 'l-2', 'protocol': 'UDP', 'protocol_port': 53})
    assert state['listeners'] == [
        {'listener_id': 'l-2', 'protocol': 'UDP', 'protocol_port': 53}]


def test_update_keeps_the_fields_it_does_not_change():
    loadbalancer = octavia_lb([LISTENER], [POOL])
    state = lb_state.apply_change(
        loadbalancer, 'listener', {'listener_id': 'l-1',
                                   'allowed_cidrs': [CIDR]},
        original=dict(LISTENER, protocol_port=81))
    [listener] = state['listeners']
    # The new fields win over the original's, the original's over the
    # stale copy from Octavia.
    assert listener['allowed_cidrs'] == [CIDR]
    assert listener['protocol_port'] == 81
    assert listener['protocol'] == 'TCP'
    assert loadbalancer == octavia_lb([LISTENER], [POOL])


def test_deleted_listener_is_gone_and_its_pool_stays():
    state = lb_state.apply_change(octavia_lb([LISTENER], [POOL]),
                                  'listener', {'listener_id': 'l-1'},
                                  deleting=True)
    assert state['listeners'] == []
    assert [pool['pool_id'] for pool in state['pools']] == ['p-1']


def test_deleted_pool_takes_its_members():
    state = lb_state.apply_change(octavia_lb([LISTENER], [POOL]), 'pool',
                                  {'pool_id': 'p-1'}, deleting=True)
    assert state['pools'] == []


def test_member_create_update_delete():
    created = lb_state.apply_change(
        octavia_lb(pools=[POOL]), 'member',
        {'member_id': 'm-2', 'pool_id': 'p-1', 'address': '198.51.100.21',
         'protocol_port': 8080})
    assert [m['member_id'] for m in created['pools'][0]['members']] == [
        'm-1', 'm-2']
    updated = lb_state.apply_change(
        octavia_lb(pools=[POOL]), 'member',
        {'member_id': 'm-1', 'admin_state_up': False}, original=MEMBER)
    assert updated['pools'][0]['members'] == [
        dict(MEMBER, admin_state_up=False)]
    deleted = lb_state.apply_change(octavia_lb(pools=[POOL]), 'member',
                                    MEMBER, deleting=True)
    assert deleted['pools'][0]['members'] == []


def test_health_monitor_create_update_delete():
    monitor = {'healthmonitor_id': 'hm-1', 'pool_id': 'p-1',
               'type': 'HTTP'}
    created = lb_state.apply_change(octavia_lb(pools=[POOL]),
                                    'health_monitor', monitor)
    assert created['pools'][0]['healthmonitor'] == monitor
    with_monitor = octavia_lb(pools=[dict(POOL, healthmonitor=monitor)])
    updated = lb_state.apply_change(
        with_monitor, 'health_monitor',
        {'healthmonitor_id': 'hm-1', 'type': 'PING'}, original=monitor)
    assert updated['pools'][0]['healthmonitor'] == dict(monitor,
                                                        type='PING')
    deleted = lb_state.apply_change(with_monitor, 'health_monitor',
                                    monitor, deleting=True)
    assert deleted['pools'][0]['healthmonitor'] is None


def test_member_of_an_unknown_pool_fails():
    with pytest.raises(lb_state.StateError, match='no pool p-9'):
        lb_state.apply_change(octavia_lb(pools=[POOL]), 'member',
                              dict(MEMBER, pool_id='p-9'))


def test_objects_outside_the_state_are_refused():
    with pytest.raises(ValueError, match='amphora'):
        lb_state.apply_change(octavia_lb(), 'amphora', {'id': 'amp-1'})


def test_l7policy_and_rule_changes():
    policy = {'l7policy_id': 'pol-1', 'listener_id': 'l-1',
              'action': 'REJECT', 'position': 1, 'rules': None}
    rule = {'l7rule_id': 'r-1', 'l7policy_id': 'pol-1', 'type': 'PATH',
            'compare_type': 'EQUAL_TO', 'value': '/a'}
    # Octavia has neither yet; then the rule is updated and deleted.
    created = lb_state.apply_change(octavia_lb([LISTENER], [POOL]),
                                    'l7policy', policy)
    assert created['listeners'][0]['l7policies'] == [policy]
    with_rule = lb_state.apply_change(created, 'l7rule', rule)
    assert with_rule['listeners'][0]['l7policies'][0]['rules'] == [rule]
    updated = lb_state.apply_change(with_rule, 'l7rule',
                                    {'l7rule_id': 'r-1', 'value': '/b'},
                                    original=rule)
    assert updated['listeners'][0]['l7policies'][0]['rules'] == [
        dict(rule, value='/b')]
    deleted = lb_state.apply_change(updated, 'l7policy', policy,
                                    deleting=True)
    assert deleted['listeners'][0]['l7policies'] == []


def test_rule_of_an_unknown_policy_fails():
    with pytest.raises(lb_state.StateError, match='no L7 policy pol-9'):
        lb_state.apply_change(octavia_lb([LISTENER]), 'l7rule',
                              {'l7rule_id': 'r-1', 'l7policy_id': 'pol-9'})


def test_member_batch_replaces_the_pools_members():
    pool = dict(POOL, members=[MEMBER, dict(MEMBER, member_id='m-old')])
    state = lb_state.apply_member_batch(
        octavia_lb(pools=[pool]), 'p-1',
        [{'member_id': 'm-1', 'protocol_port': 9090},
         {'member_id': 'm-new', 'address': '198.51.100.30',
          'protocol_port': 80}])
    assert state['pools'][0]['members'] == [
        dict(MEMBER, protocol_port=9090),
        {'member_id': 'm-new', 'address': '198.51.100.30',
         'protocol_port': 80}]


# The tasks in their flows, on amphorae the load balancer flow made.


def _create_lb(reporter, agents, sriov_vip=True):
    return conftest.create_lb(reporter, agents, conftest.make_flavor(
        sriov_flavor.TOPOLOGY_ACTIVE_STANDBY, sriov_vip=sriov_vip))


def _store(flavor, **objects):
    return dict(objects, loadbalancer_id=LB_ID, flavor=flavor,
                availability_zone={})


def _firewalls(cloud, agents):
    """VRRP address -> the body last pushed to that amphora's agent."""
    bodies = {}
    for agent in agents.values():
        body = agent.set_security_group.call_args.args[0]
        bodies[body['vip_interfaces'][0]] = body
    vrrp_ips = sorted(port.fixed_ips[0]['ip_address']
                      for port in cloud.network.ports_by_id.values()
                      if port.binding_vnic_type == 'direct')
    assert sorted(bodies) == vrrp_ips
    return bodies


def test_listener_create_and_delete_reach_both_amphorae(cloud, reporter,
                                                        agents):
    flavor = _create_lb(reporter, agents)
    # Octavia has not committed the new listener yet.
    reporter.get_loadbalancer.return_value = octavia_lb()
    listener = {'listener_id': 'l-1', 'loadbalancer_id': LB_ID,
                'protocol': 'HTTP', 'protocol_port': 80,
                'allowed_cidrs': [CIDR]}
    conftest.run_flow('listener.create',
                      store=_store(flavor, listener=listener))
    bodies = _firewalls(cloud, agents)
    for vrrp_ip, body in bodies.items():
        assert body['listeners'] == [
            {'protocol': 'TCP', 'port': 80, 'allowed_cidrs': [CIDR]}]
        assert body['vrrp_peers'] == [ip for ip in bodies if ip != vrrp_ip]
    assert reporter.update_status.call_args.args[0]['listeners'] == [
        {'id': 'l-1', 'provisioning_status': 'ACTIVE'}]

    reporter.get_loadbalancer.return_value = octavia_lb([listener])
    conftest.run_flow('listener.delete',
                      store=_store(flavor, listener=listener))
    for body in _firewalls(cloud, agents).values():
        assert body['listeners'] == []
    assert reporter.update_status.call_args.args[0]['listeners'] == [
        {'id': 'l-1', 'provisioning_status': 'DELETED'}]


def test_member_batch_update_opens_the_new_members(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    reporter.get_loadbalancer.return_value = octavia_lb([LISTENER], [POOL])
    new = {'member_id': 'm-2', 'pool_id': 'p-1', 'address': '198.51.100.21',
           'protocol_port': 8080}
    conftest.run_flow('member.batch_update', store=_store(
        flavor, members=[new], pool_id='p-1'))
    for body in _firewalls(cloud, agents).values():
        assert body['members'] == [
            {'address': '198.51.100.21', 'protocol': 'TCP', 'port': 8080}]


def test_health_monitor_update_opens_its_checks(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    monitor = {'healthmonitor_id': 'hm-1', 'pool_id': 'p-1', 'type': 'TCP',
               'delay': 5, 'timeout': 3, 'max_retries': 3,
               'max_retries_down': 3}
    reporter.get_loadbalancer.return_value = octavia_lb(
        [LISTENER], [dict(POOL, healthmonitor=monitor)])
    conftest.run_flow('health_monitor.update', store=_store(
        flavor, health_monitor={'healthmonitor_id': 'hm-1', 'type': 'PING'},
        original_health_monitor=monitor))
    for body in _firewalls(cloud, agents).values():
        assert body['members'] == [
            {'address': '198.51.100.20', 'protocol': 'ICMP'},
            {'address': '198.51.100.20', 'protocol': 'TCP', 'port': 8080}]


def test_without_sriov_vip_nothing_is_pushed(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents, sriov_vip=False)
    reporter.get_loadbalancer.return_value = octavia_lb([LISTENER], [POOL])
    conftest.run_flow('pool.delete',
                      store=_store(flavor, pool=POOL))
    assert not any(agent.set_security_group.called
                   for agent in agents.values())


def test_refused_push_marks_the_object_error(cloud, reporter, agents,
                                             caplog):
    flavor = _create_lb(reporter, agents)
    reporter.get_loadbalancer.return_value = octavia_lb([LISTENER], [POOL])
    for agent in agents.values():
        agent.set_security_group.side_effect = agent_client.AgentRejected(
            'POST', 'https://198.18.0.10:9443/1.0/security-group', 400,
            'firewall', 'bad')
    with pytest.raises(agent_client.AgentRejected):
        conftest.run_flow('member.create', store=_store(
            flavor, member=dict(MEMBER, member_id='m-2')))
    [update] = [call.args[0]
                for call in reporter.update_status.call_args_list]
    assert update['members'] == [{'id': 'm-2',
                                  'provisioning_status': 'ERROR'}]
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]
    assert 'push-amphora-state failed' in caplog.text


def test_amphora_without_vrrp_port_fails(cloud, reporter, agents):
    _create_lb(reporter, agents)
    for port in list(cloud.network.ports_by_id.values()):
        if port.binding_vnic_type == 'direct':
            cloud.network.delete_port(port)
    reporter.get_loadbalancer.return_value = octavia_lb()
    with pytest.raises(network.NetworkError, match='no VRRP port'):
        amphora_state.PushAmphoraState(firewall=True).execute(
            octavia_lb([LISTENER]), LB_ID, {})
