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
"""SR-IOV members through the whole testbed, with the openstack CLI.

A member created with ``--request-sriov`` under a flavor with
``allow_member_sriov`` gets a direct port on its subnet for the amphora,
bound hw_veb by the real Neutron, hot-plugged as a VF by the Nova emulator
and plugged by the real amphora agent. Real packets then show that the
amphora reaches the member over that VF and that the stateless firewall
admits the member's replies and nothing else.
"""

import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest

from flows.tasks import compute
from flows.tasks import network
from sriov_octavia import amphorae
from sriov_octavia import naming
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import \
    create_load_balancer
from tests.functional.sriov_octavia.openstack_cli import make_flavor
from tests.functional.sriov_octavia.openstack_cli import worker_log_path

PORT_BASE = 23000
PREFIX = 'tmb'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
STATUS_TIMEOUT = 180
# TCP ports the member hosts listen on (inside their namespaces).
MEMBER_PORT = 23080
OTHER_PORT = 23081
CONNECT_TIMEOUT = 3

_SERVER = '''
import socket, sys
server = socket.socket(socket.AF_INET6 if ':' in sys.argv[1]
                       else socket.AF_INET)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen()
print('ready', flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(f'pong {sys.argv[1]} {sys.argv[2]}'.encode())
    connection.close()
'''

_CLIENT = '''
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])),
                              timeout=float(sys.argv[3])) as connection:
    print(connection.recv(100).decode())
'''


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


def make_member_flavor(tb, conn, **metadata):
    return make_flavor(tb, conn, allow_member_sriov=True, **metadata)


@pytest.fixture(scope='module')
def member_flavor(tb, conn):
    return make_member_flavor(tb, conn)


@pytest.fixture(scope='module')
def lb(tb, conn, member_flavor):
    """An SR-IOV load balancer with a TCP pool, deleted at the end."""
    created = create_load_balancer(tb, unique('lb'), member_flavor['id'])
    try:
        assert cli_json(tb, 'loadbalancer', 'show', created['id'])[
            'provisioning_status'] == 'ACTIVE'
        pool = cli_json(tb, 'loadbalancer', 'pool', 'create', '--name',
                        unique('pool'), '--loadbalancer', created['id'],
                        '--protocol', 'TCP', '--lb-algorithm',
                        'ROUND_ROBIN', '--wait')
        [server] = amphorae.find_servers(conn, created['id'])
        yield {'id': created['id'], 'pool': pool['id'], 'server': server}
    finally:
        cli(tb, 'loadbalancer', 'delete', '--cascade', created['id'],
            '--wait')
        assert member_ports_of(conn, created['id']) == []
        assert ([s.id for s in amphorae.find_servers(conn, created['id'])],
                [p.id for p in network.find_vrrp_ports(
                    conn, created['id'])]) == ([], [])


def member_ports_of(conn, lb_id):
    """Member ports of the load balancer on member-net, as Neutron has them."""
    member_net = conn.network.find_network('member-net', ignore_missing=False)
    return [port for role in ('STANDALONE', 'MASTER', 'BACKUP')
            for port in conn.network.ports(name=naming.member_port_name(
                lb_id, role, member_net.id))]


def wait_for_member(tb, pool_id, member_id, wanted):
    deadline = time.monotonic() + STATUS_TIMEOUT
    while True:
        member = cli_json(tb, 'loadbalancer', 'member', 'show', pool_id,
                          member_id)
        if member['provisioning_status'] in wanted:
            return member
        assert time.monotonic() < deadline, member
        time.sleep(2)


def log_offset(tb):
    return os.path.getsize(worker_log_path(tb))


def log_since(tb, offset):
    """What the worker logged since ``offset`` (``log_offset``)."""
    with open(worker_log_path(tb)) as log:
        log.seek(offset)
        return log.read()


def lb_status(tb, lb_id):
    return cli_json(tb, 'loadbalancer', 'show', lb_id)['provisioning_status']


def create_member(tb, lb, address, subnet, *options, wait=True):
    member = cli_json(tb, 'loadbalancer', 'member', 'create', '--name',
                      unique('member'), '--subnet-id', subnet, '--address',
                      address, '--protocol-port', str(MEMBER_PORT),
                      *options, *(('--wait',) if wait else ()), lb['pool'])
    return cli_json(tb, 'loadbalancer', 'member', 'show', lb['pool'],
                    member['id'])


def delete_member(tb, lb, member_id):
    cli(tb, 'loadbalancer', 'member', 'delete', lb['pool'], member_id,
        '--wait')


@contextlib.contextmanager
def member_host(tb, conn, fabric, name, subnet_name, address=None):
    """A host on the subnet, its address reserved in Neutron.

    Listens on MEMBER_PORT and OTHER_PORT; yields its address (``address``
    if given, else the one Neutron picks). The listeners are stopped by
    their PIDs.
    """
    subnet = conn.network.find_subnet(subnet_name, ignore_missing=False)
    fixed_ip = {'subnet_id': subnet.id}
    if address:
        fixed_ip['ip_address'] = address
    port = conn.network.create_port(network_id=subnet.network_id,
                                    fixed_ips=[fixed_ip],
                                    name=unique('host'))
    servers = []
    try:
        address = port.fixed_ips[0]['ip_address']
        prefixlen = subnet.cidr.split('/')[1]
        namespace = fabric.add_host(name, subnet.network_id,
                                    port.mac_address,
                                    f'{address}/{prefixlen}')
        for tcp_port in (MEMBER_PORT, OTHER_PORT):
            server = subprocess.Popen(
                ['ip', 'netns', 'exec', namespace, sys.executable, '-c',
                 _SERVER, address, str(tcp_port)],
                stdout=subprocess.PIPE, text=True)
            servers.append(server)
            assert server.stdout.readline().strip() == 'ready'
        yield address
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        fabric.remove_host(name)
        conn.network.delete_port(port)


def connect_from(namespace, address, tcp_port):
    """TCP from ``namespace``; the answer, or None."""
    result = subprocess.run(
        ['ip', 'netns', 'exec', namespace, sys.executable,
         '-c', _CLIENT, address, str(tcp_port), str(CONNECT_TIMEOUT)],
        capture_output=True, text=True, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else None


def connect_from_amphora(fabric, server_id, address, tcp_port):
    """TCP from the amphora's data namespace; the answer, or None."""
    return connect_from(fabric.amphora(server_id).data_namespace, address,
                        tcp_port)


def member_vfs(fabric, conn, server_id):
    member_net = conn.network.find_network('member-net', ignore_missing=False)
    return {port_id: vf for port_id, vf in fabric.vfs(server_id).items()
            if vf['network_id'] == member_net.id}


def refused_direct_member(tb, lb, address, subnet):
    """Create a direct member the worker refuses: ERROR, the LB ACTIVE.

    Returns the member and the worker's log since the request.
    """
    offset = log_offset(tb)
    member = create_member(tb, lb, address, subnet, '--request-sriov',
                           wait=False)
    member = wait_for_member(tb, lb['pool'], member['id'],
                             ('ERROR', 'ACTIVE'))
    assert member['provisioning_status'] == 'ERROR'
    assert lb_status(tb, lb['id']) == 'ACTIVE'
    return member, log_since(tb, offset)


@pytest.mark.parametrize('fault', [{'vf_exhausted': True},
                                   {'attach': 'fail'}])
def test_vf_attach_failure_leaves_the_member_error_and_no_port(
        tb, conn, fabric, lb, faults, fault):
    faults(**fault)
    member, log = refused_direct_member(tb, lb, '198.51.100.201',
                                        'member-subnet')
    assert member_ports_of(conn, lb['id']) == []
    assert member_vfs(fabric, conn, lb['server'].id) == {}
    assert 'Check the free VFs of the amphora\'s host' in log

    # The member in ERROR is deleted like any other.
    delete_member(tb, lb, member['id'])
    assert lb_status(tb, lb['id']) == 'ACTIVE'


def test_direct_member_on_the_vip_network_is_error(tb, conn, lb):
    member, log = refused_direct_member(tb, lb, '203.0.113.201',
                                        'vip-subnet')
    assert 'cannot get a VF of its own' in log
    delete_member(tb, lb, member['id'])


def test_network_attached_with_a_normal_port_is_error(tb, conn, fabric, lb):
    server_id = lb['server'].id
    subnet = conn.network.find_subnet('member-subnet', ignore_missing=False)
    normal = conn.network.create_port(network_id=subnet.network_id,
                                      fixed_ips=[{'subnet_id': subnet.id}],
                                      name=unique('normal'))
    try:
        conn.compute.create_server_interface(server_id, port_id=normal.id)
        member, log = refused_direct_member(tb, lb, '198.51.100.203',
                                            'member-subnet')
        assert 'not an SR-IOV member port' in log
        assert member_ports_of(conn, lb['id']) == []
        # Only the normal port's interface is on member-net.
        assert list(member_vfs(fabric, conn, server_id)) == [normal.id]
        delete_member(tb, lb, member['id'])
    finally:
        compute.detach_port(conn, server_id, normal.id)
        conn.network.delete_port(normal)


def test_sriov_member_gets_a_vf_and_its_replies(tb, conn, fabric, lb):
    server_id = lb['server'].id
    with member_host(tb, conn, fabric, 'mem', 'member-subnet') as address:
        # Before the member exists the amphora has no way to the host.
        assert connect_from_amphora(fabric, server_id, address,
                                    MEMBER_PORT) is None

        member = create_member(tb, lb, address, 'member-subnet',
                               '--request-sriov')
        assert member['provisioning_status'] == 'ACTIVE'
        assert member['vnic_type'] == 'direct'
        assert lb_status(tb, lb['id']) == 'ACTIVE'

        # Neutron: a direct port on member-net, bound as a VF to the
        # amphora, without security groups.
        [port] = member_ports_of(conn, lb['id'])
        assert port.binding_vnic_type == 'direct'
        assert port.binding_vif_type == 'hw_veb'
        assert port.binding_profile['pci_slot']
        assert port.device_id == server_id
        assert port.security_group_ids == []
        # The amphora: a VF for it.
        assert list(member_vfs(fabric, conn, server_id)) == [port.id]

        # The member's replies come back through the firewall; another
        # port of the same host is not a member and gets nothing back.
        assert connect_from_amphora(
            fabric, server_id, address,
            MEMBER_PORT) == f'pong {address} {MEMBER_PORT}'
        assert connect_from_amphora(fabric, server_id, address,
                                    OTHER_PORT) is None

        # A second SR-IOV member on member-net uses the same port.
        second = create_member(tb, lb, '198.51.100.202', 'member-subnet',
                               '--request-sriov')
        assert second['provisioning_status'] == 'ACTIVE'
        assert [p.id for p in member_ports_of(conn, lb['id'])] == [port.id]

        delete_member(tb, lb, member['id'])
        assert [p.id for p in member_ports_of(conn, lb['id'])] == [port.id]
        # The first member is gone from the firewall.
        assert connect_from_amphora(fabric, server_id, address,
                                    MEMBER_PORT) is None

        # The last SR-IOV member on member-net takes the port with it.
        delete_member(tb, lb, second['id'])
        assert member_ports_of(conn, lb['id']) == []
        assert conn.network.find_port(port.id) is None
        assert member_vfs(fabric, conn, server_id) == {}
        assert lb_status(tb, lb['id']) == 'ACTIVE'


def test_member_on_the_vip_subnet_gets_its_replies(tb, conn, fabric, lb):
    server_id = lb['server'].id
    with member_host(tb, conn, fabric, 'vipmem', 'vip-subnet') as address:
        assert connect_from_amphora(fabric, server_id, address,
                                    MEMBER_PORT) is None
        member = create_member(tb, lb, address, 'vip-subnet')
        try:
            assert member['provisioning_status'] == 'ACTIVE'
            assert member['vnic_type'] == 'normal'
            assert member_ports_of(conn, lb['id']) == []
            assert connect_from_amphora(
                fabric, server_id, address,
                MEMBER_PORT) == f'pong {address} {MEMBER_PORT}'
            assert connect_from_amphora(fabric, server_id, address,
                                        OTHER_PORT) is None
        finally:
            delete_member(tb, lb, member['id'])


def test_a_new_host_on_a_reused_address_is_reached(tb, conn, fabric, lb):
    """Neutron gives a freed address to the next port, with another MAC.

    The amphora still knows the old MAC from its last connection; the new
    host announces itself as it comes up (as a guest OS does), so the
    amphora reaches it at once instead of once its neighbour entry expires.
    """
    server_id = lb['server'].id
    with member_host(tb, conn, fabric, 'oldmem', 'vip-subnet') as address:
        member = create_member(tb, lb, address, 'vip-subnet')
        try:
            assert connect_from_amphora(
                fabric, server_id, address,
                MEMBER_PORT) == f'pong {address} {MEMBER_PORT}'
        finally:
            delete_member(tb, lb, member['id'])
    with member_host(tb, conn, fabric, 'newmem', 'vip-subnet',
                     address=address):
        member = create_member(tb, lb, address, 'vip-subnet')
        try:
            assert connect_from_amphora(
                fabric, server_id, address,
                MEMBER_PORT) == f'pong {address} {MEMBER_PORT}'
        finally:
            delete_member(tb, lb, member['id'])


def test_sriov_and_vip_subnet_members_serve_through_the_vip(
        tb, conn, fabric, lb):
    """Traffic through the VIP reaches both kinds of member.

    haproxy balances over a member behind its own VF and one on the VIP
    subnet; both answers come back through the stateless firewall.
    """
    vip_address = cli_json(tb, 'loadbalancer', 'show',
                           lb['id'])['vip_address']
    with contextlib.ExitStack() as stack:
        on_vf = stack.enter_context(member_host(
            tb, conn, fabric, 'websriov', 'member-subnet'))
        on_vip_subnet = stack.enter_context(member_host(
            tb, conn, fabric, 'webvip', 'vip-subnet'))
        stack.enter_context(member_host(tb, conn, fabric, 'webclient',
                                        'vip-subnet'))
        client = fabric.names.host_namespace('webclient')
        members = [create_member(tb, lb, on_vf, 'member-subnet',
                                 '--request-sriov'),
                   create_member(tb, lb, on_vip_subnet, 'vip-subnet')]
        listener = cli_json(tb, 'loadbalancer', 'listener', 'create',
                            '--name', unique('listener'), '--protocol',
                            'TCP', '--protocol-port', '80',
                            '--default-pool', lb['pool'], '--wait',
                            lb['id'])
        try:
            answers = [connect_from(client, vip_address, 80)
                       for _ in range(6)]
            # The list in the message shows which member failed, how often.
            assert set(answers) == {f'pong {on_vf} {MEMBER_PORT}',
                                    f'pong {on_vip_subnet} {MEMBER_PORT}'}, \
                answers
        finally:
            cli(tb, 'loadbalancer', 'listener', 'delete', listener['id'],
                '--wait')
            for member in members:
                delete_member(tb, lb, member['id'])
    assert member_ports_of(conn, lb['id']) == []


def test_active_standby_amphorae_each_get_a_vf(tb, conn, fabric):
    flavor = make_member_flavor(tb, conn,
                                loadbalancer_topology='ACTIVE_STANDBY')
    created = create_load_balancer(tb, unique('lb'), flavor['id'])
    try:
        pool = cli_json(tb, 'loadbalancer', 'pool', 'create', '--name',
                        unique('pool'), '--loadbalancer', created['id'],
                        '--protocol', 'TCP', '--lb-algorithm',
                        'ROUND_ROBIN', '--wait')
        lb = {'id': created['id'], 'pool': pool['id']}
        member = create_member(tb, lb, '198.51.100.204', 'member-subnet',
                               '--request-sriov')
        assert member['provisioning_status'] == 'ACTIVE'
        servers = amphorae.find_servers(conn, created['id'])
        ports = {port.device_id: port
                 for port in member_ports_of(conn, created['id'])}
        assert sorted(ports) == sorted(server.id for server in servers)
        for server in servers:
            port = ports[server.id]
            role = server.metadata[naming.META_ROLE]
            assert port.name == naming.member_port_name(
                created['id'], role, port.network_id)
            assert port.binding_vif_type == 'hw_veb'
            assert list(member_vfs(fabric, conn, server.id)) == [port.id]

        delete_member(tb, lb, member['id'])
        assert member_ports_of(conn, created['id']) == []
        for server in servers:
            assert member_vfs(fabric, conn, server.id) == {}
    finally:
        cli(tb, 'loadbalancer', 'delete', '--cascade', created['id'],
            '--wait')
