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
"""HTTP through the VIP of an SR-IOV load balancer, end to end.

The user builds the load balancer with the real ``openstack`` CLI; the
worker renders haproxy's configuration with upstream Octavia's templater,
the amphora agent runs haproxy behind the stateless firewall, and real
HTTP requests from client namespaces are balanced over two member
namespaces on the VIP subnet (the case that broke upstream's first
stateless firewall). A member that stops answering its health checks
shows ERROR in ``openstack loadbalancer member show`` and gets no more
requests.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from sriov_octavia import amphorae
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import make_flavor

PORT_BASE = 22000
PREFIX = 'ten'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
VIP_SUBNET = 'vip-subnet'
MEMBER_PORT = 8080
# Seconds an operation or a status change may take here.
TIMEOUT = 180
# A member's answer: its name, so the client sees who served it.
MEMBER_SERVER = '''
import http.server
import sys

name = sys.argv[1].encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(name)))
        self.end_headers()
        self.wfile.write(name)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(('', int(sys.argv[2])), Handler
                                ).serve_forever()
'''


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


def wait_for(what, check):
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f'no {what} after {TIMEOUT} s'
        time.sleep(2)


class Host:
    """A namespace on the VIP subnet with an address Neutron gave it."""

    def __init__(self, conn, fabric, name):
        self.conn, self.fabric, self.name = conn, fabric, name
        subnet = conn.network.find_subnet(VIP_SUBNET, ignore_missing=False)
        self.port = conn.network.create_port(
            network_id=subnet.network_id, name=unique(name),
            fixed_ips=[{'subnet_id': subnet.id}])
        self.address = self.port.fixed_ips[0]['ip_address']
        self.subnet_id = subnet.id
        self.server = None
        try:
            self.namespace = fabric.add_host(
                name, subnet.network_id, self.port.mac_address,
                f'{self.address}/{subnet.cidr.split("/")[1]}')
        except BaseException:
            conn.network.delete_port(self.port)
            raise

    def serve(self):
        """Answer HTTP on MEMBER_PORT with the host's name."""
        # ip netns exec execs the server: the PID is the server's own.
        self.server = subprocess.Popen(
            ['ip', 'netns', 'exec', self.namespace, sys.executable, '-c',
             MEMBER_SERVER, self.name, str(MEMBER_PORT)],
            # Health checks hang up early; the tracebacks say nothing.
            stderr=subprocess.DEVNULL)

    def stop_serving(self):
        if self.server is not None and self.server.poll() is None:
            os.kill(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=30)
        self.server = None

    def get(self, address, count):
        """``count`` HTTP GETs of ``http://address/``: who answered each.

        A request that failed (refused, dropped, timed out) is None.
        """
        script = ('import sys, urllib.request\n'
                  'for _ in range(int(sys.argv[2])):\n'
                  '    try:\n'
                  '        print(urllib.request.urlopen(\n'
                  '            "http://%s/" % sys.argv[1], timeout=2\n'
                  '        ).read().decode())\n'
                  '    except OSError:\n'
                  '        print("-")\n')
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.namespace, sys.executable, '-c',
             script, address, str(count)],
            capture_output=True, text=True, check=True, timeout=count * 5)
        return [None if line == '-' else line
                for line in result.stdout.split()]

    def remove(self):
        self.stop_serving()
        self.fabric.remove_host(self.name)
        self.conn.network.delete_port(self.port)


@pytest.fixture
def hosts(conn, fabric):
    made = []

    def make(name):
        host = Host(conn, fabric, name)
        made.append(host)
        return host

    yield make
    for host in made:
        host.remove()


@contextlib.contextmanager
def load_balancer(tb, flavor):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', flavor['id'], '--vip-subnet-id', VIP_SUBNET,
                  '--wait')
    try:
        yield cli_json(tb, 'loadbalancer', 'show', lb['id'])
    finally:
        cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'], '--wait')


def build_http_service(tb, lb, client, members):
    """Listener (client only), round-robin pool, members, health monitor."""
    listener = cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        unique('listener'), '--protocol', 'HTTP', '--protocol-port', '80',
        '--allowed-cidr', f'{client.address}/32', '--wait', lb['id'])
    pool = cli_json(
        tb, 'loadbalancer', 'pool', 'create', '--name', unique('pool'),
        '--listener', listener['id'], '--protocol', 'HTTP',
        '--lb-algorithm', 'ROUND_ROBIN', '--wait')
    member_ids = {}
    for member in members:
        created = cli_json(
            tb, 'loadbalancer', 'member', 'create', '--name', member.name,
            '--subnet-id', member.subnet_id, '--address', member.address,
            '--protocol-port', str(MEMBER_PORT), '--wait', pool['id'])
        member_ids[member.name] = created['id']
    cli(tb, 'loadbalancer', 'healthmonitor', 'create', '--name',
        unique('monitor'), '--type', 'HTTP', '--delay', '1', '--timeout',
        '1', '--max-retries', '1', '--max-retries-down', '1', '--url-path',
        '/', '--wait', pool['id'])
    return listener, pool, member_ids


def member_status(tb, pool, member_id):
    return cli_json(tb, 'loadbalancer', 'member', 'show', pool['id'],
                    member_id)['operating_status']


def test_http_is_balanced_and_a_dead_member_is_left_out(tb, conn, hosts):
    flavor = make_flavor(tb, conn)
    client, outsider = hosts('client'), hosts('outsider')
    members = [hosts('member-a'), hosts('member-b')]
    for member in members:
        member.serve()
    with load_balancer(tb, flavor) as lb:
        vip = lb['vip_address']
        listener, pool, member_ids = build_http_service(tb, lb, client,
                                                        members)
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'

        # Round robin: both members answer the client in the CIDR.
        answers = client.get(vip, 10)
        assert None not in answers
        assert sorted(set(answers)) == ['member-a', 'member-b']
        assert answers.count('member-a') == answers.count('member-b')
        # The amphora firewall lets nobody else in.
        assert outsider.get(vip, 2) == [None, None]

        # haproxy's health checks reach Octavia.
        for name, member_id in member_ids.items():
            wait_for(f'{name} ONLINE', lambda member_id=member_id: (
                member_status(tb, pool, member_id) == 'ONLINE'))

        members[1].stop_serving()
        wait_for('member-b ERROR', lambda: member_status(
            tb, pool, member_ids['member-b']) == 'ERROR')
        assert member_status(tb, pool, member_ids['member-a']) == 'ONLINE'
        assert client.get(vip, 6) == ['member-a'] * 6
        # The listener's counters reach Octavia too (the outsider's
        # requests never reached haproxy).
        wait_for('16 connections in the listener statistics', lambda: cli_json(
            tb, 'loadbalancer', 'listener', 'stats', 'show', listener['id'])[
                'total_connections'] == 16)


def test_active_standby_keeps_serving_when_the_master_dies(
        tb, conn, fabric, hosts):
    flavor = make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')
    client = hosts('as-client')
    members = [hosts('as-member-a'), hosts('as-member-b')]
    for member in members:
        member.serve()
    with load_balancer(tb, flavor) as lb:
        vip = lb['vip_address']
        build_http_service(tb, lb, client, members)
        assert sorted(set(client.get(vip, 4))) == [
            'as-member-a', 'as-member-b']

        [master] = [server for server in amphorae.find_servers(conn, lb['id'])
                    if server.metadata['sriov_octavia_role'] == 'MASTER']
        fabric.delete_amphora(master.id)
        # keepalived on the standby takes the VIP over (a few adverts).
        wait_for('answers from the standby', lambda: None not in
                 client.get(vip, 4))
        assert sorted(set(client.get(vip, 4))) == [
            'as-member-a', 'as-member-b']
