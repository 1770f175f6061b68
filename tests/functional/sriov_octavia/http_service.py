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
"""HTTP members and clients on the VIP subnet, and a service through a VIP.

A host is a namespace on the VIP subnet with an address Neutron gave it;
members answer HTTP with their name, so a client sees who served it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from tests.functional.sriov_octavia import openstack_cli as osc

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


def wait_for(what, check):
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f'no {what} after {TIMEOUT} s'
        time.sleep(2)


class Host:
    """A namespace on a VIP subnet with an address Neutron gave it."""

    # What serve() runs: argv[1] the host's name, argv[2] the port.
    SERVER = MEMBER_SERVER

    def __init__(self, conn, fabric, name, subnet_name=VIP_SUBNET):
        self.conn, self.fabric, self.name = conn, fabric, name
        subnet = conn.network.find_subnet(subnet_name, ignore_missing=False)
        self.port = conn.network.create_port(
            network_id=subnet.network_id, name=osc.unique(fabric, name),
            fixed_ips=[{'subnet_id': subnet.id}])
        self.address = self.port.fixed_ips[0]['ip_address']
        self.subnet_id = subnet.id
        # The host alone, as an allowed CIDR.
        self.cidr = f'{self.address}/{128 if ":" in self.address else 32}'
        self.server = None
        try:
            self.namespace = fabric.add_host(
                name, subnet.network_id, self.port.mac_address,
                f'{self.address}/{subnet.cidr.split("/")[1]}')
        except BaseException:
            conn.network.delete_port(self.port)
            raise

    def serve(self):
        """Answer on MEMBER_PORT with the host's name (``SERVER``)."""
        # ip netns exec execs the server: the PID is the server's own.
        self.server = subprocess.Popen(
            ['ip', 'netns', 'exec', self.namespace, sys.executable, '-c',
             self.SERVER, self.name, str(MEMBER_PORT)],
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


@contextlib.contextmanager
def load_balancer(tb, flavor):
    lb = osc.create_load_balancer(tb, osc.unique(tb, 'lb'), flavor['id'])
    try:
        yield osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'], '--wait')


def add_members(tb, pool, hosts):
    """Each host a member of ``pool`` on MEMBER_PORT; their ids by name."""
    member_ids = {}
    for member in hosts:
        created = osc.cli_json(
            tb, 'loadbalancer', 'member', 'create', '--name', member.name,
            '--subnet-id', member.subnet_id, '--address', member.address,
            '--protocol-port', str(MEMBER_PORT), '--wait', pool['id'])
        member_ids[member.name] = created['id']
    return member_ids


def build_http_service(tb, lb, client, members):
    """Listener (client only), round-robin pool, members, health monitor."""
    listener = osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, 'listener'), '--protocol', 'HTTP',
        '--protocol-port', '80',
        '--allowed-cidr', f'{client.address}/32', '--wait', lb['id'])
    pool = osc.cli_json(
        tb, 'loadbalancer', 'pool', 'create', '--name',
        osc.unique(tb, 'pool'),
        '--listener', listener['id'], '--protocol', 'HTTP',
        '--lb-algorithm', 'ROUND_ROBIN', '--wait')
    member_ids = add_members(tb, pool, members)
    osc.cli(tb, 'loadbalancer', 'healthmonitor', 'create', '--name',
            osc.unique(tb, 'monitor'), '--type', 'HTTP', '--delay', '1',
            '--timeout', '1', '--max-retries', '1', '--max-retries-down',
            '1', '--url-path', '/', '--wait', pool['id'])
    return listener, pool, member_ids


def member_status(tb, pool, member_id):
    return osc.cli_json(tb, 'loadbalancer', 'member', 'show', pool['id'],
                        member_id)['operating_status']
