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
"""SR-IOV member ports: what the member flows leave in the cloud.

Normal member ports are in test_tasks_member_networks.
"""

from unittest import mock

from openstack import exceptions as os_exceptions
import pytest
from taskflow import engines
from taskflow.patterns import linear_flow

from flows.tasks import compute
from flows.tasks import member_port_plan
from flows.tasks import member_ports
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
DIRECT = {'member_id': 'm-1', 'pool_id': 'p-1', 'address': '198.51.100.20',
          'protocol_port': 8080, 'subnet_id': fake_cloud.MEMBER_SUBNET,
          'vnic_type': 'direct'}
pytestmark = pytest.mark.usefixtures('no_engine')


def member(member_id, **fields):
    return dict(DIRECT, member_id=member_id, **fields)


def _create_lb(reporter, agents,
               topology=sriov_flavor.TOPOLOGY_ACTIVE_STANDBY):
    return conftest.create_member_lb(reporter, agents, topology,
                                     allow_member_sriov=True)


def _store(flavor, **objects):
    return dict(objects, loadbalancer_id=LB_ID, flavor=flavor,
                availability_zone={})


def _attached_ports(cloud):
    return set(conftest.attached(cloud))


def _create_member(flavor, reporter, new, existing=()):
    # Octavia has not committed the new member yet.
    reporter.get_loadbalancer.return_value = conftest.octavia_lb(existing)
    conftest.run_flow('member.create',
                      store=_store(flavor, member=new))


def test_direct_member_gets_a_plugged_vf_on_each_amphora(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    _create_member(flavor, reporter, DIRECT)

    ports = conftest.member_ports_in(cloud)
    servers = {server.id: server.metadata[naming.META_ROLE]
               for server in cloud.compute.servers_by_id.values()}
    assert [port.name for port in ports] == [
        naming.member_port_name(LB_ID, role, fake_cloud.MEMBER_NET)
        for role in ('BACKUP', 'MASTER')]
    for port in ports:
        assert port.binding_vnic_type == 'direct'
        assert port.security_group_ids == []
        assert port.network_id == fake_cloud.MEMBER_NET
        assert port.fixed_ips[0]['subnet_id'] == fake_cloud.MEMBER_SUBNET
        assert servers[port.device_id] in port.name.upper()
    assert {port.id for port in ports} <= _attached_ports(cloud)
    plugged = {}
    for agent in agents.values():
        agent.wait_for_interface.assert_called()
        [call] = agent.plug_network.call_args_list
        plugged[call.args[0]] = call
    for port in ports:
        call = plugged[port.mac_address]
        assert call.args[1] == [{
            'ip_address': port.fixed_ips[0]['ip_address'],
            'subnet_cidr': '198.51.100.0/24', 'gateway': '198.51.100.1',
            'host_routes': []}]
        assert call.kwargs == {'mtu': 8950}
    # The firewall admits the member's replies on every amphora.
    conftest.assert_firewalls_admit(
        agents, {'address': '198.51.100.20', 'protocol': 'TCP', 'port': 8080})
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-1', 'provisioning_status': 'ACTIVE'}]


def test_later_direct_members_share_the_ports(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    _create_member(flavor, reporter, DIRECT)
    first = [port.id for port in conftest.member_ports_in(cloud)]
    _create_member(flavor, reporter, member('m-2', address='198.51.100.21'),
                   existing=[DIRECT])
    assert [port.id for port in conftest.member_ports_in(cloud)] == first
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-2', 'provisioning_status': 'ACTIVE'}]


def test_a_second_subnet_of_the_network_is_added_to_the_ports(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents, sriov_flavor.TOPOLOGY_SINGLE)
    _create_member(flavor, reporter, DIRECT)
    [agent] = agents.values()
    agent.plug_network.reset_mock()
    _create_member(flavor, reporter,
                   member('m-6', address='2001:db8:2::20',
                          subnet_id=fake_cloud.MEMBER_SUBNET_2),
                   existing=[DIRECT])
    [port] = conftest.member_ports_in(cloud)
    assert sorted(ip['subnet_id'] for ip in port.fixed_ips) == [
        fake_cloud.MEMBER_SUBNET, fake_cloud.MEMBER_SUBNET_2]
    [call] = agent.plug_network.call_args_list
    assert [ip['subnet_cidr'] for ip in call.args[1]] == [
        '198.51.100.0/24', '2001:db8:2::/64']


def test_vf_attach_failure_marks_the_member_error_and_leaves_nothing(
        cloud, reporter, agents, caplog):
    flavor = _create_lb(reporter, agents)
    with conftest.failing_attach(
            cloud, 'Failed to claim PCI device during interface attach'):
        _create_member(flavor, reporter, DIRECT)
    update = conftest.last_update(reporter)
    assert update['members'] == [{'id': 'm-1',
                                  'provisioning_status': 'ERROR'}]
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]
    assert 'Check the free VFs' in caplog.text
    assert 'physical network sriovnet' in caplog.text
    assert not any(agent.set_security_group.called
                   for agent in agents.values())


def test_attach_failing_on_the_second_amphora_detaches_the_first(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    attached_before = _attached_ports(cloud)
    real_attach = cloud.compute.create_server_interface
    calls = []

    def attach_once(server_id, port_id):
        calls.append(port_id)
        if len(calls) > 1:
            raise os_exceptions.BadRequestException('no VF')
        real_attach(server_id, port_id)

    cloud.compute.create_server_interface = attach_once
    with pytest.raises(member_ports.MemberPortError):
        _create_member(flavor, reporter, DIRECT)
    assert len(calls) == 2
    assert _attached_ports(cloud) == attached_before
    assert conftest.member_ports_in(cloud) == []


def test_plug_failure_unplugs_detaches_and_deletes(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    attached_before = _attached_ports(cloud)
    for agent in agents.values():
        agent.plug_network.side_effect = agent_client.AgentRejected(
            'POST', 'https://198.18.0.10:9443/1.0/plug/network', 400,
            'fixed_ips[0].gateway', 'bad')
    with pytest.raises(agent_client.AgentRejected):
        _create_member(flavor, reporter, DIRECT)
    assert conftest.member_ports_in(cloud) == []
    assert _attached_ports(cloud) == attached_before
    assert any(agent.unplug_network.called for agent in agents.values())
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-1', 'provisioning_status': 'ERROR'}]


def test_network_attached_with_a_normal_port_is_refused(cloud, reporter,
                                                        agents, caplog):
    flavor = _create_lb(reporter, agents)
    server_id = next(iter(cloud.compute.servers_by_id))
    normal = cloud.network.create_port(
        network_id=fake_cloud.MEMBER_NET,
        fixed_ips=[{'subnet_id': fake_cloud.MEMBER_SUBNET}])
    cloud.compute.create_server_interface(server_id, port_id=normal.id)
    with pytest.raises(member_ports.MemberPortError, match='non-SR-IOV'):
        _create_member(flavor, reporter, DIRECT)
    assert conftest.member_ports_in(cloud) == []
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-1', 'provisioning_status': 'ERROR'}]
    assert f'attached to network {fake_cloud.MEMBER_NET} already' in (
        caplog.text)


def test_direct_member_on_the_vip_network_is_refused(cloud, reporter,
                                                     agents):
    flavor = _create_lb(reporter, agents)
    with pytest.raises(member_ports.MemberPortError, match='VIP network'):
        _create_member(flavor, reporter, member(
            'm-3', address='203.0.113.30',
            subnet_id=fake_cloud.VIP_SUBNET))
    assert conftest.member_ports_in(cloud) == []
    assert conftest.last_update(reporter)['loadbalancers'] == [
        {'id': LB_ID, 'provisioning_status': 'ACTIVE'}]


def test_normal_member_touches_no_port_even_beside_a_failed_one(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    ports_before = set(cloud.network.ports_by_id)
    cloud.compute.attach_error = os_exceptions.BadRequestException('no VF')
    # m-1 failed earlier and stayed in ERROR without its VF.
    _create_member(flavor, reporter,
                   member('m-4', address='203.0.113.40',
                          subnet_id=fake_cloud.VIP_SUBNET,
                          vnic_type='normal'),
                   existing=[DIRECT])
    assert set(cloud.network.ports_by_id) == ports_before
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-4', 'provisioning_status': 'ACTIVE'}]


def test_deleting_the_last_direct_member_releases_the_ports(cloud, reporter,
                                                            agents):
    flavor = _create_lb(reporter, agents)
    second = member('m-2', address='198.51.100.21')
    _create_member(flavor, reporter, DIRECT)
    _create_member(flavor, reporter, second, existing=[DIRECT])
    ports = conftest.member_ports_in(cloud)

    reporter.get_loadbalancer.return_value = conftest.octavia_lb(
        [DIRECT, second])
    conftest.run_flow('member.delete',
                      store=_store(flavor, member=DIRECT))
    assert conftest.member_ports_in(cloud) == ports
    assert not any(agent.unplug_network.called for agent in agents.values())

    reporter.get_loadbalancer.return_value = conftest.octavia_lb([second])
    conftest.run_flow('member.delete',
                      store=_store(flavor, member=second))
    assert conftest.member_ports_in(cloud) == []
    assert not {port.id for port in ports} & _attached_ports(cloud)
    unplugged = sorted(agent.unplug_network.call_args.args[0]
                       for agent in agents.values())
    assert unplugged == sorted(port.mac_address for port in ports)
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-2', 'provisioning_status': 'DELETED'}]


def test_member_batch_update_plugs_and_releases(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    reporter.get_loadbalancer.return_value = conftest.octavia_lb()
    conftest.run_flow('member.batch_update', store=_store(
        flavor, members=[DIRECT], pool_id='p-1'))
    assert len(conftest.member_ports_in(cloud)) == 2

    reporter.get_loadbalancer.return_value = conftest.octavia_lb([DIRECT])
    conftest.run_flow('member.batch_update', store=_store(
        flavor, members=[], pool_id='p-1'))
    assert conftest.member_ports_in(cloud) == []
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-1', 'provisioning_status': 'DELETED'}]


def test_pool_delete_releases_its_members_ports(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    _create_member(flavor, reporter, DIRECT)
    reporter.get_loadbalancer.return_value = conftest.octavia_lb([DIRECT])
    conftest.run_flow('pool.delete',
                      _store(flavor,
                             pool=dict(conftest.POOL, members=[DIRECT])))
    assert conftest.member_ports_in(cloud) == []


def test_load_balancer_delete_tasks_remove_the_member_ports(cloud, reporter,
                                                            agents):
    flavor = _create_lb(reporter, agents)
    _create_member(flavor, reporter, DIRECT)
    flow = linear_flow.Flow('delete')
    flow.add(member_ports.FindLoadBalancerMemberPorts(),
             compute.DeleteAmphorae(),
             member_ports.DeleteLoadBalancerMemberPorts())
    engines.run(flow, store={'loadbalancer_id': LB_ID})
    assert conftest.member_ports_in(cloud) == []


def test_members_without_a_subnet_ask_no_cloud(reporter):
    # Reached through the VIP subnet: no member port to plan.
    flavor = conftest.make_flavor()
    reporter.get_loadbalancer.return_value = conftest.octavia_lb()
    no_subnet = {'member_id': 'm-9', 'pool_id': 'p-1',
                 'address': '203.0.113.9', 'protocol_port': 8080}
    with mock.patch('sriov_octavia.clients.connection') as connection:
        plan = member_port_plan.PlanMemberPorts('member').execute(
            LB_ID, flavor, {}, provider_object=no_subnet)
    assert plan == {'amphorae': [], 'plug': [], 'subnets': {},
                    'vnic_types': {}, 'new_ports': [], 'release': []}
    connection.assert_not_called()


def test_an_unattached_leftover_port_is_deleted_with_its_member(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents, sriov_flavor.TOPOLOGY_SINGLE)
    leftover = cloud.network.create_port(
        name=naming.member_port_name(LB_ID, 'STANDALONE',
                                     fake_cloud.MEMBER_NET),
        network_id=fake_cloud.MEMBER_NET,
        fixed_ips=[{'subnet_id': fake_cloud.MEMBER_SUBNET}],
        binding_vnic_type='direct')
    reporter.get_loadbalancer.return_value = conftest.octavia_lb([DIRECT])
    conftest.run_flow('member.delete',
                      store=_store(flavor, member=DIRECT))
    assert leftover.id not in cloud.network.ports_by_id
    [agent] = agents.values()
    # It was never plugged: the agent is not asked to unplug it.
    agent.unplug_network.assert_not_called()


def test_deleting_a_member_that_never_got_its_vf_releases_nothing(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    ports_before = set(cloud.network.ports_by_id)
    reporter.get_loadbalancer.return_value = conftest.octavia_lb([DIRECT])
    conftest.run_flow('member.delete',
                      store=_store(flavor, member=DIRECT))
    assert set(cloud.network.ports_by_id) == ports_before
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-1', 'provisioning_status': 'DELETED'}]
