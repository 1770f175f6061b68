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
"""The load balancer flows run by taskflow against the fake cloud."""

from unittest import mock

from openstack import exceptions as os_exceptions
import pytest

from flows.tasks import compute
from flows.tasks import loadbalancer_status
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import flavor as sriov_flavor
from tests.unit.flows import conftest

LB_ID = conftest.LB_ID
MEMBER = {'member_id': 'm-1', 'address': '198.51.100.20',
          'protocol_port': 8080}
POOL = {'pool_id': 'p-1', 'protocol': 'HTTP', 'members': [MEMBER],
        'lb_algorithm': 'ROUND_ROBIN',
        'healthmonitor': {'healthmonitor_id': 'hm-1', 'type': 'TCP',
                          'delay': 5, 'timeout': 3, 'max_retries': 3,
                          'max_retries_down': 3}}
ONE_CALL_LB = dict(conftest.make_loadbalancer(), listeners=[
    {'listener_id': 'l-1', 'protocol': 'HTTP', 'protocol_port': 80,
     'default_pool': POOL, 'default_pool_id': 'p-1',
     'l7policies': [{'l7policy_id': 'pol-1', 'action': 'REJECT',
                     'rules': [{'l7rule_id': 'r-1', 'type': 'PATH',
                                'compare_type': 'STARTS_WITH',
                                'value': '/admin'}]}]}],
    pools=[POOL])


@pytest.fixture
def agents(worker_conf):
    agent = mock.MagicMock()
    agent.__enter__.return_value = agent
    agent.plug_vip.return_value = {'name': 'eth1'}
    agent.wait_for_interface.return_value = {'name': 'eth1'}
    agent.get_info.return_value = conftest.AGENT_INFO
    with mock.patch.object(agent_client.AgentClient, 'from_conf',
                           return_value=agent):
        yield agent


def _store(topology=sriov_flavor.TOPOLOGY_SINGLE, loadbalancer=None):
    return {'loadbalancer': loadbalancer or conftest.make_loadbalancer(),
            'loadbalancer_id': LB_ID,
            'flavor': conftest.make_flavor(topology),
            'availability_zone': {}}


def _statuses(reporter):
    return [call.args[0] for call in reporter.update_status.call_args_list]


def test_flows_are_registered_under_their_contract_names():
    for name in ('loadbalancer.create', 'loadbalancer.delete'):
        assert conftest.build_flow(name).name == name


@pytest.mark.parametrize('sriov_vip', [True, False])
@pytest.mark.parametrize('topology', [sriov_flavor.TOPOLOGY_SINGLE,
                                      sriov_flavor.TOPOLOGY_ACTIVE_STANDBY])
def test_create_requires_what_the_driver_stores(topology, sriov_vip):
    flavor = conftest.make_flavor(topology, sriov_vip)
    assert conftest.build_flow('loadbalancer.create', flavor).requires == {
        'loadbalancer', 'loadbalancer_id', 'flavor', 'availability_zone'}
    assert conftest.build_flow('loadbalancer.delete', flavor).requires == {
        'loadbalancer', 'loadbalancer_id'}


@pytest.mark.parametrize('sriov_vip', [True, False])
@pytest.mark.parametrize('topology, amphorae', [
    (sriov_flavor.TOPOLOGY_SINGLE, 1),
    (sriov_flavor.TOPOLOGY_ACTIVE_STANDBY, 2)])
def test_create_is_shaped_by_topology_and_sriov_vip(topology, amphorae,
                                                    sriov_vip):
    flow = conftest.build_flow('loadbalancer.create',
                               conftest.make_flavor(topology, sriov_vip))
    tasks = [type(atom).__name__ for atom in conftest.flow_tasks(flow)]
    # One amphora's tasks per role of the topology.
    for per_amphora in ('BootAmphorae', 'WaitForAmphorae', 'WaitForAgents',
                        'CreateVrrpPorts', 'AttachPorts', 'PlugVip'):
        assert tasks.count(per_amphora) == amphorae
    assert tasks.count('CreateServerGroup') == amphorae - 1
    # The Neutron security group only without sriov_vip.
    assert tasks.count('CreateSecurityGroup') == (0 if sriov_vip else 1)


def test_child_objects_of_a_one_call_create():
    assert loadbalancer_status.child_objects(ONE_CALL_LB) == [
        ['listener', 'l-1'], ['pool', 'p-1'], ['member', 'm-1'],
        ['health_monitor', 'hm-1'], ['l7policy', 'pol-1'],
        ['l7rule', 'r-1']]


@pytest.mark.parametrize('topology, servers', [
    (sriov_flavor.TOPOLOGY_SINGLE, 1),
    (sriov_flavor.TOPOLOGY_ACTIVE_STANDBY, 2),
])
def test_create_then_delete(cloud, reporter, agents, topology, servers):
    conftest.run_flow('loadbalancer.create',
                      store=_store(topology, ONE_CALL_LB))
    assert len(cloud.compute.servers_by_id) == servers
    vrrp = [p for p in cloud.network.ports_by_id.values()
            if p.binding_vnic_type == 'direct']
    assert len(vrrp) == servers
    assert all(p.device_id in cloud.compute.servers_by_id for p in vrrp)
    assert len(cloud.compute.groups) == (servers - 1)
    assert agents.plug_vip.call_count == servers
    assert agents.set_security_group.call_count == servers
    # haproxy serves the listeners created with the load balancer.
    configs = [call.args for call in
               agents.upload_haproxy_config.call_args_list]
    assert sorted(amphora_id for amphora_id, _, _ in configs) == sorted(
        cloud.compute.servers_by_id)
    for _, lb_id, text in configs:
        assert lb_id == LB_ID
        assert 'frontend l-1\n' in text
        assert 'http-request deny if r-1\n' in text
        assert 'server m-1 198.51.100.20:8080 weight 1 check' in text
    assert agents.loadbalancer_action.call_args_list == [
        mock.call(LB_ID, 'start')] * servers
    # keepalived holds the VIP of ACTIVE_STANDBY.
    keepalived = [call.args[0] for call in
                  agents.upload_keepalived_config.call_args_list]
    assert len(keepalived) == (servers if servers > 1 else 0)
    for text in keepalived:
        assert '203.0.113.5 dev eth1' in text
    assert agents.vrrp_action.call_args_list == [
        mock.call('start')] * len(keepalived)
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]
    assert update['listeners'] == [{'id': 'l-1',
                                    'provisioning_status': 'ACTIVE'}]
    assert update['l7rules'] == [{'id': 'r-1',
                                  'provisioning_status': 'ACTIVE'}]

    reporter.reset_mock()
    reporter.get_loadbalancer.return_value = ONE_CALL_LB
    with mock.patch('sriov_octavia.vip.delete_vip_port') as delete_vip:
        conftest.run_flow('loadbalancer.delete',
                          store={'loadbalancer': conftest.make_loadbalancer(),
                                 'loadbalancer_id': LB_ID, 'cascade': True})
    delete_vip.assert_called_once_with(cloud, LB_ID, 'vip-port')
    update = _nothing_left(cloud, reporter, 'DELETED')
    assert update['pools'] == [{'id': 'p-1',
                                'provisioning_status': 'DELETED'}]


def _nothing_left(cloud, reporter, lb_status):
    """No server, group or port left; the one report's load balancer."""
    assert cloud.compute.servers_by_id == {}
    assert cloud.compute.groups == {}
    assert cloud.network.ports_by_id == {}
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': lb_status}]
    return update


@pytest.mark.parametrize('fault, value, error, match', [
    ('build_fault', 'No valid host was found.', compute.ComputeError,
     'No valid host'),
    # A VF attach failing: ports and servers reverted.
    ('attach_error', os_exceptions.BadRequestException(
        'Failed to claim PCI device'), os_exceptions.BadRequestException,
     'PCI'),
])
def test_cloud_fault_reverts_to_error(cloud, reporter, agents, fault, value,
                                      error, match):
    setattr(cloud.compute, fault, value)
    with conftest.raises(error, match):
        conftest.run_flow('loadbalancer.create',
                          store=_store(sriov_flavor.TOPOLOGY_ACTIVE_STANDBY))
    _nothing_left(cloud, reporter, 'ERROR')


def test_agent_refusal_reverts_and_marks_children_error(cloud, reporter,
                                                        agents):
    agents.set_security_group.side_effect = agent_client.AgentRejected(
        'POST', 'https://198.18.0.10:9443/1.0/security-group', 400,
        'firewall', 'bad')
    with pytest.raises(agent_client.AgentRejected):
        conftest.run_flow('loadbalancer.create',
                          store=_store(loadbalancer=ONE_CALL_LB))
    update = _nothing_left(cloud, reporter, 'ERROR')
    assert update['members'] == [{'id': 'm-1',
                                  'provisioning_status': 'ERROR'}]


def test_a_failing_undo_still_ends_in_error(
        cloud, reporter, agents, monkeypatch):
    # Nova cannot delete the server: the port is still deleted, the
    # server stays (found again by the delete flow) and the load balancer
    # goes to ERROR instead of staying PENDING_CREATE.
    agents.wait_until_up.side_effect = agent_client.AgentUnreachable(
        'https://198.18.0.10:9443', 'timed out')

    def refuse(*args, **kwargs):
        raise os_exceptions.HttpException('nova-compute is down')

    monkeypatch.setattr(cloud.compute, 'delete_server', refuse)
    with pytest.raises(agent_client.AgentUnreachable):
        conftest.run_flow('loadbalancer.create', store=_store())
    assert len(cloud.compute.servers_by_id) == 1
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ERROR'}]


def test_failed_delete_marks_the_load_balancer_error(cloud, reporter,
                                                     worker_conf):
    with mock.patch.object(compute, 'delete_servers',
                           side_effect=compute.ComputeError('stuck')):
        with pytest.raises(compute.ComputeError):
            conftest.run_flow('loadbalancer.delete', store={
                'loadbalancer': conftest.make_loadbalancer(),
                'loadbalancer_id': LB_ID})
    # Without cascade nothing but the load balancer is looked up.
    reporter.get_loadbalancer.assert_not_called()
    assert _statuses(reporter) == [{'loadbalancers': [
        {'id': LB_ID, 'provisioning_status': 'ERROR'}]}]


def _created(cloud, reporter, agents, flavor_kwargs=None):
    store = _store()
    store['flavor'].update(flavor_kwargs or {})
    conftest.run_flow('loadbalancer.create', store=store)
    reporter.reset_mock()
    return store['flavor']


def _vrrp_ports(cloud):
    return [port for port in cloud.network.ports_by_id.values()
            if (port.name or '').startswith('octavia-lb-vrrp-')]


def test_update_sets_the_qos_policy_on_the_vrrp_ports(cloud, reporter,
                                                      agents):
    flavor = _created(cloud, reporter, agents)
    conftest.run_flow('loadbalancer.update', store={
        'loadbalancer': {'loadbalancer_id': LB_ID,
                         'vip_qos_policy_id': 'qos-gold'},
        'original_loadbalancer': conftest.make_loadbalancer(),
        'loadbalancer_id': LB_ID, 'flavor': flavor,
        'availability_zone': {}})
    assert [port.qos_policy_id for port in _vrrp_ports(cloud)] == [
        'qos-gold']
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]


def test_update_of_other_fields_touches_no_port(cloud, reporter, agents):
    flavor = _created(cloud, reporter, agents)
    with mock.patch.object(cloud.network, 'update_port') as update_port:
        conftest.run_flow('loadbalancer.update', store={
            'loadbalancer': {'loadbalancer_id': LB_ID, 'name': 'renamed'},
            'original_loadbalancer': conftest.make_loadbalancer(),
            'loadbalancer_id': LB_ID, 'flavor': flavor,
            'availability_zone': {}})
    update_port.assert_not_called()
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]


def test_failed_update_puts_the_ports_back_and_marks_error(cloud, reporter,
                                                           agents):
    flavor = _created(cloud, reporter, agents)
    original = dict(conftest.make_loadbalancer(),
                    vip_qos_policy_id='qos-bronze')
    store = {'loadbalancer': {'loadbalancer_id': LB_ID,
                              'vip_qos_policy_id': 'qos-gold'},
             'original_loadbalancer': original, 'loadbalancer_id': LB_ID,
             'flavor': flavor, 'availability_zone': {}}
    with mock.patch.object(loadbalancer_status.MarkLoadBalancerActive,
                           'execute', side_effect=RuntimeError('socket')):
        with pytest.raises(RuntimeError):
            conftest.run_flow('loadbalancer.update', store=store)
    assert [port.qos_policy_id for port in _vrrp_ports(cloud)] == [
        'qos-bronze']
    [update] = _statuses(reporter)
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ERROR'}]


def test_update_of_vip_security_groups_keeps_the_lb_group(cloud, reporter,
                                                          agents):
    flavor = _created(cloud, reporter, agents, {sriov_flavor.SRIOV_VIP:
                                                False})
    [own] = [group.id for group in cloud.network.security_groups()]
    conftest.run_flow('loadbalancer.update', store={
        'loadbalancer': {'loadbalancer_id': LB_ID,
                         'vip_sg_ids': ['user-sg']},
        'original_loadbalancer': conftest.make_loadbalancer(),
        'loadbalancer_id': LB_ID, 'flavor': flavor,
        'availability_zone': {}})
    assert [port.security_group_ids for port in _vrrp_ports(cloud)] == [
        [own, 'user-sg']]
