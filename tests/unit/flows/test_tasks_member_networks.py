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
"""Member networks: normal member ports, and which kind a network gets.

A member on a network the amphorae are not on gets a normal port there on
every amphora, as Octavia's amphora driver does; per network the first
member port decides the kind (flows.tasks.member_port_plan). What the
member, batch, pool, load balancer delete and failover flows leave in the
fake cloud is checked here; SR-IOV member ports alone are in
test_tasks_member_ports.
"""

import functools
import logging
from unittest import mock

from openstack.network.v2 import port as port_resource
import pytest

from flows.tasks import member_port_plan
from flows.tasks import member_ports
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
SINGLE = sriov_flavor.TOPOLOGY_SINGLE
ACTIVE_STANDBY = sriov_flavor.TOPOLOGY_ACTIVE_STANDBY
APP = {'member_id': 'm-app', 'pool_id': 'p-1', 'address': '192.0.2.20',
       'protocol_port': 8080, 'subnet_id': fake_cloud.APP_SUBNET,
       'vnic_type': 'normal'}
APP_2 = dict(APP, member_id='m-app-2', address='192.0.2.21')
NORMAL = dict(APP, member_id='m-normal', address='198.51.100.30',
              subnet_id=fake_cloud.MEMBER_SUBNET)
DIRECT = dict(NORMAL, member_id='m-direct', address='198.51.100.20',
              vnic_type='direct')
APP_PLUG = {'subnet_cidr': '192.0.2.0/24', 'gateway': '192.0.2.1',
            'host_routes': [{'destination': '10.20.0.0/16',
                             'nexthop': '192.0.2.254'}]}


pytestmark = pytest.mark.usefixtures('no_engine')


def _create_lb(reporter, agents, topology=ACTIVE_STANDBY,
               allow_member_sriov=False):
    return conftest.create_member_lb(reporter, agents, topology,
                                     allow_member_sriov)


def _run(flow_name, flavor, reporter, existing=(), **objects):
    """Run a flow with Octavia holding the ``existing`` members."""
    reporter.get_loadbalancer.return_value = conftest.octavia_lb(existing)
    conftest.run_flow(flow_name, store=dict(
        objects, loadbalancer_id=LB_ID, flavor=flavor,
        availability_zone={}))


def _roles(cloud):
    return {server.id: server.metadata[naming.META_ROLE]
            for server in cloud.compute.servers_by_id.values()}


def _plugged_macs(agents):
    return sorted(call.args[0] for agent in agents.values()
                  for call in agent.plug_network.call_args_list)


def test_a_member_off_the_amphorae_networks_gets_a_normal_port_each(
        cloud, reporter, agents):
    # No allow_member_sriov: normal member ports need no flavor setting.
    flavor = _create_lb(reporter, agents)
    _run('member.create', flavor, reporter, member=APP)

    ports = conftest.member_ports_in(cloud)
    roles = _roles(cloud)
    attached = conftest.attached(cloud)
    assert [port.name for port in ports] == [
        naming.member_port_name(LB_ID, role, fake_cloud.APP_NET)
        for role in ('BACKUP', 'MASTER')]
    for port in ports:
        assert port.binding_vnic_type == 'normal'
        # Neutron's default group of the project, as Octavia's own.
        assert port.security_group_ids is None
        assert [ip['subnet_id'] for ip in port.fixed_ips] == [
            fake_cloud.APP_SUBNET]
        assert roles[attached[port.id]].lower() in port.name
    # Each agent plugs its amphora's port with the subnet's gateway and
    # host routes, for the port's own routing table.
    by_mac = {port.mac_address: port for port in ports}
    for agent in agents.values():
        [call] = agent.plug_network.call_args_list
        port = by_mac[call.args[0]]
        assert call.args[1] == [dict(
            APP_PLUG, ip_address=port.fixed_ips[0]['ip_address'])]
        assert call.kwargs == {'mtu': 1450}
    conftest.assert_firewalls_admit(
        agents, {'address': '192.0.2.20', 'protocol': 'TCP', 'port': 8080})
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-app', 'provisioning_status': 'ACTIVE'}]


def test_the_plan_of_a_normal_member(cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    reporter.get_loadbalancer.return_value = conftest.octavia_lb()
    plan = member_port_plan.PlanMemberPorts('member').execute(
        LB_ID, flavor, {}, provider_object=APP)
    assert sorted(amphora['role'] for amphora in plan['amphorae']) == [
        'BACKUP', 'MASTER']
    assert plan['plug'] == [fake_cloud.APP_NET]
    assert plan['subnets'] == {fake_cloud.APP_NET: [fake_cloud.APP_SUBNET]}
    assert plan['vnic_types'] == {fake_cloud.APP_NET: 'normal'}
    assert sorted(plan['new_ports']) == [['BACKUP', fake_cloud.APP_NET],
                                         ['MASTER', fake_cloud.APP_NET]]
    assert plan['release'] == []


AMPHORAE = [{'id': 'amp-1', 'role': 'MASTER'},
            {'id': 'amp-2', 'role': 'BACKUP'}]


@pytest.mark.parametrize('direct, kinds, expected', [
    # No member port yet: the member the flow creates decides.
    (False, [], 'normal'),
    (True, [], 'macvtap'),
    # The first port decides; an SR-IOV port serves normal members too.
    (False, ['direct'], 'direct'),
    (True, ['direct'], 'direct'),
    (False, ['normal'], 'normal'),
    (True, ['normal'], None),
])
def test_the_first_member_port_decides_the_kind(direct, kinds, expected):
    flavor = dict(conftest.make_flavor(), **{
        sriov_flavor.SRIOV_VNIC_TYPE: sriov_flavor.VNIC_TYPE_MACVTAP})
    state = conftest.make_loadbalancer()
    ports = {'MASTER': None, 'BACKUP': None}
    for role, kind in zip(ports, kinds):
        ports[role] = port_resource.Port(
            id=f'port-{role}', network_id=fake_cloud.MEMBER_NET,
            name=naming.member_port_name(LB_ID, role, fake_cloud.MEMBER_NET),
            binding_vnic_type=kind)
    attached = {'amp-1': [], 'amp-2': []}
    decide = functools.partial(
        member_port_plan.network_vnic_type, state, fake_cloud.MEMBER_NET,
        direct, flavor, AMPHORAE, attached, ports)
    if expected is None:
        with pytest.raises(member_port_plan.MemberPortError,
                           match='non-SR-IOV member ports port-MASTER'):
            decide()
    else:
        assert decide() == expected


@pytest.mark.parametrize('direct', [False, True])
def test_a_network_reached_otherwise_gets_no_member_port(direct):
    state = conftest.make_loadbalancer()
    by_hand = port_resource.Port(id='by-hand', name='mine',
                                 network_id=fake_cloud.MEMBER_NET,
                                 binding_vnic_type='normal')
    attached = {'amp-1': [], 'amp-2': [by_hand]}
    ports = {'MASTER': None, 'BACKUP': None}
    # The VIP network, and one an amphora has a port of its own on.
    for network_id in (fake_cloud.VIP_NET, fake_cloud.MEMBER_NET):
        decide = functools.partial(
            member_port_plan.network_vnic_type, state, network_id, direct,
            conftest.make_flavor(), AMPHORAE, attached, ports)
        if direct:
            with pytest.raises(member_port_plan.MemberPortError):
                decide()
        else:
            assert decide() is None


@pytest.mark.parametrize('address, subnet_id', [
    ('203.0.113.40', fake_cloud.VIP_SUBNET),
    # Another subnet of the VIP network: reached through the VRRP port.
    ('2001:db8:1::40', fake_cloud.EXTRA_SUBNET),
    ('203.0.113.41', None),
])
def test_a_member_the_vip_port_reaches_gets_no_port(cloud, reporter, agents,
                                                    address, subnet_id):
    flavor = _create_lb(reporter, agents)
    ports_before = set(cloud.network.ports_by_id)
    member = dict(APP, address=address, subnet_id=subnet_id)
    _run('member.create', flavor, reporter, member=member)
    assert set(cloud.network.ports_by_id) == ports_before
    assert not any(agent.plug_network.called for agent in agents.values())
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-app', 'provisioning_status': 'ACTIVE'}]


def test_a_network_an_amphora_is_attached_to_already_gets_no_port(
        cloud, reporter, agents, caplog):
    caplog.set_level(logging.INFO, logger=member_port_plan.__name__)
    flavor = _create_lb(reporter, agents)
    server_id = next(iter(cloud.compute.servers_by_id))
    by_hand = cloud.network.create_port(
        network_id=fake_cloud.APP_NET,
        fixed_ips=[{'subnet_id': fake_cloud.APP_SUBNET}])
    cloud.compute.create_server_interface(server_id, port_id=by_hand.id)
    _run('member.create', flavor, reporter, member=APP)
    assert conftest.member_ports_in(cloud) == []
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-app', 'provisioning_status': 'ACTIVE'}]
    assert f'with port {by_hand.id} already' in caplog.text


def test_a_direct_member_where_the_member_ports_are_normal_is_error(
        cloud, reporter, agents, caplog):
    flavor = _create_lb(reporter, agents, allow_member_sriov=True)
    _run('member.create', flavor, reporter, member=NORMAL)
    normal_ports = {port.id for port in conftest.member_ports_in(cloud)}
    assert len(normal_ports) == 2
    for agent in agents.values():
        agent.reset_mock()

    with pytest.raises(member_port_plan.MemberPortError,
                       match='non-SR-IOV member ports'):
        _run('member.create', flavor, reporter, existing=[NORMAL],
             member=DIRECT)
    update = conftest.last_update(reporter)
    assert update['members'] == [{'id': 'm-direct',
                                  'provisioning_status': 'ERROR'}]
    assert update['loadbalancers'] == [{'id': LB_ID,
                                        'provisioning_status': 'ACTIVE'}]
    # The normal member keeps its ports, attached and plugged.
    assert {port.id
            for port in conftest.member_ports_in(cloud)} == normal_ports
    assert normal_ports <= set(conftest.attached(cloud))
    assert not any(agent.unplug_network.called or
                   agent.set_security_group.called
                   for agent in agents.values())
    assert 'a direct member cannot get a VF on that network' in caplog.text


def test_a_normal_member_uses_the_sriov_member_ports(cloud, reporter,
                                                     agents):
    flavor = _create_lb(reporter, agents, allow_member_sriov=True)
    _run('member.create', flavor, reporter, member=DIRECT)
    ports = conftest.member_ports_in(cloud)
    assert {port.binding_vnic_type for port in ports} == {'direct'}

    _run('member.create', flavor, reporter, existing=[DIRECT],
         member=NORMAL)
    assert conftest.member_ports_in(cloud) == ports
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-normal', 'provisioning_status': 'ACTIVE'}]

    # The direct member leaving leaves them to the normal one.
    _run('member.delete', flavor, reporter, existing=[DIRECT, NORMAL],
         member=DIRECT)
    assert conftest.member_ports_in(cloud) == ports
    assert not any(agent.unplug_network.called for agent in agents.values())
    _run('member.delete', flavor, reporter, existing=[NORMAL],
         member=NORMAL)
    assert conftest.member_ports_in(cloud) == []
    assert not {port.id for port in ports} & set(conftest.attached(cloud))


def test_a_second_subnet_of_the_network_is_added_to_its_port(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents, SINGLE)
    _run('member.create', flavor, reporter, member=NORMAL)
    ipv6 = dict(NORMAL, member_id='m-v6', address='2001:db8:2::30',
                subnet_id=fake_cloud.MEMBER_SUBNET_2)
    _run('member.create', flavor, reporter, existing=[NORMAL], member=ipv6)
    [port] = conftest.member_ports_in(cloud)
    assert port.binding_vnic_type == 'normal'
    assert sorted(ip['subnet_id'] for ip in port.fixed_ips) == [
        fake_cloud.MEMBER_SUBNET, fake_cloud.MEMBER_SUBNET_2]


def test_one_batch_with_direct_and_normal_members_makes_sriov_ports(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents, allow_member_sriov=True)
    _run('member.batch_update', flavor, reporter,
         members=[NORMAL, DIRECT, APP], pool_id='p-1')
    kinds = {port.network_id: port.binding_vnic_type
             for port in conftest.member_ports_in(cloud)}
    assert kinds == {fake_cloud.MEMBER_NET: 'direct',
                     fake_cloud.APP_NET: 'normal'}
    assert len(conftest.member_ports_in(cloud)) == 4
    assert len(_plugged_macs(agents)) == 4

    _run('member.batch_update', flavor, reporter,
         existing=[NORMAL, DIRECT, APP], members=[], pool_id='p-1')
    assert conftest.member_ports_in(cloud) == []


def test_the_last_member_of_a_network_takes_its_normal_ports(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    _run('member.create', flavor, reporter, member=APP)
    _run('member.create', flavor, reporter, existing=[APP], member=APP_2)
    ports = conftest.member_ports_in(cloud)
    assert len(ports) == 2

    _run('member.delete', flavor, reporter, existing=[APP, APP_2],
         member=APP)
    assert conftest.member_ports_in(cloud) == ports
    assert not any(agent.unplug_network.called for agent in agents.values())

    _run('member.delete', flavor, reporter, existing=[APP_2], member=APP_2)
    assert conftest.member_ports_in(cloud) == []
    assert not {port.id for port in ports} & set(conftest.attached(cloud))
    unplugged = sorted(agent.unplug_network.call_args.args[0]
                       for agent in agents.values())
    assert unplugged == sorted(port.mac_address for port in ports)
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-app-2', 'provisioning_status': 'DELETED'}]


def test_pool_delete_takes_the_normal_ports_of_its_members(
        cloud, reporter, agents):
    flavor = _create_lb(reporter, agents)
    _run('member.create', flavor, reporter, member=APP)
    assert len(conftest.member_ports_in(cloud)) == 2
    _run('pool.delete', flavor, reporter, existing=[APP],
         pool=dict(conftest.POOL, members=[APP]))
    assert conftest.member_ports_in(cloud) == []


def test_load_balancer_delete_removes_the_normal_ports(cloud, reporter,
                                                       agents):
    flavor = _create_lb(reporter, agents)
    _run('member.create', flavor, reporter, member=APP)
    assert len(conftest.member_ports_in(cloud)) == 2
    reporter.get_loadbalancer.return_value = conftest.octavia_lb([APP])
    with mock.patch('sriov_octavia.vip.delete_vip_port'):
        conftest.run_flow('loadbalancer.delete', store={
            'loadbalancer': conftest.make_loadbalancer(),
            'loadbalancer_id': LB_ID, 'cascade': True})
    assert cloud.compute.servers_by_id == {}
    assert conftest.member_ports_in(cloud) == []


def test_the_replacement_amphorae_get_the_normal_ports(cloud, reporter,
                                                       agents):
    flavor = _create_lb(reporter, agents)
    _run('member.create', flavor, reporter, member=APP)
    ports = {port.id: port for port in conftest.member_ports_in(cloud)}
    old_servers = set(cloud.compute.servers_by_id)
    for agent in agents.values():
        agent.reset_mock()

    _run('loadbalancer.failover', flavor, reporter, existing=[APP],
         loadbalancer=conftest.make_loadbalancer())

    roles = _roles(cloud)
    assert not set(roles) & old_servers
    attached = conftest.attached(cloud)
    assert {port.id for port in conftest.member_ports_in(cloud)} == set(ports)
    for port_id, port in ports.items():
        assert roles[attached[port_id]].lower() in port.name
    # The new amphorae's agents plugged them, as the member flow did.
    assert _plugged_macs(agents) == sorted(
        port.mac_address for port in ports.values())


def test_a_normal_port_nova_cannot_attach_leaves_the_member_error(
        cloud, reporter, agents, caplog):
    flavor = _create_lb(reporter, agents)
    with conftest.failing_attach(cloud, 'Binding failed for port'):
        _run('member.create', flavor, reporter, member=APP)
    assert conftest.last_update(reporter)['members'] == [
        {'id': 'm-app', 'provisioning_status': 'ERROR'}]
    assert 'binding_vif_type' in caplog.text
    assert 'free VFs' not in caplog.text


def test_a_plan_from_before_normal_member_ports_makes_vfs(cloud, reporter,
                                                          agents):
    # A job stored by an older worker planned SR-IOV ports only.
    flavor = _create_lb(reporter, agents, SINGLE, allow_member_sriov=True)
    [server_id] = cloud.compute.servers_by_id
    plan = {'amphorae': [{'id': server_id, 'role': 'STANDALONE'}],
            'plug': [fake_cloud.MEMBER_NET],
            'subnets': {fake_cloud.MEMBER_NET: [fake_cloud.MEMBER_SUBNET]},
            'new_ports': [['STANDALONE', fake_cloud.MEMBER_NET]],
            'release': []}
    [made] = member_ports.CreateMemberPorts().execute(LB_ID, flavor, plan)
    assert made['vnic_type'] == 'direct'
    [port] = conftest.member_ports_in(cloud)
    assert port.security_group_ids == []


def test_members_created_with_the_load_balancer_get_their_ports(
        cloud, reporter, agents):
    flavor = conftest.make_flavor(ACTIVE_STANDBY)
    flavor[sriov_flavor.ALLOW_MEMBER_SRIOV] = True
    for agent in agents.values():
        agent.plug_network.return_value = {'name': 'eth2'}
    # Octavia holds the whole graph the user created in one call.
    reporter.get_loadbalancer.return_value = conftest.octavia_lb([APP, DIRECT])

    conftest.run_flow('loadbalancer.create', store={
        'loadbalancer': conftest.octavia_lb([APP, DIRECT]),
        'loadbalancer_id': LB_ID,
        'flavor': flavor, 'availability_zone': {}})

    kinds = {(port.network_id, port.binding_vnic_type)
             for port in conftest.member_ports_in(cloud)}
    assert kinds == {(fake_cloud.APP_NET, 'normal'),
                     (fake_cloud.MEMBER_NET, 'direct')}
    assert len(conftest.member_ports_in(cloud)) == 4
    attached = conftest.attached(cloud)
    assert all(port.id in attached for port in conftest.member_ports_in(cloud))
    assert len(_plugged_macs(agents)) == 4
