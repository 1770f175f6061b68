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
"""The probes of the L4 health checks: one look at one member.

Each probe (UDP-CONNECT, SCTP, TCP, HTTP, PING) runs inside the data
namespace and answers ``(ok, reason)``: socket and packet work, kept apart
from amphora_agent.l4.health, which schedules the probes and keeps the
members' rise/fall states.

Every probe but HTTP is a non-blocking socket on the checker's asyncio
loop, because a UDP-CONNECT success *is* a whole timeout of silence and
blocking probes would need a thread per member. HTTP goes through
http.client on a few threads of the namespace.

Caveat of UDP-CONNECT (as upstream): a member's kernel rate-limits ICMP
errors (net.ipv4.icmp_ratelimit, per source, burst 6 then 1/s), so probes
more often than once a second of a closed port partly read as successes.
"""

import asyncio
import errno
import http.client
import ipaddress
import os
import random
import socket
import struct
import time

from octavia.cmd import health_checker as octavia_probes

from amphora_agent import netns

# HTTP probes block a thread for up to their timeout; more HTTP members
# than this queue, and a probe's timeout counts from when it starts.
HTTP_WORKERS = 8
TYPES = ('UDP-CONNECT', 'SCTP', 'TCP', 'HTTP', 'PING')
# Errors of the amphora itself (no free ephemeral port, no descriptor or
# memory left): the probe did not happen, and says nothing of the member.
LOCAL_ERRORS = (errno.EAGAIN, errno.EADDRNOTAVAIL, errno.EMFILE,
                errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
SCTP_INIT_ACK = 2
SCTP_ABORT = 6


def parse_expected_codes(text):
    """The status codes of Octavia's "200", "200,202" or "200-204"."""
    codes = set()
    for item in str(text).split(','):
        low, dash, high = item.strip().partition('-')
        low = int(low)
        high = int(high) if dash else low
        if not 100 <= low <= high <= 599:
            raise ValueError(f'expected_codes {text!r}: {item!r}')
        codes.update(range(low, high + 1))
    return frozenset(codes)


def _family(address):
    if ipaddress.ip_address(address).version == 6:
        return socket.AF_INET6
    return socket.AF_INET


def _raw_socket(target, protocol):
    sock = socket.socket(_family(target.address), socket.SOCK_RAW, protocol)
    sock.setblocking(False)
    # Connected, the kernel hands this socket only what the target sent,
    # so concurrent probes do not see each other's answers.
    sock.connect((target.address, 0))
    return sock


def _payload(data, family):
    # A raw IPv4 socket hands over the IP header too, an IPv6 one does not.
    return data if family == socket.AF_INET6 else data[(data[0] & 0x0f) * 4:]


async def _udp_connect(monitor, target):
    loop = asyncio.get_running_loop()
    with socket.socket(_family(target.address), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((target.address, target.port))
        # Empty: the least a member's application can misread.
        await loop.sock_sendall(sock, b'')
        try:
            await loop.sock_recv(sock, 1)
        except ConnectionRefusedError:
            return False, 'ICMP port unreachable'
    return True, 'UDP answer'


async def _tcp(monitor, target):
    loop = asyncio.get_running_loop()
    with socket.socket(_family(target.address), socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (target.address, target.port))
        # Close with a reset, as haproxy's checks do: a probe every few
        # seconds per member must not fill the amphora with TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
    return True, 'TCP connected'


async def _ping(monitor, target):
    loop = asyncio.get_running_loop()
    family = _family(target.address)
    if family == socket.AF_INET6:
        protocol, request, reply = socket.IPPROTO_ICMPV6, 128, 129
    else:
        protocol, request, reply = socket.IPPROTO_ICMP, 8, 0
    ident, sequence = random.getrandbits(16), random.getrandbits(16)
    packet = bytearray(struct.pack('!BBHHH', request, 0, 0, ident, sequence)
                       + b'sriov-octavia l4 health')
    if family == socket.AF_INET:
        # The kernel fills in ICMPv6 checksums, not ICMP ones.
        struct.pack_into('!H', packet, 2, _inet_checksum(packet))
    with _raw_socket(target, protocol) as sock:
        await loop.sock_sendall(sock, packet)
        while True:
            icmp = _payload(await loop.sock_recv(sock, 2048), family)
            if (len(icmp) >= 8 and icmp[0] == reply and
                    struct.unpack_from('!HH', icmp, 4) == (ident, sequence)):
                return True, 'echo reply'


def _inet_checksum(data):
    total = sum(struct.unpack(f'!{len(data) // 2}H', data[:len(data) & ~1]))
    if len(data) % 2:
        total += data[-1] << 8
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def _sctp_abort(source_port, port, peer_tag):
    # Octavia's ABORT builder sets the T bit (tag reflected) for any tag;
    # with the peer's own tag from its INIT-ACK the bit must be clear.
    packet = bytearray(struct.pack('!HHLLBBH', source_port, port, peer_tag,
                                   0, SCTP_ABORT, 0, 4))
    struct.pack_into('!L', packet, 8, octavia_probes.crc32c(packet))
    return bytes(packet)


async def _sctp(monitor, target):
    loop = asyncio.get_running_loop()
    family = _family(target.address)
    # Read by the namespace's thread: /proc/sys/net shows the reader's
    # namespace, and the amphora's firewall admits member replies only to
    # the data namespace's range.
    source_port = random.randint(*netns.ephemeral_ports())
    tag = random.randint(1, 0xffffffff)
    # Octavia's module has no public API for its packets; its builder is
    # the one upstream amphorae send, so members see the same INIT.
    init = octavia_probes._sctp_build_init_packet(source_port, target.port,
                                                  tag)
    with _raw_socket(target, socket.IPPROTO_SCTP) as sock:
        await loop.sock_sendall(sock, bytes(init))
        while True:
            try:
                data = await loop.sock_recv(sock, 2048)
            except OSError as error:
                # ICMP protocol unreachable, ICMPv6 unknown next header.
                if error.errno in (errno.ENOPROTOOPT, errno.EPROTO):
                    return False, 'ICMP protocol unreachable'
                raise
            packet = _payload(data, family)
            if len(packet) < 16 or struct.unpack_from('!HHL', packet) != (
                    target.port, source_port, tag):
                continue
            chunk = packet[12]
            if chunk == SCTP_INIT_ACK and len(packet) >= 20:
                # No kernel association exists to abort; the ABORT ends
                # the member's and conntrack's view of this handshake.
                peer_tag = struct.unpack_from('!L', packet, 16)[0]
                await loop.sock_sendall(
                    sock, _sctp_abort(source_port, target.port, peer_tag))
                return True, 'SCTP INIT-ACK'
            if chunk == SCTP_ABORT:
                return False, 'SCTP ABORT'
            return False, f'SCTP chunk type {chunk} instead of INIT-ACK'


def _http(monitor, target):
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        target.address, target.port or 80, timeout=monitor.timeout)
    if monitor.http_version < 1.1:
        # http.client only speaks 1.1; haproxy sends a 1.0 request line
        # (and no Host unless asked) for Octavia's 1.0 monitors.
        connection._http_vsn, connection._http_vsn_str = 10, 'HTTP/1.0'
    try:
        connection.putrequest(monitor.http_method, monitor.url_path,
                              skip_host=bool(monitor.domain_name),
                              skip_accept_encoding=True)
        if monitor.domain_name:
            connection.putheader('Host', monitor.domain_name)
        connection.putheader('Connection', 'close')
        connection.endheaders()
        status = connection.getresponse().status
    except http.client.HTTPException as error:
        return False, f'HTTP error: {error!r}'
    finally:
        connection.close()
    # The socket timeout bounds each read; a server trickling its headers
    # must not pass for healthy.
    if time.monotonic() - started > monitor.timeout:
        return False, 'timeout'
    if status in parse_expected_codes(monitor.expected_codes):
        return True, f'HTTP {status}'
    return False, f'HTTP {status} not in {monitor.expected_codes}'


_PROBES = {'UDP-CONNECT': _udp_connect, 'SCTP': _sctp, 'TCP': _tcp,
           'PING': _ping}


async def run_probe(monitor, target):
    """One probe on the running loop (inside the namespace): (ok, reason).

    ``ok`` is None when the amphora could not probe (LOCAL_ERRORS). HTTP
    runs on the loop's default executor, whose threads must be in the
    namespace too.
    """
    try:
        if monitor.type == 'HTTP':
            return await asyncio.get_running_loop().run_in_executor(
                None, _http, monitor, target)
        # wait_for, not asyncio.timeout: amphora images may run 3.10.
        return await asyncio.wait_for(_PROBES[monitor.type](monitor, target),
                                      monitor.timeout)
    except (TimeoutError, asyncio.TimeoutError):
        if monitor.type == 'UDP-CONNECT':
            return True, 'no ICMP port unreachable within timeout'
        return False, 'timeout'
    except OSError as error:
        # asyncio's connect error says "Connect call failed"; the errno
        # says why.
        reason = os.strerror(error.errno) if error.errno else repr(error)
        if error.errno in LOCAL_ERRORS:
            return None, f'not probed: {reason}'
        return False, reason


def namespace_executor(namespace):
    """The threads, inside ``namespace``, that run the HTTP probes."""
    return netns.executor(namespace, HTTP_WORKERS, 'l4-health-http')


def probe(namespace, monitor, target):
    """Probe ``target`` once from ``namespace``; for diagnostics and tests."""
    async def main():
        asyncio.get_running_loop().set_default_executor(
            namespace_executor(namespace))
        return await run_probe(monitor, target)

    with netns.executor(namespace, 1, 'l4-probe') as thread:
        return thread.submit(lambda: asyncio.run(main())).result()
