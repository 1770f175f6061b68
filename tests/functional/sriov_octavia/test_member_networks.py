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
"""Member networks through the whole testbed, with the openstack CLI.

A normal member on a subnet the amphorae are not on gets a normal port of
its network on every amphora, as with Octavia's own amphora driver: bound
by the real Neutron, hot-plugged by the Nova emulator and plugged by the
real amphora agent with a routing table of its own. The member is then
served through the VIP although nothing routes between its network and
the VIP subnet. Per network the first member port decides the kind: an
SR-IOV member where the ports are normal goes to ERROR and the load
balancer keeps serving, a normal member where they are SR-IOV uses them.
"""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from sriov_octavia import amphorae
from sriov_octavia import naming
from tests.functional.sriov_octavia import http_service
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 14000
PREFIX = 'tmn'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
MEMBER_NETWORK = 'member-net'
MEMBER_SUBNET = 'member-subnet'
# The isolated tenant network: no gateway, so nothing routes to it.
ISOLATED_CIDR = '192.0.2.0/24'
ROLES = (naming.ROLE_MASTER, naming.ROLE_BACKUP)
STATUS_TIMEOUT = 180


@pytest.fixture(scope='module')
def client(conn, fabric):
    """A host on the VIP subnet, the one the listener admits."""
    host = http_service.Host(conn, fabric, 'client')
    yield host
    host.remove()


@pytest.fixture(scope='module')
def lb(tb, conn, client):
    """An ACTIVE_STANDBY SR-IOV load balancer serving HTTP to ``client``.

    The flavor allows SR-IOV members. Yields ``{"id", "vip", "pool"}``;
    at the end the load balancer is deleted with whatever member ports
    are left.
    """
    flavor = osc.make_flavor(tb, conn, allow_member_sriov=True,
                             loadbalancer_topology='ACTIVE_STANDBY')
    created = osc.create_load_balancer(tb, osc.unique(tb, 'lb'),
                                       flavor['id'])
    try:
        listener = osc.cli_json(
            tb, 'loadbalancer', 'listener', 'create', '--name',
            osc.unique(tb, 'listener'), '--protocol', 'HTTP',
            '--protocol-port', '80', '--allowed-cidr',
            f'{client.address}/32', '--wait', created['id'])
        pool = osc.cli_json(
            tb, 'loadbalancer', 'pool', 'create', '--name',
            osc.unique(tb, 'pool'), '--listener', listener['id'],
            '--protocol', 'HTTP', '--lb-algorithm', 'ROUND_ROBIN', '--wait')
        yield {'id': created['id'], 'vip': created['vip_address'],
               'pool': pool['id']}
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', created['id'],
                '--wait')
        # Nova let go of the member ports; the delete flow deleted them.
        assert [port.id for port in conn.network.ports()
                if (port.name or '').startswith(
                    naming.member_port_prefix(created['id']))] == []


def servers(conn, lb):
    return amphorae.find_servers(conn, lb['id'])


def member_ports_cli(tb, lb, network_id):
    """The load balancer's member ports on the network, as the CLI lists."""
    return [port for role in ROLES for port in osc.cli_json(
        tb, 'port', 'list', '--long', '--name',
        naming.member_port_name(lb['id'], role, network_id))]


def member_ports(conn, lb, network_id):
    """``{device id: port}`` of the member ports on the network."""
    ports = [port for role in ROLES for port in conn.network.ports(
        name=naming.member_port_name(lb['id'], role, network_id))]
    return {port.device_id: port for port in ports}


def nova_addresses(tb, server_id, network_name):
    """The server's addresses on the network, as ``server show`` has them."""
    shown = osc.cli_json(tb, 'server', 'show', server_id)
    return sorted(entry if isinstance(entry, str) else entry['addr']
                  for entry in shown['addresses'].get(network_name) or ())


def log_offset(tb):
    return os.path.getsize(osc.worker_log_path(tb))


def log_since(tb, offset):
    with open(osc.worker_log_path(tb), errors='replace') as log:
        log.seek(offset)
        return log.read()


def lb_status(tb, lb):
    return osc.cli_json(tb, 'loadbalancer', 'show',
                        lb['id'])['provisioning_status']


def show_member(tb, lb, member_id):
    return osc.cli_json(tb, 'loadbalancer', 'member', 'show', lb['pool'],
                        member_id)


def wait_for_member(tb, lb, member_id):
    """The member once its flow has ended (no PENDING status)."""
    deadline = time.monotonic() + STATUS_TIMEOUT
    while True:
        member = show_member(tb, lb, member_id)
        if not member['provisioning_status'].startswith('PENDING'):
            return member
        assert time.monotonic() < deadline, (
            f'{member}\n{osc.worker_log_tail(tb)}')
        time.sleep(2)


def create_member(tb, lb, address, subnet_id, *options, wait=True):
    created = osc.cli_json(
        tb, 'loadbalancer', 'member', 'create', '--name',
        osc.unique(tb, 'member'), '--subnet-id', subnet_id, '--address',
        address, '--protocol-port', str(http_service.MEMBER_PORT),
        *options, *(('--wait',) if wait else ()), lb['pool'])
    return (show_member(tb, lb, created['id']) if wait
            else wait_for_member(tb, lb, created['id']))


def delete_member(tb, lb, member_id):
    osc.cli(tb, 'loadbalancer', 'member', 'delete', lb['pool'], member_id,
            '--wait')
    assert lb_status(tb, lb) == 'ACTIVE'


@contextlib.contextmanager
def member_host(tb, conn, fabric, name, subnet_id):
    """A host on the subnet answering HTTP with its name; yields its address.

    Its address is reserved in Neutron; it has no route off its subnet.
    """
    subnet = conn.network.get_subnet(subnet_id)
    port = conn.network.create_port(network_id=subnet.network_id,
                                    fixed_ips=[{'subnet_id': subnet.id}],
                                    name=osc.unique(tb, name))
    server = None
    try:
        address = port.fixed_ips[0]['ip_address']
        namespace = fabric.add_host(
            name, subnet.network_id, port.mac_address,
            f'{address}/{subnet.cidr.split("/")[1]}')
        # ip netns exec execs the server: the PID is the server's own.
        server = subprocess.Popen(
            ['ip', 'netns', 'exec', namespace, sys.executable, '-c',
             http_service.MEMBER_SERVER, name,
             str(http_service.MEMBER_PORT)], stderr=subprocess.DEVNULL)
        yield address
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        fabric.remove_host(name)
        conn.network.delete_port(port)


@contextlib.contextmanager
def isolated_subnet(tb):
    """A tenant network and subnet of its own, without a gateway."""
    net = osc.cli_json(tb, 'network', 'create', osc.unique(tb, 'isolated'))
    try:
        subnet = osc.cli_json(
            tb, 'subnet', 'create', '--network', net['id'],
            '--subnet-range', ISOLATED_CIDR, '--gateway', 'none',
            osc.unique(tb, 'isolated'))
        try:
            yield subnet
        finally:
            osc.cli(tb, 'subnet', 'delete', subnet['id'])
    finally:
        osc.cli(tb, 'network', 'delete', net['id'])


@contextlib.contextmanager
def members_deleted(tb, lb):
    """Collects member ids; those not deleted by the test go at the end."""
    created = []
    try:
        yield created
    finally:
        shown = {member['id'] for member in osc.cli_json(
            tb, 'loadbalancer', 'member', 'list', lb['pool'])}
        for member_id in created:
            if member_id in shown:
                osc.cli(tb, 'loadbalancer', 'member', 'delete', lb['pool'],
                        member_id, '--wait')


def test_a_member_on_an_isolated_network_gets_a_normal_port_each(
        tb, conn, fabric, lb, client):
    with contextlib.ExitStack() as stack:
        subnet = stack.enter_context(isolated_subnet(tb))
        network_id = subnet['network_id']
        network_name = conn.network.get_network(network_id).name
        address = stack.enter_context(member_host(tb, conn, fabric, 'iso',
                                                  subnet['id']))
        created = stack.enter_context(members_deleted(tb, lb))
        member = create_member(tb, lb, address, subnet['id'])
        created.append(member['id'])
        assert member['provisioning_status'] == 'ACTIVE'
        assert member['vnic_type'] == 'normal'
        assert lb_status(tb, lb) == 'ACTIVE'

        # Neutron: a normal port per amphora, bound by Open vSwitch.
        ports = member_ports(conn, lb, network_id)
        assert sorted(ports) == sorted(server.id
                                       for server in servers(conn, lb))
        for server in servers(conn, lb):
            port = ports[server.id]
            role = server.metadata[naming.META_ROLE]
            assert port.name == naming.member_port_name(lb['id'], role,
                                                        network_id)
            assert port.binding_vnic_type == 'normal'
            assert port.binding_vif_type == 'ovs'
            # Nova: the extra interface on each amphora, with the port's
            # address on the isolated network.
            assert nova_addresses(tb, server.id, network_name) == [
                port.fixed_ips[0]['ip_address']]

        # HTTP through the VIP reaches the member over its network's port.
        assert client.get(lb['vip'], 4) == ['iso'] * 4

        delete_member(tb, lb, member['id'])
        # The last member on the network takes the ports along.
        assert member_ports_cli(tb, lb, network_id) == []
        for server in servers(conn, lb):
            assert nova_addresses(tb, server.id, network_name) == []
        for port in ports.values():
            assert conn.network.find_port(port.id) is None


def test_an_sriov_member_where_the_ports_are_normal_is_error(
        tb, conn, fabric, lb, client):
    subnet = conn.network.find_subnet(MEMBER_SUBNET, ignore_missing=False)
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(member_host(tb, conn, fabric,
                                                  'normal', subnet.id))
        created = stack.enter_context(members_deleted(tb, lb))
        normal = create_member(tb, lb, address, subnet.id)
        created.append(normal['id'])
        assert normal['provisioning_status'] == 'ACTIVE'
        ports = member_ports(conn, lb, subnet.network_id)
        assert {port.binding_vnic_type for port in ports.values()} == {
            'normal'}
        assert len(ports) == 2
        assert client.get(lb['vip'], 4) == ['normal'] * 4

        offset = log_offset(tb)
        direct = create_member(tb, lb, '198.51.100.240', subnet.id,
                               '--request-sriov', wait=False)
        created.append(direct['id'])
        # As Octavia's SR-IOV guide says: provisioning_status ERROR.
        assert direct['provisioning_status'] == 'ERROR'
        assert direct['operating_status'] != 'ONLINE'
        assert lb_status(tb, lb) == 'ACTIVE'
        assert 'non-SR-IOV member ports' in log_since(tb, offset)

        # The normal member keeps its ports and is still served.
        assert {device: port.id for device, port in member_ports(
            conn, lb, subnet.network_id).items()} == {
                device: port.id for device, port in ports.items()}
        assert client.get(lb['vip'], 4) == ['normal'] * 4

        # The member in ERROR is deleted like any other; the ports go with
        # the last member of the network.
        delete_member(tb, lb, direct['id'])
        assert len(member_ports(conn, lb, subnet.network_id)) == 2
        delete_member(tb, lb, normal['id'])
        assert member_ports_cli(tb, lb, subnet.network_id) == []


def test_a_normal_member_uses_the_sriov_member_ports(tb, conn, fabric, lb,
                                                     client):
    subnet = conn.network.find_subnet(MEMBER_SUBNET, ignore_missing=False)
    with contextlib.ExitStack() as stack:
        on_vf = stack.enter_context(member_host(tb, conn, fabric, 'onvf',
                                                subnet.id))
        beside = stack.enter_context(member_host(tb, conn, fabric, 'beside',
                                                 subnet.id))
        created = stack.enter_context(members_deleted(tb, lb))
        direct = create_member(tb, lb, on_vf, subnet.id, '--request-sriov')
        created.append(direct['id'])
        assert direct['provisioning_status'] == 'ACTIVE'
        ports = member_ports(conn, lb, subnet.network_id)
        assert len(ports) == 2
        assert {(port.binding_vnic_type, port.binding_vif_type)
                for port in ports.values()} == {('direct', 'hw_veb')}

        normal = create_member(tb, lb, beside, subnet.id)
        created.append(normal['id'])
        assert normal['provisioning_status'] == 'ACTIVE'
        assert normal['vnic_type'] == 'normal'
        # No second port: one interface per amphora on the network.
        assert {device: port.id for device, port in member_ports(
            conn, lb, subnet.network_id).items()} == {
                device: port.id for device, port in ports.items()}
        for server in servers(conn, lb):
            assert nova_addresses(tb, server.id, MEMBER_NETWORK) == [
                ports[server.id].fixed_ips[0]['ip_address']]

        # Both are served over the SR-IOV ports.
        assert sorted(set(client.get(lb['vip'], 6))) == ['beside', 'onvf']

        delete_member(tb, lb, direct['id'])
        assert len(member_ports(conn, lb, subnet.network_id)) == 2
        assert client.get(lb['vip'], 4) == ['beside'] * 4
        delete_member(tb, lb, normal['id'])
        assert member_ports_cli(tb, lb, subnet.network_id) == []


def test_failover_gives_the_new_amphorae_the_normal_ports(
        tb, conn, fabric, lb, client):
    with contextlib.ExitStack() as stack:
        subnet = stack.enter_context(isolated_subnet(tb))
        network_id = subnet['network_id']
        address = stack.enter_context(member_host(tb, conn, fabric, 'fo',
                                                  subnet['id']))
        created = stack.enter_context(members_deleted(tb, lb))
        member = create_member(tb, lb, address, subnet['id'])
        created.append(member['id'])
        before = {port.id for port in member_ports(conn, lb,
                                                   network_id).values()}
        old = {server.id for server in servers(conn, lb)}

        osc.cli(tb, 'loadbalancer', 'failover', lb['id'])
        assert osc.wait_for_status(tb, lb['id'], ('ACTIVE', 'ERROR'))[
            'provisioning_status'] == 'ACTIVE'

        # The same ports, now on the new amphorae, and served again.
        ports = member_ports(conn, lb, network_id)
        assert {port.id for port in ports.values()} == before
        new = {server.id for server in servers(conn, lb)}
        assert not new & old
        assert sorted(ports) == sorted(new)
        assert client.get(lb['vip'], 4) == ['fo'] * 4

        delete_member(tb, lb, member['id'])
        assert member_ports_cli(tb, lb, network_id) == []
