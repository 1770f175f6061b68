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
"""The compute emulator through openstacksdk and the openstack CLI, as a
client sees it, binding ports in the real Neutron.

The emulator runs without kernel plumbing here (servers are API state);
test_nova_plumbing.py covers the namespaces and agents.
"""

import os
import re
import subprocess
import sys
import types
import uuid

from openstack import exceptions as sdk_exceptions
import pytest

from tests.functional.testbed import nova_env
from tests.functional.testbed.nova_env import PROJECT

NO_VALID_HOST = 'No valid host was found. There are not enough hosts ' \
    'available.'
PCI_SLOT = re.compile(r'^0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp('tnv-api'))
    with nova_env.neutron_testbed(state_dir, start_nova=False) as testbed:
        emulator = nova_env.Emulator(testbed)
        emulator.start()
        conn = testbed.connect()
        try:
            yield _populate(testbed, emulator, conn)
        finally:
            conn.close()
            emulator.stop()


def _network(conn, name, physnet, network_type, cidr):
    network = conn.network.create_network(
        name=name, provider_network_type=network_type,
        provider_physical_network=physnet, project_id=PROJECT)
    conn.network.create_subnet(network_id=network.id, cidr=cidr,
                               ip_version=4, enable_dhcp=False,
                               project_id=PROJECT)
    return network


def _populate(testbed, emulator, conn):
    image = conn.image.create_image(
        name='tnv-amphora', disk_format='qcow2', container_format='bare',
        tags=['amphora'], data=b'not a disk', allow_duplicates=True)
    return types.SimpleNamespace(
        testbed=testbed, emulator=emulator, conn=conn, image=image,
        sriov_net=_network(conn, 'tnv-vip', nova_env.SRIOV_PHYSNET, 'vlan',
                           '198.51.100.0/24'),
        mgmt_net=_network(conn, 'tnv-mgmt', nova_env.MGMT_PHYSNET, 'flat',
                          '203.0.113.0/26'),
        # No agent maps this physical network: Neutron cannot bind here.
        dark_net=_network(conn, 'tnv-dark', 'tnvdark', 'flat',
                          '203.0.113.64/26'),
        flavor=conn.compute.create_flavor(name='tnv-plain', vcpus=1,
                                          ram=1024, disk=2))


class Tracker:
    """What a test creates, removed again whatever the test's outcome."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.conn = cloud.conn
        self.servers, self.ports, self.aggregates = [], [], []
        self.flavors, self.groups = [], []

    def server(self, flavor=None, networks=(), **kwargs):
        server = self.conn.compute.create_server(
            name=f'tnv-{uuid.uuid4().hex[:6]}',
            flavor_id=(flavor or self.cloud.flavor).id,
            image_id=self.cloud.image.id, networks=list(networks),
            **kwargs)
        self.servers.append(server)
        return server

    def port(self, network=None, vnic_type='direct'):
        port = self.conn.network.create_port(
            network_id=(network or self.cloud.sriov_net).id,
            binding_vnic_type=vnic_type, project_id=PROJECT)
        self.ports.append(port)
        return port

    def aggregate(self, hosts, metadata, zone=None):
        aggregate = self.conn.compute.create_aggregate(
            name=f'tnv-agg-{uuid.uuid4().hex[:6]}', availability_zone=zone)
        self.aggregates.append(aggregate)
        for host in hosts:
            self.conn.compute.add_host_to_aggregate(aggregate, host)
        return self.conn.compute.set_aggregate_metadata(aggregate, metadata)

    def flavor(self, extra_specs):
        flavor = self.conn.compute.create_flavor(
            name=f'tnv-{uuid.uuid4().hex[:6]}', vcpus=1, ram=1024, disk=2)
        self.flavors.append(flavor)
        self.conn.compute.create_flavor_extra_specs(flavor, extra_specs)
        return flavor

    def group(self, policy):
        group = self.conn.compute.create_server_group(
            name=f'tnv-{uuid.uuid4().hex[:6]}', policy=policy)
        self.groups.append(group)
        return group

    def close(self):
        nova_env.clear_faults(self.cloud.testbed)
        for server in self.servers:
            nova_env.delete_server(self.conn, server)
        for port in self.ports:
            self.conn.network.delete_port(port, ignore_missing=True)
        for aggregate in self.aggregates:
            aggregate = self.conn.compute.get_aggregate(aggregate)
            for host in aggregate.hosts:
                self.conn.compute.remove_host_from_aggregate(aggregate, host)
            self.conn.compute.delete_aggregate(aggregate)
        for flavor in self.flavors:
            self.conn.compute.delete_flavor(flavor, ignore_missing=True)
        for group in self.groups:
            self.conn.compute.delete_server_group(group, ignore_missing=True)


@pytest.fixture
def make(cloud):
    tracker = Tracker(cloud)
    yield tracker
    tracker.close()


def test_microversion_negotiated_and_echoed(cloud):
    response = cloud.conn.compute.get('/flavors', microversion='2.61')
    assert response.headers['OpenStack-API-Version'] == 'compute 2.61'
    too_new = cloud.conn.compute.get('/flavors', microversion='2.200')
    assert too_new.status_code == 406
    data = cloud.conn.compute.get_endpoint_data()
    assert data.max_microversion == (2, 95)


def test_flavor_extra_specs_round_trip(cloud):
    compute = cloud.conn.compute
    flavor = compute.create_flavor(name='tnv-specs', vcpus=2, ram=2048,
                                   disk=5, description='round trip')
    try:
        compute.create_flavor_extra_specs(
            flavor, {'sriov-nic': 'true', 'hw:cpu_policy': 'dedicated'})
        compute.update_flavor_extra_specs_property(flavor, 'sriov-nic',
                                                   'false')
        assert compute.get_flavor_extra_specs_property(
            flavor, 'sriov-nic') == 'false'
        compute.delete_flavor_extra_specs_property(flavor, 'hw:cpu_policy')
        found = compute.find_flavor('tnv-specs')
        assert found.id == flavor.id
        fetched = compute.get_flavor(flavor.id)
        assert fetched.extra_specs == {'sriov-nic': 'false'}
        assert (fetched.vcpus, fetched.ram, fetched.disk) == (2, 2048, 5)
        assert fetched.description == 'round trip'
        assert flavor.id in [f.id for f in compute.flavors()]
        with pytest.raises(sdk_exceptions.ConflictException):
            compute.create_flavor(name='tnv-specs', vcpus=1, ram=1, disk=1)
    finally:
        compute.delete_flavor(flavor)
    with pytest.raises(sdk_exceptions.NotFoundException):
        compute.get_flavor(flavor.id)


def test_aggregate_round_trip(cloud, make):
    compute = cloud.conn.compute
    aggregate = make.aggregate(['compute-3'], {'tnv-key': 'one'},
                               zone='tnv-zone-rt')
    aggregate = compute.set_aggregate_metadata(
        aggregate, {'tnv-key': None, 'tnv-other': 'two'})
    fetched = compute.find_aggregate(aggregate.name)
    assert fetched.hosts == ['compute-3']
    assert fetched.availability_zone == 'tnv-zone-rt'
    assert fetched.metadata == {'availability_zone': 'tnv-zone-rt',
                                'tnv-other': 'two'}
    assert fetched.uuid
    zones = {z.name for z in compute.availability_zones()}
    assert 'tnv-zone-rt' in zones
    with pytest.raises(sdk_exceptions.ConflictException):
        compute.add_host_to_aggregate(aggregate, 'compute-3')
    with pytest.raises(sdk_exceptions.NotFoundException):
        compute.add_host_to_aggregate(aggregate, 'no-such-host')
    with pytest.raises(sdk_exceptions.BadRequestException):
        compute.delete_aggregate(aggregate)
    compute.remove_host_from_aggregate(aggregate, 'compute-3')
    assert compute.get_aggregate(aggregate).hosts == []


def test_hypervisors_list_the_inventory(cloud):
    hypervisors = list(cloud.conn.compute.hypervisors(details=True))
    assert sorted(h.name for h in hypervisors) == sorted(
        nova_env.INVENTORY['hosts'])
    assert all(h.state == 'up' and h.status == 'enabled'
               for h in hypervisors)


def test_placement_follows_aggregate_metadata(cloud, make):
    make.aggregate(['compute-2'], {'tnv-fast': 'true'})
    flavor = make.flavor({'aggregate_instance_extra_specs:tnv-fast': 'true',
                          # Other namespaces are not the aggregate filter's.
                          'hw:cpu_policy': 'dedicated'})
    server = nova_env.wait_active(cloud.conn, make.server(flavor))
    assert server.compute_host == 'compute-2'
    assert server.flavor.extra_specs['aggregate_instance_extra_specs:'
                                     'tnv-fast'] == 'true'

    unmatched = make.flavor({'tnv-fast': 'false'})
    failed = nova_env.wait_error(cloud.conn, make.server(unmatched))
    assert failed.fault['code'] == 500
    assert failed.fault['message'] == NO_VALID_HOST
    assert failed.compute_host is None


def test_extra_spec_operators(cloud, make):
    make.aggregate(['compute-1'], {'tnv-vfs': '8', 'tnv-nic': 'x710'})
    flavor = make.flavor({'tnv-vfs': '>= 4', 'tnv-nic': '<in> 71'})
    server = nova_env.wait_active(cloud.conn, make.server(flavor))
    assert server.compute_host == 'compute-1'
    too_many = make.flavor({'tnv-vfs': '>= 16'})
    nova_env.wait_error(cloud.conn, make.server(too_many))


def test_availability_zone(cloud, make):
    make.aggregate(['compute-3'], {}, zone='tnv-az')
    server = make.server(availability_zone='tnv-az',
                         networks=[{'uuid': cloud.mgmt_net.id}])
    server = nova_env.wait_active(cloud.conn, server)
    assert server.compute_host == 'compute-3'
    assert server.availability_zone == 'tnv-az'
    port = next(cloud.conn.network.ports(device_id=server.id))
    assert port.device_owner == 'compute:tnv-az'
    with pytest.raises(sdk_exceptions.BadRequestException):
        make.server(availability_zone='tnv-no-such-zone')


def test_anti_affinity_spreads_and_then_fails(cloud, make):
    make.aggregate(nova_env.SRIOV_HOSTS, {'tnv-sriov': 'true'})
    flavor = make.flavor({'tnv-sriov': 'true'})
    group = make.group('anti-affinity')
    hints = {'group': group.id}
    first = nova_env.wait_active(
        cloud.conn, make.server(flavor, scheduler_hints=hints))
    second = nova_env.wait_active(
        cloud.conn, make.server(flavor, scheduler_hints=hints))
    assert {first.compute_host, second.compute_host} == set(
        nova_env.SRIOV_HOSTS)
    assert second.server_groups == [group.id]
    third = nova_env.wait_error(
        cloud.conn, make.server(flavor, scheduler_hints=hints))
    assert third.fault['message'] == NO_VALID_HOST
    members = cloud.conn.compute.get_server_group(group.id).member_ids
    assert set(members) == {first.id, second.id, third.id}


def test_affinity_keeps_servers_together(cloud, make):
    group = make.group('affinity')
    hints = {'group': group.id}
    first = nova_env.wait_active(cloud.conn,
                                 make.server(scheduler_hints=hints))
    second = nova_env.wait_active(cloud.conn,
                                  make.server(scheduler_hints=hints))
    assert first.compute_host == second.compute_host


def test_boot_binds_ports_like_nova(cloud, make):
    conn = cloud.conn
    vf_port = make.port()
    server = make.server(networks=[{'uuid': cloud.mgmt_net.id},
                                   {'port': vf_port.id}])
    server = nova_env.wait_active(conn, server)
    host = server.compute_host
    assert host in nova_env.SRIOV_HOSTS
    assert nova_env.free_vfs(cloud.testbed, host) == \
        nova_env.VFS_PER_HOST - 1

    port = conn.network.get_port(vf_port.id)
    assert port.binding_host_id == host
    assert port.binding_vif_type == 'hw_veb'
    assert port.device_id == server.id
    assert port.device_owner == 'compute:nova'
    assert PCI_SLOT.match(port.binding_profile['pci_slot'])
    assert port.binding_profile['physical_network'] == 'sriovnet'
    assert port.binding_profile['pci_vendor_info'] == '8086:154c'

    mgmt_ports = list(conn.network.ports(network_id=cloud.mgmt_net.id,
                                         device_id=server.id))
    assert len(mgmt_ports) == 1
    assert mgmt_ports[0].binding_vif_type == 'ovs'
    assert mgmt_ports[0].binding_host_id == host

    interfaces = {i.port_id: i for i in conn.compute.server_interfaces(
        server)}
    assert set(interfaces) == {vf_port.id, mgmt_ports[0].id}
    assert interfaces[vf_port.id].mac_addr == port.mac_address
    assert server.addresses['tnv-vip'][0]['addr'] == \
        port.fixed_ips[0]['ip_address']

    nova_env.delete_server(conn, server)
    # A port the user made is only unbound, the one Nova made is deleted.
    assert nova_env.port_unbound(conn, vf_port.id)
    assert conn.network.find_port(mgmt_ports[0].id) is None
    assert nova_env.free_vfs(cloud.testbed, host) == nova_env.VFS_PER_HOST


def test_force_delete(cloud, make):
    port = make.port()
    server = nova_env.wait_active(
        cloud.conn, make.server(networks=[{'port': port.id}]))
    cloud.conn.compute.delete_server(server, force=True)
    cloud.conn.compute.wait_for_delete(server, interval=0.3, wait=120)
    assert nova_env.port_unbound(cloud.conn, port.id)


def test_boot_needs_a_free_vf(cloud, make):
    # Three VF ports, but no host has more than two VFs.
    ports = [make.port() for _ in range(3)]
    server = make.server(networks=[{'port': p.id} for p in ports])
    failed = nova_env.wait_error(cloud.conn, server)
    assert failed.fault['message'] == NO_VALID_HOST
    assert all(nova_env.port_unbound(cloud.conn, p.id) for p in ports)
    assert all(nova_env.free_vfs(cloud.testbed, h) == nova_env.VFS_PER_HOST
               for h in nova_env.SRIOV_HOSTS)


def test_port_in_use_is_refused(cloud, make):
    port = make.port()
    nova_env.wait_active(cloud.conn, make.server(networks=[{'port':
                                                            port.id}]))
    with pytest.raises(sdk_exceptions.ConflictException):
        make.server(networks=[{'port': port.id}])


def test_vf_exhaustion_on_attach(cloud, make):
    conn = cloud.conn
    server = nova_env.wait_active(
        conn, make.server(availability_zone='nova:compute-1'))
    assert server.compute_host == 'compute-1'
    attached = []
    for _ in range(nova_env.VFS_PER_HOST):
        port = make.port()
        attachment = conn.compute.create_server_interface(server,
                                                          port_id=port.id)
        assert attachment.port_id == port.id
        attached.append(port)
    assert nova_env.free_vfs(cloud.testbed, 'compute-1') == 0
    slots = {conn.network.get_port(p.id).binding_profile['pci_slot']
             for p in attached}
    assert len(slots) == nova_env.VFS_PER_HOST

    extra = make.port()
    with pytest.raises(sdk_exceptions.BadRequestException) as failure:
        conn.compute.create_server_interface(server, port_id=extra.id)
    assert 'Failed to claim PCI device' in str(failure.value)
    assert nova_env.port_unbound(conn, extra.id)
    assert extra.id not in [i.port_id
                            for i in conn.compute.server_interfaces(server)]

    conn.compute.delete_server_interface(attached[0], server=server)
    nova_env.wait_until(lambda: nova_env.port_unbound(conn, attached[0].id),
                        what='the detached port to be unbound')
    nova_env.wait_until(
        lambda: nova_env.free_vfs(cloud.testbed, 'compute-1') == 1,
        what='the VF to be freed')
    conn.compute.create_server_interface(server, port_id=extra.id)
    assert conn.network.get_port(extra.id).binding_host_id == 'compute-1'


def test_attach_by_network_creates_and_detach_deletes(cloud, make):
    conn = cloud.conn
    server = nova_env.wait_active(conn, make.server())
    attachment = conn.compute.create_server_interface(
        server, net_id=cloud.mgmt_net.id)
    port = conn.network.get_port(attachment.port_id)
    assert port.device_id == server.id
    assert port.binding_vif_type == 'ovs'
    fetched = conn.compute.get_server_interface(port.id, server=server)
    assert fetched.mac_addr == port.mac_address
    conn.compute.delete_server_interface(port.id, server=server)
    nova_env.wait_until(lambda: conn.network.find_port(port.id) is None,
                        what='the port Nova created to be deleted')


def test_binding_failure_fails_boot_and_attach(cloud, make):
    conn = cloud.conn
    failed = nova_env.wait_error(
        conn, make.server(networks=[{'uuid': cloud.dark_net.id}]))
    assert failed.fault['code'] == 500
    assert 'Binding failed for port' in failed.fault['message']
    assert list(conn.network.ports(network_id=cloud.dark_net.id)) == []

    server = nova_env.wait_active(conn, make.server())
    port = make.port(cloud.dark_net, vnic_type='normal')
    with pytest.raises(sdk_exceptions.HttpException) as failure:
        conn.compute.create_server_interface(server, port_id=port.id)
    assert failure.value.status_code == 500
    assert nova_env.port_unbound(conn, port.id)
    assert list(conn.compute.server_interfaces(server)) == []


def test_fault_schedule_fail_once(cloud, make):
    nova_env.set_faults(cloud.testbed, schedule='fail_once')
    failed = nova_env.wait_error(cloud.conn, make.server())
    assert failed.fault['message'] == NO_VALID_HOST
    nova_env.wait_active(cloud.conn, make.server())


def test_fault_vf_exhausted(cloud, make):
    nova_env.set_faults(cloud.testbed, vf_exhausted=True)
    port = make.port()
    failed = nova_env.wait_error(cloud.conn,
                                 make.server(networks=[{'port': port.id}]))
    assert failed.fault['message'] == NO_VALID_HOST
    server = nova_env.wait_active(cloud.conn, make.server())
    with pytest.raises(sdk_exceptions.BadRequestException):
        cloud.conn.compute.create_server_interface(server, port_id=port.id)
    nova_env.clear_faults(cloud.testbed)
    cloud.conn.compute.create_server_interface(server, port_id=port.id)


def test_fault_attach_fails_and_gives_back_the_vf(cloud, make):
    conn = cloud.conn
    server = nova_env.wait_active(
        conn, make.server(availability_zone='nova:compute-2'))
    nova_env.set_faults(cloud.testbed, attach='fail')
    port = make.port()
    for _ in range(2):
        with pytest.raises(sdk_exceptions.HttpException) as failure:
            conn.compute.create_server_interface(server, port_id=port.id)
        assert failure.value.status_code == 500
    assert nova_env.port_unbound(conn, port.id)
    assert nova_env.free_vfs(cloud.testbed, 'compute-2') == \
        nova_env.VFS_PER_HOST


def test_fault_boot_fails_and_cleans_up(cloud, make):
    nova_env.set_faults(cloud.testbed, boot='fail_once')
    port = make.port()
    failed = nova_env.wait_error(
        cloud.conn, make.server(networks=[{'uuid': cloud.mgmt_net.id},
                                          {'port': port.id}]))
    assert failed.fault['message'].startswith(
        f'Build of instance {failed.id} aborted')
    assert nova_env.port_unbound(cloud.conn, port.id)
    assert list(cloud.conn.network.ports(device_id=failed.id)) == []
    assert all(nova_env.free_vfs(cloud.testbed, h) == nova_env.VFS_PER_HOST
               for h in nova_env.SRIOV_HOSTS)


def test_fault_api_latency_and_admin_api(cloud):
    faults = nova_env.set_faults(cloud.testbed, api_latency_ms=50)
    assert faults == {'api_latency_ms': 50}
    try:
        # Slower, still correct.
        assert cloud.conn.compute.get_flavor(cloud.flavor.id).name == \
            'tnv-plain'
    finally:
        nova_env.clear_faults(cloud.testbed)
    assert nova_env.admin(cloud.testbed, 'GET', '/faults').json() == {
        'faults': {}}
    assert nova_env.admin(cloud.testbed, 'POST', '/faults',
                          {'schedule': 'sometimes'}).status_code == 400
    # Without kernel plumbing there is no agent to cut off.
    assert nova_env.admin(cloud.testbed, 'POST', '/faults',
                          {'agent': 'unreachable'}).status_code == 400
    assert nova_env.admin(cloud.testbed, 'GET', '/faults').json() == {
        'faults': {}}


def test_state_survives_a_restart(cloud, make):
    conn = cloud.conn
    port = make.port()
    aggregate = make.aggregate(['compute-1'], {'tnv-restart': 'yes'})
    server = nova_env.wait_active(
        conn, make.server(networks=[{'port': port.id}],
                          availability_zone='nova:compute-1'))
    cloud.emulator.restart()
    assert conn.compute.get_server(server.id).status == 'ACTIVE'
    assert conn.compute.get_aggregate(aggregate.id).metadata == {
        'tnv-restart': 'yes'}
    assert nova_env.free_vfs(cloud.testbed, 'compute-1') == \
        nova_env.VFS_PER_HOST - 1
    assert conn.image.get_image(cloud.image.id).status == 'active'


def test_image_lookup_by_tag(cloud):
    images = list(cloud.conn.image.images(tag='amphora', status='active'))
    assert [i.id for i in images] == [cloud.image.id]
    assert list(cloud.conn.image.images(tag='tnv-no-such-tag')) == []


def test_openstack_cli(cloud, make):
    # Commands that need no Keystone: the testbed's clouds.yaml has none
    # (e.g. "server list" and "flavor create" look up projects there).
    env = cloud.testbed.cli_env({'PATH': '/usr/bin:/bin'})
    openstack = os.path.join(os.path.dirname(sys.executable), 'openstack')

    def cli(*args):
        return subprocess.run([openstack] + list(args), env=env, check=True,
                              capture_output=True, text=True,
                              timeout=120).stdout

    name = f'tnv-cli-{uuid.uuid4().hex[:6]}'
    aggregate = f'tnv-cli-{uuid.uuid4().hex[:6]}'
    cli('aggregate', 'create', '--zone', 'tnv-cli-zone', '--property',
        'tnv-cli=yes', aggregate)
    make.aggregates.append(cloud.conn.compute.find_aggregate(aggregate))
    cli('aggregate', 'add', 'host', aggregate, 'compute-3')
    cli('server', 'create', '--flavor', 'tnv-plain', '--image',
        'tnv-amphora', '--nic', f'net-id={cloud.mgmt_net.id}',
        '--availability-zone', 'tnv-cli-zone', '--wait', name)
    make.servers.append(cloud.conn.compute.find_server(name))
    shown = cli('server', 'show', '-f', 'value', '-c', 'status', '-c',
                'OS-EXT-SRV-ATTR:host', name)
    assert shown.split() == ['compute-3', 'ACTIVE']
    # compute-3 has no VF: a direct port cannot go there ...
    port = make.port()
    with pytest.raises(subprocess.CalledProcessError) as failure:
        cli('server', 'add', 'port', name, port.id)
    assert 'Failed to claim PCI device' in failure.value.stderr
    # ... a normal one can, and comes off again.
    normal = make.port(cloud.mgmt_net, vnic_type='normal')
    cli('server', 'add', 'port', name, normal.id)
    assert cloud.conn.network.get_port(normal.id).binding_host_id == \
        'compute-3'
    cli('server', 'remove', 'port', name, normal.id)
    nova_env.wait_until(lambda: nova_env.port_unbound(cloud.conn, normal.id),
                        what='the removed port to be unbound')
    zones = cli('availability', 'zone', 'list', '--compute', '-f', 'value',
                '-c', 'Zone Name').split()
    assert 'tnv-cli-zone' in zones
    hosts = cli('hypervisor', 'list', '-f', 'value', '-c',
                'Hypervisor Hostname').split()
    assert sorted(hosts) == sorted(nova_env.INVENTORY['hosts'])
