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
"""Load balancer and amphora failover run by taskflow on the fake cloud."""

from unittest import mock

from openstack import exceptions as os_exceptions
import pytest

from flows.tasks import compute
from flows.tasks import failover_compute
from flows.tasks import failover_network
from flows.tasks import identity
from flows.tasks import network
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
SINGLE = sriov_flavor.TOPOLOGY_SINGLE
ACTIVE_STANDBY = sriov_flavor.TOPOLOGY_ACTIVE_STANDBY
LISTENER = {'listener_id': 'l-1', 'protocol': 'TCP', 'protocol_port': 80,
            'allowed_cidrs': ['198.51.100.0/24']}


def _loadbalancer():
    return dict(conftest.make_loadbalancer(), listeners=[LISTENER],
                pools=[])


@pytest.fixture
def reporter():
    with mock.patch('sriov_octavia.octavia_status.StatusReporter') as cls:
        cls.return_value.get_loadbalancer.return_value = _loadbalancer()
        yield cls.return_value


def _store(topology, **extra):
    return dict({'loadbalancer': _loadbalancer(), 'loadbalancer_id': LB_ID,
                 'flavor': conftest.make_flavor(topology),
                 'availability_zone': {}}, **extra)


def _create(topology, reporter):
    conftest.run_flow('loadbalancer.create', store=_store(topology))
    reporter.reset_mock()


def _amphorae(cloud):
    """``{role: (server id, VRRP port id)}`` as the cloud has them."""
    result = {}
    for server in amphorae.find_servers(cloud, LB_ID):
        role = server.metadata[naming.META_ROLE]
        ports = network.find_vrrp_ports(cloud, LB_ID, (role,))
        result[role] = (server.id, [port.id for port in ports
                                    if port.device_id == server.id])
    return result


def _lb_status(reporter):
    return [call.args[0]['loadbalancers'][0]['provisioning_status']
            for call in reporter.update_status.call_args_list]


def _leftover_replacements(cloud):
    return network.find_replacement_vrrp_ports(cloud, LB_ID)


@pytest.mark.parametrize('topology', [SINGLE, ACTIVE_STANDBY])
def test_failover_replaces_every_amphora_and_port(cloud, reporter, agents,
                                                  topology):
    _create(topology, reporter)
    before = _amphorae(cloud)
    booted = len(cloud.compute.created)

    conftest.run_flow('loadbalancer.failover',
                      store=_store(topology))

    after = _amphorae(cloud)
    assert sorted(after) == sorted(before)
    for role, (server_id, [port_id]) in after.items():
        old_server, [old_port] = before[role]
        assert server_id != old_server and port_id != old_port
        assert old_server not in cloud.compute.servers_by_id
        assert old_port not in cloud.network.ports_by_id
        port = cloud.network.get_port(port_id)
        assert port.name == naming.vrrp_port_name(LB_ID, role)
        assert port.binding_vnic_type == 'direct'
        assert port.allowed_address_pairs == [{'ip_address': '203.0.113.5'}]
    assert len(cloud.network.ports_by_id) == 2 * len(after)  # + mgmt
    assert _leftover_replacements(cloud) == []
    # The standby goes first: the master serves while it is replaced.
    assert [server.metadata[naming.META_ROLE] for server
            in cloud.compute.created[booted:]] == list(reversed(
                sriov_flavor.topology_roles(topology)))
    assert _lb_status(reporter) == ['ACTIVE'] * 1
    # The new amphorae got the VIP and the whole firewall; each peer's
    # firewall names the new VRRP address.
    vrrp_ips = {cloud.network.get_port(port_id).fixed_ips[0]['ip_address']
                for _, [port_id] in after.values()}
    for server_id, _ in after.values():
        [mgmt_ip] = [interface.fixed_ips[0]['ip_address'] for interface
                     in cloud.compute.interfaces[server_id]
                     if interface.net_id == 'mgmt-net']
        agent = agents[mgmt_ip]
        agent.plug_vip.assert_called_once()
        body = agent.set_security_group.call_args.args[0]
        assert body['listeners'] == [{'protocol': 'TCP', 'port': 80,
                                      'allowed_cidrs': ['198.51.100.0/24']}]
        assert set(body['vrrp_peers']) == vrrp_ips - set(
            body['vip_interfaces'])
        agent.upload_haproxy_config.assert_called()
        if topology == ACTIVE_STANDBY:
            assert agent.upload_keepalived_config.called
    if topology == ACTIVE_STANDBY:
        assert len(cloud.compute.groups) == 1
        [group_id] = cloud.compute.groups
        for server_id, _ in after.values():
            assert cloud.compute.servers_by_id[server_id].scheduler_hints == {
                'group': group_id}


def test_failed_boot_keeps_the_old_amphora_and_leaks_nothing(
        cloud, reporter, agents):
    _create(SINGLE, reporter)
    before = _amphorae(cloud)
    ports = set(cloud.network.ports_by_id)
    cloud.compute.build_fault = 'No valid host was found.'

    with pytest.raises(compute.ComputeError, match='No valid host'):
        conftest.run_flow('loadbalancer.failover',
                          store=_store(SINGLE))

    assert _amphorae(cloud) == before
    assert set(cloud.network.ports_by_id) == ports
    assert _lb_status(reporter) == ['ERROR']


def test_failed_vip_plug_deletes_the_new_server_and_port(
        cloud, reporter, agents):
    _create(SINGLE, reporter)
    before = _amphorae(cloud)
    ports = set(cloud.network.ports_by_id)
    old_agents = set(agents)

    def plug_fails(*args, **kwargs):
        raise agent_client.AgentUnreachable('https://x:9443', 'timed out')

    real_new_client = agent_client.AgentClient.from_conf.side_effect

    def new_client(mgmt_ip, *args, **kwargs):
        agent = real_new_client(mgmt_ip, *args, **kwargs)
        if mgmt_ip not in old_agents:
            agent.plug_vip.side_effect = plug_fails
        return agent

    with mock.patch.object(agent_client.AgentClient, 'from_conf',
                           side_effect=new_client):
        with pytest.raises(agent_client.AgentUnreachable):
            conftest.run_flow('loadbalancer.failover',
                              store=_store(SINGLE))

    assert _amphorae(cloud) == before
    assert set(cloud.network.ports_by_id) == ports
    assert _lb_status(reporter) == ['ERROR']


def test_a_failed_second_slot_keeps_the_committed_first(cloud, reporter,
                                                        agents):
    _create(ACTIVE_STANDBY, reporter)
    before = _amphorae(cloud)
    attach = cloud.compute.create_server_interface
    calls = []

    def second_attach_fails(server_id, port_id):
        calls.append(port_id)
        if len(calls) == 2:
            raise os_exceptions.BadRequestException('No free VF')
        return attach(server_id, port_id)

    with mock.patch.object(cloud.compute, 'create_server_interface',
                           side_effect=second_attach_fails):
        with pytest.raises(os_exceptions.BadRequestException):
            conftest.run_flow('loadbalancer.failover',
                              store=_store(ACTIVE_STANDBY))

    after = _amphorae(cloud)
    # The standby was replaced and stays; the master was deleted to make
    # room in the anti-affinity group and its replacement undone.
    assert list(after) == [naming.ROLE_BACKUP]
    assert after[naming.ROLE_BACKUP][0] != before[naming.ROLE_BACKUP][0]
    assert _leftover_replacements(cloud) == []
    assert len(cloud.network.ports_by_id) == 2  # its VRRP and mgmt ports
    assert _lb_status(reporter) == ['ERROR']

    # Failing over again repairs the load balancer.
    reporter.reset_mock()
    conftest.run_flow('loadbalancer.failover',
                      store=_store(ACTIVE_STANDBY))
    assert sorted(_amphorae(cloud)) == [naming.ROLE_BACKUP,
                                        naming.ROLE_MASTER]
    assert _lb_status(reporter) == ['ACTIVE']


def test_a_push_failing_after_the_commit_keeps_the_new_amphora(
        cloud, reporter, agents):
    _create(SINGLE, reporter)
    before = _amphorae(cloud)
    with mock.patch('flows.tasks.amphora_state.push',
                    side_effect=agent_client.AgentUnreachable(
                        'https://x:9443', 'timed out')):
        with pytest.raises(agent_client.AgentUnreachable):
            conftest.run_flow('loadbalancer.failover',
                              store=_store(SINGLE))
    [(server_id, [port_id])] = _amphorae(cloud).values()
    assert server_id != before[naming.ROLE_STANDALONE][0]
    assert cloud.network.get_port(port_id).name == naming.vrrp_port_name(
        LB_ID, naming.ROLE_STANDALONE)
    assert _leftover_replacements(cloud) == []
    assert _lb_status(reporter) == ['ERROR']


def test_amphora_failover_replaces_only_the_named_amphora(cloud, reporter,
                                                          agents):
    _create(ACTIVE_STANDBY, reporter)
    before = _amphorae(cloud)
    master_id = before[naming.ROLE_MASTER][0]
    store = _store(ACTIVE_STANDBY,
                   amphora={'id': master_id, 'role': naming.ROLE_MASTER})

    conftest.run_flow('amphora.failover', store=store)

    after = _amphorae(cloud)
    assert after[naming.ROLE_BACKUP] == before[naming.ROLE_BACKUP]
    assert after[naming.ROLE_MASTER][0] != master_id
    assert _lb_status(reporter) == ['ACTIVE']

    # The same request again names an amphora that is gone: nothing to do.
    reporter.reset_mock()
    conftest.run_flow('amphora.failover', store=store)
    assert _amphorae(cloud) == after
    assert _lb_status(reporter) == ['ACTIVE']


def test_a_resumed_boot_uses_the_server_it_booted(cloud, worker_conf):
    old = {'role': naming.ROLE_STANDALONE, 'server_id': 'old-server',
           'port_id': None}
    boot = failover_compute.BootReplacementAmphora(0)
    flavor = conftest.make_flavor(SINGLE)
    issued = identity.IssueReplacementIdentity(0).execute(LB_ID, old)
    [first] = boot.execute(LB_ID, flavor, {}, old, issued)
    [again] = boot.execute(LB_ID, flavor, {}, old, issued)
    assert again == first
    assert len(cloud.compute.servers_by_id) == 1


def test_a_resumed_commit_finishes_the_rename(cloud, reporter, agents):
    _create(SINGLE, reporter)
    old = failover_network.serving_amphora(cloud, LB_ID,
                                           naming.ROLE_STANDALONE)
    [port] = failover_network.CreateReplacementVrrpPort(0).execute(
        _loadbalancer(), conftest.make_flavor(SINGLE),
        [{'id': 'new-server', 'role': naming.ROLE_STANDALONE}])
    commit = failover_network.CommitReplacement(0)
    commit.execute(LB_ID, old, [port])
    commit.execute(LB_ID, old, [port])
    [serving] = network.find_vrrp_ports(cloud, LB_ID)
    assert serving.id == port['id']
    assert old['server_id'] not in cloud.compute.servers_by_id


@pytest.mark.parametrize('topology', [SINGLE, ACTIVE_STANDBY])
@pytest.mark.parametrize('sriov_vip', [True, False])
def test_failover_flows_need_what_the_driver_stores(topology, sriov_vip):
    flavor = conftest.make_flavor(topology, sriov_vip)
    assert conftest.build_flow('loadbalancer.failover', flavor).requires == {
        'loadbalancer', 'loadbalancer_id', 'flavor', 'availability_zone'}
    assert conftest.build_flow('amphora.failover', flavor).requires == {
        'loadbalancer', 'loadbalancer_id', 'flavor', 'availability_zone',
        'amphora'}


@pytest.mark.parametrize('topology, slots', [(SINGLE, 1),
                                             (ACTIVE_STANDBY, 2)])
def test_load_balancer_failover_has_its_topologys_slots(topology, slots):
    flow = conftest.build_flow('loadbalancer.failover',
                               conftest.make_flavor(topology))
    names = [atom.name for atom in conftest.flow_tasks(flow)
             if atom.name.endswith('-commit')]
    assert names == [f'failover-{slot}-commit' for slot in range(slots)]


def test_the_new_amphora_takes_over_the_member_ports(cloud, reporter,
                                                     agents):
    flavor = dict(conftest.make_flavor(SINGLE),
                  **{sriov_flavor.ALLOW_MEMBER_SRIOV: True})
    member = {'member_id': 'm-1', 'pool_id': 'p-1',
              'address': '198.51.100.30', 'protocol_port': 8080,
              'subnet_id': fake_cloud.MEMBER_SUBNET, 'vnic_type': 'direct'}
    created = dict(_loadbalancer(), pools=[{
        'pool_id': 'p-1', 'protocol': 'TCP', 'members': [member]}])
    reporter.get_loadbalancer.return_value = created
    # Created in one call with its member.
    store = dict(_store(SINGLE), flavor=flavor, loadbalancer=created)
    conftest.run_flow('loadbalancer.create', store=store)
    [old] = cloud.compute.servers_by_id
    # The member port the create flow gave the amphora for the member
    # created with the load balancer.
    [port] = cloud.network.ports(name=naming.member_port_name(
        LB_ID, naming.ROLE_STANDALONE, fake_cloud.MEMBER_NET))
    assert port.device_id == old

    conftest.run_flow('loadbalancer.failover', store=store)

    [new] = cloud.compute.servers_by_id
    assert new != old
    assert cloud.network.get_port(port.id).device_id == new
    assert len(member_ports_of(cloud)) == 1
    [mgmt_ip] = [interface.fixed_ips[0]['ip_address'] for interface
                 in cloud.compute.interfaces[new]
                 if interface.net_id == fake_cloud.MGMT_NET]
    agents[mgmt_ip].plug_network.assert_called_once_with(
        port.mac_address, [{'ip_address': port.fixed_ips[0]['ip_address'],
                            'subnet_cidr': '198.51.100.0/24',
                            'gateway': '198.51.100.1', 'host_routes': []}],
        mtu=8950)


def member_ports_of(cloud):
    return [port for port in cloud.network.ports_by_id.values()
            if (port.name or '').startswith('octavia-lb-member-')]
