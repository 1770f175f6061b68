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
"""Real packets between network namespaces, for the firewall tests.

Sockets are opened by a short-lived thread that entered the namespace
(``setns`` moves only the calling thread and a socket stays in the
namespace it was created in), so a test drives every namespace from its
own process without spawning a program per packet.
"""

import socket
import struct
import threading

from pyroute2 import netns as pyroute2_netns

from sriov_octavia_testbed import netlab

# How long a "must not arrive" check waits. What must arrive may take up to
# PATIENCE on a busy machine (and returns as soon as it did).
WAIT = 1.0
PATIENCE = 5.0

AMP = 'amp'
CLIENT = 'client'
MEMBER = 'member'

VIP4 = '203.0.113.10'
VIP6 = '2001:db8:1::10'
ALLOWED4 = '203.0.113.20'
REFUSED4 = '203.0.113.30'
PEER4 = '203.0.113.11'
VIP_SUBNET_MEMBER4 = '203.0.113.40'
ALLOWED6 = '2001:db8:1::20'
REFUSED6 = '2001:db8:1::30'
PEER6 = '2001:db8:1::11'
AMP_MEMBER_SIDE4 = '198.51.100.1'
MEMBER4 = '198.51.100.5'
AMP_MEMBER_SIDE6 = '2001:db8:2::1'
MEMBER6 = '2001:db8:2::5'
# The member entries both firewall test modules post: every protocol the
# firewall admits replies for, on both families and the VIP subnet.
MEMBERS = [{'address': MEMBER4, 'protocol': 'TCP', 'port': 8080},
           {'address': MEMBER4, 'protocol': 'UDP', 'port': 5353},
           {'address': MEMBER4, 'protocol': 'ICMP'},
           {'address': MEMBER6, 'protocol': 'TCP', 'port': 8080},
           {'address': VIP_SUBNET_MEMBER4, 'protocol': 'TCP', 'port': 8080}]


def build(lab):
    """Amphora with a VIP-side and a member-side VF (veth ends).

    The VIP side leads to a client namespace holding allowed and refused
    sources, the VRRP peer and a member on the VIP subnet; the member side
    leads to a member namespace.
    """
    amp = lab.namespace(AMP)
    client = lab.namespace(CLIENT)
    member = lab.namespace(MEMBER)
    for namespace in (amp, client, member):
        # IPv6 addresses usable at once: without duplicate address detection
        # they are never tentative. Links created later inherit "default".
        netlab.run(namespace, ['sysctl', '-qw',
                               'net.ipv6.conf.default.accept_dad=0',
                               'net.ipv6.conf.all.accept_dad=0'])
    lab.veth(amp, 'vip0', client, 'c0')
    lab.veth(amp, 'mem0', member, 'm0')
    for cidr in (VIP4 + '/24', VIP6 + '/64'):
        netlab.add_address(amp, 'vip0', cidr)
    for cidr in (AMP_MEMBER_SIDE4 + '/24', AMP_MEMBER_SIDE6 + '/64'):
        netlab.add_address(amp, 'mem0', cidr)
    for address in (ALLOWED4, REFUSED4, PEER4, VIP_SUBNET_MEMBER4):
        netlab.add_address(client, 'c0', address + '/24')
    for address in (ALLOWED6, REFUSED6, PEER6):
        netlab.add_address(client, 'c0', address + '/64')
    for cidr in (MEMBER4 + '/24', MEMBER6 + '/64'):
        netlab.add_address(member, 'm0', cidr)
    return amp, client, member


def in_namespace(namespace, function, *args):
    """Run ``function(*args)`` on a thread inside ``namespace``."""
    outcome = {}

    def target():
        try:
            pyroute2_netns.setns(namespace, flags=0)
            outcome['value'] = function(*args)
        except BaseException as error:
            outcome['error'] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def open_socket(namespace, family, kind, protocol=0):
    return in_namespace(namespace, socket.socket, family, kind, protocol)


def _family(address):
    return socket.AF_INET6 if ':' in address else socket.AF_INET


class BackgroundServer:
    """A socket in a namespace served by a daemon thread until closed."""

    def __init__(self, namespace, address, port, kind):
        self.sock = open_socket(namespace, _family(address), kind)
        if kind == socket.SOCK_STREAM:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            self.sock.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        raise NotImplementedError

    def close(self):
        # shutdown() wakes the accept() or recv() blocked in the serving
        # thread (unconnected UDP says ENOTCONN, and still wakes it).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join()


class TcpServer(BackgroundServer):
    """Accepts connections and answers each request line with a reply."""

    def __init__(self, namespace, address, port, reply=b'HTTP/1.0 200 OK'):
        super().__init__(namespace, address, port, socket.SOCK_STREAM)
        self.reply = reply
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(PATIENCE)
                try:
                    if conn.recv(1024):
                        conn.sendall(self.reply)
                except OSError:
                    pass


def tcp_request(namespace, source, destination, port, wait=PATIENCE):
    """Connect from ``source``, send a request; return the reply or None."""
    sock = open_socket(namespace, _family(destination), socket.SOCK_STREAM)
    with sock:
        sock.settimeout(wait)
        sock.bind((source, 0))
        try:
            sock.connect((destination, port))
            sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
            return sock.recv(1024)
        except OSError:
            return None


def tcp_refused(namespace, source, destination, port):
    """True when the request gets no reply within WAIT."""
    return tcp_request(namespace, source, destination, port,
                       wait=WAIT) is None


def udp_receiver(namespace, address, port):
    sock = open_socket(namespace, _family(address), socket.SOCK_DGRAM)
    sock.bind((address, port))
    return sock


def udp_send(namespace, source, destination, port, payload):
    sock = open_socket(namespace, _family(destination), socket.SOCK_DGRAM)
    with sock:
        sock.bind((source, 0))
        sock.sendto(payload, (destination, port))


def receive(sock, size=65535, wait=PATIENCE):
    sock.settimeout(wait)
    try:
        return sock.recv(size)
    except socket.timeout:
        return None


class UdpEcho(BackgroundServer):
    """Sends every datagram back to where it came from."""

    def __init__(self, namespace, address, port):
        super().__init__(namespace, address, port, socket.SOCK_DGRAM)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                payload, peer = self.sock.recvfrom(65535)
                if peer is None:  # shut down
                    return
                self.sock.sendto(payload, peer)
            except OSError:
                return


def udp_exchange(namespace, source, destination, port, payload=b'ping'):
    """Send a datagram and wait for the answer; None if none came."""
    sock = open_socket(namespace, _family(destination), socket.SOCK_DGRAM)
    with sock:
        sock.bind((source, 0))
        sock.sendto(payload, (destination, port))
        return receive(sock)


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack(f'!{len(data) // 2}H', data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def ping(namespace, source, destination):
    """One ICMP echo from ``source``; True when the reply arrived."""
    sock = open_socket(namespace, socket.AF_INET, socket.SOCK_RAW,
                       socket.IPPROTO_ICMP)
    with sock:
        sock.settimeout(PATIENCE)
        sock.bind((source, 0))
        identifier = threading.get_ident() & 0xffff
        header = struct.pack('!BBHHH', 8, 0, 0, identifier, 1)
        payload = b'tfw-ping'
        packet = struct.pack('!BBHHH', 8, 0,
                             _checksum(header + payload), identifier, 1)
        sock.sendto(packet + payload, (destination, 0))
        while True:
            try:
                data, peer = sock.recvfrom(2048)
            except socket.timeout:
                return False
            # A raw IPv4 socket hands over the IP header too.
            icmp = data[(data[0] & 0x0f) * 4:]
            if (peer[0] == destination and icmp[0] == 0 and
                    struct.unpack('!H', icmp[4:6])[0] == identifier):
                return True


VRRP_PROTOCOL = 112


def vrrp_receiver(namespace, family):
    return open_socket(namespace, family, socket.SOCK_RAW, VRRP_PROTOCOL)


def vrrp_send(namespace, source, destination, marker):
    sock = open_socket(namespace, _family(destination), socket.SOCK_RAW,
                       VRRP_PROTOCOL)
    with sock:
        sock.bind((source, 0))
        sock.sendto(marker, (destination, 0))


def vrrp_received(sock, marker, wait=PATIENCE):
    """True when a datagram carrying ``marker`` arrives."""
    while True:
        data = receive(sock, wait=wait)
        if data is None:
            return False
        if data.endswith(marker):
            return True
