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
"""UDP and SCTP listeners of an SR-IOV load balancer, end to end.

The user builds them with the real ``openstack`` CLI; the worker renders
the L4 document, the amphora agent balances the flows with nftables behind
the stateless firewall, and real datagrams from client namespaces on the
VIP subnet are judged by who answers them: UDP echo servers in member
namespaces that answer with their name. Every datagram goes from a socket
of its own, so each is a new flow for the balancer to place.

SCTP only goes as far as the API and the amphora here: this kernel has no
SCTP sockets for a client or member to use (its traffic is tested where
it has, tests/functional/igb).
"""

import contextlib
import subprocess
import sys

import pytest

from sriov_octavia import amphorae
from tests.functional.sriov_octavia import cloud_state
from tests.functional.sriov_octavia import http_service
from tests.functional.sriov_octavia import openstack_cli as osc

# 24500 would share the management /24 of tests/functional/testbed's
# instance at 24000 (one /24 per thousand of the port base).
PORT_BASE = 12000
PREFIX = 'tudp'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
UDP_PORT = 5300
# Where Host.serve() answers.
MEMBER_PORT = http_service.MEMBER_PORT
SCTP_PORT = 3868

wait_for = http_service.wait_for

# A member: answers every datagram with its name, on IPv4 and IPv6.
ECHO_SERVER = '''
import socket
import sys

name = sys.argv[1].encode()
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
sock.bind(('::', int(sys.argv[2])))
while True:
    _data, peer = sock.recvfrom(2048)
    sock.sendto(name, peer)
'''
# A client: ``count`` datagrams, each from a new socket (a new flow); who
# answered each, "-" for none within a second.
ECHO_CLIENT = '''
import socket
import sys

address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ':' in address else socket.AF_INET
for index in range(count):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    try:
        sock.sendto(b'datagram %d' % index, (address, port))
        print(sock.recv(2048).decode())
    except OSError:
        print('-')
    finally:
        sock.close()
'''


class Host(http_service.Host):
    """A host whose member answers datagrams rather than HTTP."""

    SERVER = ECHO_SERVER

    def send(self, address, count, port=UDP_PORT):
        """Who answered each of ``count`` datagrams (None: nobody)."""
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.namespace, sys.executable, '-c',
             ECHO_CLIENT, address, str(port), str(count)],
            capture_output=True, text=True, check=True,
            timeout=count * 3 + 10)
        return [None if line == '-' else line
                for line in result.stdout.split()]


@pytest.fixture
def hosts(conn, fabric):
    """``make(name, subnet)``: a host, removed after the test."""
    made = []

    def make(name, subnet=http_service.VIP_SUBNET):
        host = Host(conn, fabric, name, subnet)
        made.append(host)
        return host

    yield make
    for host in made:
        host.remove()


@contextlib.contextmanager
def load_balancer(tb, conn, subnet=http_service.VIP_SUBNET):
    flavor = osc.make_flavor(tb, conn)
    lb = osc.cli_json(tb, 'loadbalancer', 'create', '--name',
                      osc.unique(tb, 'lb'), '--flavor', flavor['id'],
                      '--vip-subnet-id', subnet, '--wait')
    try:
        yield lb
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')


def udp_service(tb, lb, client, members, algorithm='ROUND_ROBIN',
                port=UDP_PORT):
    """UDP listener (client only), pool, members; the pool and member ids."""
    listener = osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, 'udp'), '--protocol', 'UDP', '--protocol-port',
        str(port), '--allowed-cidr', client.cidr, '--wait', lb['id'])
    pool = osc.cli_json(
        tb, 'loadbalancer', 'pool', 'create', '--name',
        osc.unique(tb, 'udp-pool'), '--listener', listener['id'],
        '--protocol', 'UDP', '--lb-algorithm', algorithm, '--wait')
    member_ids = http_service.add_members(tb, pool, members)
    return listener, pool, member_ids


def agent_of(tb, conn, lb):
    [server] = amphorae.find_servers(conn, lb['id'])
    return cloud_state.agent_for(tb, conn, server)


def dropped(agent, port=UDP_PORT):
    """The firewall's count of datagrams refused on the UDP listener."""
    counters = agent.get_counters()['listeners'][f'UDP:{port}']
    return counters['dropped']['packets']


def status(tb, pool, member_id):
    return http_service.member_status(tb, pool, member_id)


def assert_balanced(answers, names):
    assert None not in answers, answers
    assert sorted(set(answers)) == sorted(names), answers
    # Round robin places each new flow on the next member.
    counts = [answers.count(name) for name in names]
    assert max(counts) - min(counts) <= 1, answers


@pytest.fixture(scope='module')
def lb(tb, conn):
    """One SINGLE load balancer on the IPv4 VIP subnet for the module."""
    with load_balancer(tb, conn) as created:
        yield created


def test_udp_is_balanced_filtered_and_a_dead_member_is_left_out(
        tb, conn, lb, hosts):
    client, outsider = hosts('client'), hosts('outsider')
    members = [hosts('member-a'), hosts('member-b')]
    for member in members:
        member.serve()
    vip = lb['vip_address']
    listener, pool, member_ids = udp_service(tb, lb, client, members)
    assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
        'provisioning_status'] == 'ACTIVE'
    assert osc.cli_json(tb, 'loadbalancer', 'listener', 'show',
                        listener['id'])['provisioning_status'] == 'ACTIVE'

    # Round robin over both members, every datagram answered.
    assert_balanced(client.send(vip, 10), ['member-a', 'member-b'])

    # The listener's allowed_cidrs: the firewall drops and counts the
    # outsider's datagrams before they reach the balancer.
    with agent_of(tb, conn, lb) as agent:
        before = dropped(agent)
        assert outsider.send(vip, 3) == [None] * 3
        assert dropped(agent) - before >= 3
        held = agent.get_l4_config(lb['id'])
    [sent] = held['listeners']
    assert (sent['protocol'], sent['port']) == ('UDP', UDP_PORT)
    assert sorted(member['address'] for member in sent['pool']['members']) \
        == sorted(member.address for member in members)
    assert client.send(vip, 2).count(None) == 0

    # A UDP-CONNECT monitor: a member whose port is closed answers its
    # probes with ICMP port unreachable and goes out.
    osc.cli(tb, 'loadbalancer', 'healthmonitor', 'create', '--name',
            osc.unique(tb, 'udp-monitor'), '--type', 'UDP-CONNECT',
            '--delay', '3', '--timeout', '2', '--max-retries', '1',
            '--max-retries-down', '1', '--wait', pool['id'])
    for name, member_id in member_ids.items():
        wait_for(f'{name} ONLINE', lambda member_id=member_id: (
            status(tb, pool, member_id) == 'ONLINE'))
    members[1].stop_serving()
    wait_for('member-b ERROR', lambda: status(
        tb, pool, member_ids['member-b']) == 'ERROR')
    assert status(tb, pool, member_ids['member-a']) == 'ONLINE'
    # None lost: not one went to member-b, which would not have answered.
    assert client.send(vip, 8) == ['member-a'] * 8

    # Listening again: back in after its next probe.
    members[1].serve()
    wait_for('member-b ONLINE again', lambda: status(
        tb, pool, member_ids['member-b']) == 'ONLINE')
    assert_balanced(client.send(vip, 10), ['member-a', 'member-b'])


def test_sctp_listener_and_pool_go_active(tb, conn, lb, hosts):
    member = hosts('sctp-member')
    listener = osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, 'sctp'), '--protocol', 'SCTP', '--protocol-port',
        str(SCTP_PORT), '--allowed-cidr', '198.51.100.0/24', '--wait',
        lb['id'])
    pool = osc.cli_json(
        tb, 'loadbalancer', 'pool', 'create', '--name',
        osc.unique(tb, 'sctp-pool'), '--listener', listener['id'],
        '--protocol', 'SCTP', '--lb-algorithm', 'SOURCE_IP', '--wait')
    created = osc.cli_json(
        tb, 'loadbalancer', 'member', 'create', '--name', member.name,
        '--subnet-id', member.subnet_id, '--address', member.address,
        '--protocol-port', str(SCTP_PORT), '--wait', pool['id'])
    for kind, obj_id in (('listener', listener['id']),
                         ('pool', pool['id'])):
        assert osc.cli_json(tb, 'loadbalancer', kind, 'show', obj_id)[
            'provisioning_status'] == 'ACTIVE'
    assert osc.cli_json(tb, 'loadbalancer', 'member', 'show', pool['id'],
                        created['id'])['provisioning_status'] == 'ACTIVE'
    assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
        'provisioning_status'] == 'ACTIVE'

    # In force on the amphora: the L4 document and the firewall.
    with agent_of(tb, conn, lb) as agent:
        held = agent.get_l4_config(lb['id'])
        firewall = agent.get_security_group()['security_group']
    [sctp] = [item for item in held['listeners']
              if item['protocol'] == 'SCTP']
    assert sctp['port'] == SCTP_PORT
    assert sctp['pool']['algorithm'] == 'SOURCE_IP'
    assert [item['address'] for item in sctp['pool']['members']] == [
        member.address]
    [opened] = [item for item in firewall['listeners']
                if (item['protocol'], item['port']) == ('SCTP', SCTP_PORT)]
    assert opened['allowed_cidrs'] == ['198.51.100.0/24']
    # The member's INIT-ACKs and replies are let in by their source.
    assert [item for item in firewall['members']
            if item['address'] == member.address] == [
        {'address': member.address, 'protocol': 'SCTP', 'port': SCTP_PORT}]

    osc.cli(tb, 'loadbalancer', 'listener', 'delete', listener['id'],
            '--wait')
    osc.cli(tb, 'loadbalancer', 'pool', 'delete', pool['id'], '--wait')


def test_udp_over_ipv6(tb, conn, hosts):
    subnet = 'vip-subnet-v6'
    client = hosts('client6', subnet)
    members = [hosts('member6-a', subnet), hosts('member6-b', subnet)]
    for member in members:
        member.serve()
    with load_balancer(tb, conn, subnet) as lb6:
        vip = lb6['vip_address']
        assert ':' in vip
        udp_service(tb, lb6, client, members)
        assert_balanced(client.send(vip, 10), ['member6-a', 'member6-b'])


def test_each_engine_goes_without_stopping_the_other(tb, conn, lb, hosts):
    client, member = hosts('mixed-client'), hosts('mixed-member')
    member.serve()
    vip = lb['vip_address']
    tcp = osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, 'tcp'), '--protocol', 'TCP', '--protocol-port',
        '8443', '--wait', lb['id'])
    listener, _pool, _members = udp_service(tb, lb, client, [member],
                                            port=UDP_PORT + 100)

    def answered():
        return client.send(vip, 3, port=UDP_PORT + 100) == [
            'mixed-member'] * 3

    def frontends(agent):
        view = agent.get_loadbalancer_status(lb['id']) or {}
        return sorted((view.get('frontends') or {}).keys())

    with agent_of(tb, conn, lb) as agent:
        assert answered()
        assert tcp['id'] in frontends(agent)

        # haproxy stops; the agent's DELETE would have taken the UDP
        # listeners' table with it.
        osc.cli(tb, 'loadbalancer', 'listener', 'delete', tcp['id'],
                '--wait')
        assert answered()
        assert tcp['id'] not in frontends(agent)
        assert listener['id'] in frontends(agent)

        # The UDP listeners go, haproxy's come back: the L4 table goes
        # with a document without listeners, haproxy serves on.
        tcp = osc.cli_json(
            tb, 'loadbalancer', 'listener', 'create', '--name',
            osc.unique(tb, 'tcp'), '--protocol', 'TCP', '--protocol-port',
            '8443', '--wait', lb['id'])
        for other in osc.cli_json(tb, 'loadbalancer', 'listener', 'list',
                                  '--loadbalancer', lb['id']):
            if other['protocol'] in ('UDP', 'SCTP'):
                osc.cli(tb, 'loadbalancer', 'listener', 'delete',
                        other['id'], '--wait')
        held = agent.get_l4_config(lb['id'])
        assert held is None or held['listeners'] == [], held
        assert client.send(vip, 2, port=UDP_PORT + 100) == [None, None]
        assert frontends(agent) == [tcp['id']]


def test_udp_only_load_balancer_serves_after_a_failover(tb, conn, hosts):
    # The new amphora never ran haproxy: stopping it there finds nothing
    # to stop, and the L4 document alone makes it serve.
    client, member = hosts('fo-client'), hosts('fo-member')
    member.serve()
    with load_balancer(tb, conn) as lb_fo:
        vip = lb_fo['vip_address']
        udp_service(tb, lb_fo, client, [member])
        assert client.send(vip, 3) == ['fo-member'] * 3
        [before] = amphorae.find_servers(conn, lb_fo['id'])

        osc.cli(tb, 'loadbalancer', 'failover', lb_fo['id'])
        assert osc.wait_for_status(tb, lb_fo['id'], ('ACTIVE', 'ERROR'))[
            'provisioning_status'] == 'ACTIVE'
        [after] = amphorae.find_servers(conn, lb_fo['id'])
        assert after.id != before.id
        wait_for('answers from the new amphora', lambda: client.send(
            vip, 3) == ['fo-member'] * 3)
        with agent_of(tb, conn, lb_fo) as agent:
            assert agent.get_l4_config(lb_fo['id'])['listeners']
