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
"""A client, an amphora and two members, for the L4 engine's tests.

client (c0) --- (vip0) amphora (mem1) --- (m0) member1
                           (mem2) --- (m0) member2

Each member runs a UDP echo server that answers with its own name, so the
client sees which member served each flow. The health checker is a stub
whose states a test sets, calling the engine back as the real one does.
"""

import os
import socket
import threading

from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import firewall_lab as fl

PREFIX = f'tl4-{os.getpid()}'
AMP = 'amp'
CLIENT = 'client'
VIP4 = '203.0.113.10'
VIP6 = '2001:db8:1::10'
CLIENTS4 = [f'203.0.113.{host}' for host in range(20, 36)]
CLIENT6 = '2001:db8:1::20'
MEMBERS = {'member1': ('198.51.100.5', '2001:db8:2::5', '198.51.100.1/24',
                       '2001:db8:2::1/64'),
           'member2': ('198.51.101.5', '2001:db8:3::5', '198.51.101.1/24',
                       '2001:db8:3::1/64')}
MEMBER_PORT = 5353


def build(lab):
    amp = lab.namespace(AMP)
    client = lab.namespace(CLIENT)
    names = [amp, client]
    lab.veth(amp, 'vip0', client, 'c0')
    for cidr in (VIP4 + '/24', VIP6 + '/64'):
        netlab.add_address(amp, 'vip0', cidr)
    for address in CLIENTS4:
        netlab.add_address(client, 'c0', address + '/24')
    netlab.add_address(client, 'c0', CLIENT6 + '/64')
    for index, (name, (four, six, amp4, amp6)) in enumerate(
            sorted(MEMBERS.items()), start=1):
        member = lab.namespace(name)
        names.append(member)
        lab.veth(amp, f'mem{index}', member, 'm0')
        netlab.add_address(amp, f'mem{index}', amp4)
        netlab.add_address(amp, f'mem{index}', amp6)
        netlab.add_address(member, 'm0', f'{four}/24')
        netlab.add_address(member, 'm0', f'{six}/64')
    for namespace in names:
        # No duplicate address detection: IPv6 addresses usable at once.
        netlab.run(namespace, ['sysctl', '-qw',
                               'net.ipv6.conf.all.accept_dad=0',
                               'net.ipv6.conf.default.accept_dad=0'])
        for ifname in ('vip0', 'c0', 'mem1', 'mem2', 'm0'):
            netlab.run(namespace, ['sysctl', '-qw',
                                   f'net.ipv6.conf.{ifname}.accept_dad=0'],
                       check=False)
    return amp, client


class NamedEcho(fl.BackgroundServer):
    """Answers every datagram with the server's name."""

    def __init__(self, namespace, address, port, name):
        super().__init__(namespace, address, port, socket.SOCK_DGRAM)
        self.name = name.encode()
        self.thread.start()

    def _serve(self):
        while True:
            try:
                _, peer = self.sock.recvfrom(65535)
                if peer is None:
                    return
                self.sock.sendto(self.name, peer)
            except OSError:
                return


class Flow:
    """One UDP flow from a client socket: sends, says who answered."""

    def __init__(self, namespace, source, destination, port):
        family = socket.AF_INET6 if ':' in destination else socket.AF_INET
        self.sock = fl.open_socket(namespace, family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.destination = (destination, port)
        self.peer = None

    def ask(self, wait=fl.PATIENCE):
        self.sock.sendto(b'who', self.destination)
        self.sock.settimeout(wait)
        try:
            data, peer = self.sock.recvfrom(1024)
        except socket.timeout:
            return None
        self.peer = peer[:2]
        return data.decode()

    def close(self):
        self.sock.close()


class StubChecker:
    """The health checker's interface, with states a test decides."""

    def __init__(self, namespace, on_change):
        self.on_change = on_change
        self.checks = None
        self._states = {}
        self.changed = threading.Event()

    def configure(self, checks):
        self.checks = checks

    def states(self):
        return dict(self._states)

    def set(self, **states):
        self._states.update(states)
        self.on_change()

    def stop(self):
        pass


def in_amp(lab, function, *args):
    return fl.in_namespace(lab.name(AMP), function, *args)


def read(path):
    with open(path) as stream:
        return stream.read().strip()
