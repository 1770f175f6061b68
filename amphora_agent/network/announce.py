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
"""Tell the neighbours of a plugged interface which MAC its addresses have.

After a failover the VIP comes back on a VF with another MAC, and the
neighbours (the router of the VIP subnet above all) keep sending to the
failed amphora's MAC until their entry ages out and they probe again, tens
of seconds. The kernel announces an interface's addresses (``arp_notify``,
``ndisc_notify``) only at the instant the link comes up, when a VF, or the
switch port behind it, often does not forward yet; and never for addresses
added to a link that is up already. So the agent announces every address it
put on the interface itself, as upstream Octavia's agent does with
``arping -U``: for IPv4 a gratuitous ARP in both the request and the reply
form (neighbours differ in which one they accept), for IPv6 an unsolicited
Neighbor Advertisement to all nodes with the override flag set, the form
neighbours update an existing entry from (RFC 4861, 7.2.6).

Frames are sent whole on an AF_PACKET socket: one path for both families,
independent of the routes and of the interface's IPv6 state, and no arping
in the image. A socket belongs to the network namespace of the thread that
opens it, so ``announce()`` must run on a thread inside the data namespace;
it hands the socket to a short-lived thread that waits for the link to carry
traffic and sends a few rounds, while the plug answers at once.
"""

import fcntl
import ipaddress
import socket
import struct
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# A round is lost when the link, or the port behind it, is not forwarding
# yet; a few rounds apart ride that out.
ROUNDS = 3
INTERVAL = 0.5  # seconds between rounds
# How long to wait for the link to carry traffic before sending anyway: a
# VF's link can take seconds after it is set up (a reset of the VF by its
# driver, link negotiation on the PF).
CARRIER_TIMEOUT = 10.0
_CARRIER_POLL = 0.02

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86dd
ARP_REQUEST = 1
ARP_REPLY = 2
_ARPHRD_ETHER = 1
_ETH_P_IP = 0x0800
_IPPROTO_ICMPV6 = 58
_ND_NEIGHBOR_ADVERT = 136
_ND_NA_FLAG_OVERRIDE = 0x20000000
_ND_OPT_TARGET_LL_ADDR = 2
# Neighbours drop Neighbor Discovery that has crossed a router.
_ND_HOP_LIMIT = 255
_BROADCAST = b'\xff' * 6
_ALL_NODES = ipaddress.IPv6Address('ff02::1')
# RFC 2464: 33:33 and the low 32 bits of the IPv6 group.
_ALL_NODES_MAC = b'\x33\x33' + _ALL_NODES.packed[-4:]

_SIOCGIFFLAGS = 0x8913
_IFF_RUNNING = 0x40


def _mac_bytes(mac):
    packed = bytes.fromhex(mac.replace(':', ''))
    if len(packed) != 6:
        raise ValueError(f'{mac!r} is not a MAC address')
    return packed


def _ethernet(destination, source, ethertype):
    return destination + source + struct.pack('!H', ethertype)


def gratuitous_arp(mac, address, operation=ARP_REQUEST):
    """An Ethernet frame announcing that IPv4 ``address`` is at ``mac``.

    Sender and target address are both ``address``. The request leaves the
    target MAC zero (RFC 5227's announcement, as the kernel sends it); the
    reply repeats the sender's MAC, which Linux requires before it takes a
    reply as gratuitous (``arping -A``).
    """
    source = _mac_bytes(mac)
    packed = ipaddress.IPv4Address(address).packed
    target_mac = source if operation == ARP_REPLY else b'\0' * 6
    return (_ethernet(_BROADCAST, source, ETH_P_ARP) +
            struct.pack('!HHBBH', _ARPHRD_ETHER, _ETH_P_IP, 6, 4, operation) +
            source + packed + target_mac + packed)


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack(f'!{len(data) // 2}H', data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def neighbour_advertisement(mac, address):
    """An Ethernet frame announcing that IPv6 ``address`` is at ``mac``.

    Unsolicited, to all nodes, from ``address`` itself (as the kernel's
    own), with the override flag and the target link-layer address option.
    """
    source = _mac_bytes(mac)
    packed = ipaddress.IPv6Address(address).packed
    option = struct.pack('!BB', _ND_OPT_TARGET_LL_ADDR, 1) + source
    body = struct.pack('!I', _ND_NA_FLAG_OVERRIDE) + packed + option
    pseudo_header = (packed + _ALL_NODES.packed +
                     struct.pack('!I3xB', 4 + len(body), _IPPROTO_ICMPV6))
    checksum = _checksum(pseudo_header +
                         struct.pack('!BBH', _ND_NEIGHBOR_ADVERT, 0, 0) + body)
    icmp = struct.pack('!BBH', _ND_NEIGHBOR_ADVERT, 0, checksum) + body
    ip_header = struct.pack('!IHBB', 6 << 28, len(icmp), _IPPROTO_ICMPV6,
                            _ND_HOP_LIMIT) + packed + _ALL_NODES.packed
    return _ethernet(_ALL_NODES_MAC, source, ETH_P_IPV6) + ip_header + icmp


def frames(mac, addresses):
    """The frames of one round for ``addresses`` (ipaddress addresses).

    IPv6 link-local and multicast addresses are left out: the agent never
    puts them on an interface, and they do not move between amphorae.
    """
    found = []
    for address in addresses:
        if address.version == 4:
            found.append(gratuitous_arp(mac, address, ARP_REQUEST))
            found.append(gratuitous_arp(mac, address, ARP_REPLY))
        elif not (address.is_link_local or address.is_multicast):
            found.append(neighbour_advertisement(mac, address))
    return found


def _open(ifname):
    """A packet socket sending on ``ifname``, in the caller's namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        # Protocol 0: the socket only sends, nothing is queued to it.
        sock.bind((ifname, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _running(sock, ifname):
    """Whether ``ifname`` is up with carrier (the kernel's IFF_RUNNING)."""
    request = struct.pack('16sH14x', ifname.encode(), 0)
    flags = struct.unpack('16sH14x', fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS,
                                                 request))[1]
    return bool(flags & _IFF_RUNNING)


class _Announcement(threading.Thread):
    """Sends the rounds on a socket opened in the data namespace."""

    def __init__(self, sock, ifname, round_frames, shown, rounds, interval,
                 carrier_timeout):
        super().__init__(name=f'announce-{ifname}', daemon=True)
        self.sock = sock
        self.ifname = ifname
        self.frames = round_frames
        self.shown = shown  # the addresses, for the log
        self.rounds = rounds
        self.interval = interval
        self.carrier_timeout = carrier_timeout
        self.sent = 0  # rounds sent

    def _wait_for_carrier(self):
        deadline = time.monotonic() + self.carrier_timeout
        while not _running(self.sock, self.ifname):
            if time.monotonic() >= deadline:
                LOG.warning('Interface %s has no carrier after %.1f s; '
                            'announcing %s anyway', self.ifname,
                            self.carrier_timeout, self.shown)
                return
            time.sleep(_CARRIER_POLL)

    def run(self):
        try:
            self._wait_for_carrier()
            for number in range(self.rounds):
                if number:
                    time.sleep(self.interval)
                for frame in self.frames:
                    self.sock.send(frame)
                self.sent += 1
            LOG.debug('Announced %s on %s (%d rounds)', self.shown,
                      self.ifname, self.sent)
        except Exception as error:
            LOG.warning('Could not announce %s on %s after %d rounds: %s',
                        self.shown, self.ifname, self.sent, error)
        finally:
            self.sock.close()


def announce(ifname, mac, addresses, rounds=ROUNDS, interval=INTERVAL,
             carrier_timeout=CARRIER_TIMEOUT):
    """Announce ``addresses`` (ipaddress addresses) as at ``mac``.

    Call on a thread in the namespace of ``ifname``. Returns the started
    thread sending the rounds, or None when there is nothing to announce or
    the socket cannot be opened. Never raises: a failure only delays the
    neighbours until they probe again, so it is a warning in the log.
    """
    shown = ', '.join(str(address) for address in addresses)
    try:
        round_frames = frames(mac, addresses)
        if not round_frames:
            return None
        sock = _open(ifname)
        try:
            announcement = _Announcement(sock, ifname, round_frames, shown,
                                         rounds, interval, carrier_timeout)
            announcement.start()
        except BaseException:
            sock.close()
            raise
    except Exception as error:
        LOG.warning('Could not announce %s on %s: %s', shown, ifname, error)
        return None
    return announcement
