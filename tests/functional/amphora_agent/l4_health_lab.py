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
"""An amphora and a member namespace, and the servers the probes meet.

Servers are sockets opened by a thread inside the member namespace and
served by in-process threads (firewall_lab's way), so the tests start no
program and each probe decides real packets crossing a veth. The SCTP
"server" is a raw-socket responder: this kernel has no SCTP sockets.
"""

import http.server
import os
import socket
import struct
import threading

from octavia.cmd import health_checker as octavia_probes
from pyroute2 import IPRoute

from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import firewall_lab

PREFIX = f'tl4h-{os.getpid()}'
AMP4 = '198.51.100.1'
MEMBER4 = '198.51.100.5'
PING4 = '198.51.100.6'  # removed by the PING test
AMP6 = '2001:db8:2::1'
MEMBER6 = '2001:db8:2::5'
# Not the host's range, so a source port inside it proves that the probe
# read the amphora namespace's own.
EPHEMERAL = (40000, 40999)
VHOST = 'member.example'


def build(lab):
    amp = lab.namespace('amp')
    member = lab.namespace('mem')
    for namespace in (amp, member):
        netlab.run(namespace, ['sysctl', '-qw',
                               'net.ipv6.conf.default.accept_dad=0',
                               'net.ipv6.conf.all.accept_dad=0'])
    netlab.run(amp, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range='
                     f'{EPHEMERAL[0]} {EPHEMERAL[1]}'])
    # Probes a few times a second: the member must not rate-limit the ICMP
    # port unreachables that UDP-CONNECT reads.
    netlab.run(member, ['sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0',
                        'net.ipv6.icmp.ratelimit=0'])
    lab.veth(amp, 'mem0', member, 'm0')
    for cidr in (AMP4 + '/24', AMP6 + '/64'):
        netlab.add_address(amp, 'mem0', cidr)
    for cidr in (MEMBER4 + '/24', PING4 + '/24', MEMBER6 + '/64'):
        netlab.add_address(member, 'm0', cidr)
    return amp, member


def remove_address(namespace, ifname, address, prefixlen):
    with IPRoute(netns=namespace) as ipr:
        ipr.addr('del', index=ipr.link_lookup(ifname=ifname)[0],
                 address=address, prefixlen=prefixlen)


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.server.requests.append((self.requestline, self.headers))
        if self.path == '/fail':
            status = 503
        elif self.path == '/vhost':
            status = 200 if self.headers.get('Host') == VHOST else 404
        else:
            status = 200
        self.send_response(status)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


class _HttpServer6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class HttpServer:
    """/fail answers 503, /vhost 200 for Host member.example, else 200."""

    def __init__(self, namespace, address, port):
        kind = (_HttpServer6 if _family(address) == socket.AF_INET6
                else http.server.ThreadingHTTPServer)
        self.server = firewall_lab.in_namespace(
            namespace, kind, (address, port), _Handler)
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _family(address):
    return socket.AF_INET6 if ':' in address else socket.AF_INET


def _sctp(source_port, port, tag, chunk):
    packet = bytearray(struct.pack('!HHLL', source_port, port, tag, 0)
                       + chunk)
    struct.pack_into('!L', packet, 8, octavia_probes.crc32c(packet))
    return bytes(packet)


class SctpResponder:
    """A raw SCTP socket answering INITs to ``port`` by ``mode``.

    'ack': INIT-ACK (with a state cookie, as a real stack sends), 'abort':
    ABORT, 'silent': nothing. ``received`` holds every packet to ``port``
    as (chunk type, chunk flags, source port, verification tag,
    checksum valid).
    """

    TAG = 0x5eed1e55

    def __init__(self, namespace, address, port, mode):
        self.family = _family(address)
        self.port = port
        self.mode = mode
        self.received = []
        self.sock = firewall_lab.open_socket(
            namespace, self.family, socket.SOCK_RAW, socket.IPPROTO_SCTP)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            if self.family == socket.AF_INET:
                data = data[(data[0] & 0x0f) * 4:]
            if len(data) < 16:
                continue
            source_port, port, tag, checksum = struct.unpack_from(
                '!HHLL', data)
            if port != self.port:
                continue
            zeroed = bytearray(data)
            struct.pack_into('!L', zeroed, 8, 0)
            self.received.append((data[12], data[13], source_port, tag,
                                  octavia_probes.crc32c(zeroed) == checksum))
            if data[12] != 1:  # only INITs are answered
                continue
            init_tag = struct.unpack_from('!L', data, 16)[0]
            if self.mode == 'ack':
                cookie = struct.pack('!HH8s', 7, 12, b'cookie!!')
                chunk = struct.pack('!BBHLLHHL', 2, 0, 20 + len(cookie),
                                    self.TAG, 65536, 10, 10, 1) + cookie
            elif self.mode == 'abort':
                chunk = struct.pack('!BBH', 6, 0, 4)
            else:
                continue
            self.sock.sendto(_sctp(port, source_port, init_tag, chunk),
                             (peer[0], 0))

    def chunks(self):
        return [entry[0] for entry in self.received]

    def close(self):
        self._stop.set()
        self.thread.join()
        self.sock.close()
