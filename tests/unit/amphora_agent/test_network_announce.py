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
"""The announcement frames byte for byte, and how announce() sends them."""

import ipaddress
import logging
import socket
import struct

import pytest

from amphora_agent.network import announce

MAC = 'fa:16:3e:60:00:01'
MAC_BYTES = bytes.fromhex('fa163e600001')
VIP = ipaddress.ip_address('192.0.2.10')
VIP6 = ipaddress.ip_address('2001:db8:60::10')


def test_gratuitous_arp_request():
    frame = announce.gratuitous_arp(MAC, VIP)

    assert frame == bytes.fromhex(
        'ffffffffffff'  # Ethernet: to broadcast
        'fa163e600001'  # from the interface
        '0806'          # ARP
        '0001'          # hardware type Ethernet
        '0800'          # protocol IPv4
        '06' '04'       # address lengths
        '0001'          # request
        'fa163e600001'  # sender MAC
        'c000020a'      # sender IP 192.0.2.10
        '000000000000'  # target MAC unknown
        'c000020a')     # target IP: the sender's own


def test_gratuitous_arp_reply():
    frame = announce.gratuitous_arp(MAC, str(VIP), announce.ARP_REPLY)

    assert frame == bytes.fromhex(
        'ffffffffffff' 'fa163e600001' '0806'
        '0001' '0800' '06' '04'
        '0002'          # reply
        'fa163e600001' 'c000020a'
        'fa163e600001'  # target MAC the sender's: Linux wants it so
        'c000020a')


def test_neighbour_advertisement():
    frame = announce.neighbour_advertisement(MAC.upper(), VIP6)

    all_nodes = 'ff020000000000000000000000000001'
    target = '20010db8006000000000000000000010'
    assert frame == bytes.fromhex(
        '333300000001'  # Ethernet: to the all-nodes group
        'fa163e600001'  # from the interface
        '86dd'          # IPv6
        '60000000'      # version 6, no traffic class or flow label
        '0020'          # 32 bytes of ICMPv6
        '3a'            # next header ICMPv6
        'ff'            # hop limit 255, or neighbours drop it
        + target +      # from the address itself
        all_nodes +
        '88'            # Neighbor Advertisement
        '00'            # code
        'c1d5'          # checksum
        '20000000'      # override; neither router nor solicited
        + target +
        '02'            # target link-layer address option
        '01'            # 8 bytes
        'fa163e600001')


def test_neighbour_advertisement_checksum_sums_to_ones():
    frame = announce.neighbour_advertisement(
        MAC, ipaddress.ip_address('fd00:1::abcd'))

    ip_header, icmp = frame[14:54], frame[54:]
    pseudo_header = (ip_header[8:40] + struct.pack('!I', len(icmp)) +
                     b'\0\0\0\x3a')
    data = pseudo_header + icmp
    total = sum(int.from_bytes(data[i:i + 2], 'big')
                for i in range(0, len(data), 2))
    while total > 0xffff:
        total = (total & 0xffff) + (total >> 16)
    assert total == 0xffff


def test_frames_of_a_round():
    link_local = ipaddress.ip_address('fe80::1')

    frames = announce.frames(MAC, [VIP, VIP6, link_local])

    assert frames == [announce.gratuitous_arp(MAC, VIP, announce.ARP_REQUEST),
                      announce.gratuitous_arp(MAC, VIP, announce.ARP_REPLY),
                      announce.neighbour_advertisement(MAC, VIP6)]


def test_bad_mac_is_refused():
    with pytest.raises(ValueError):
        announce.gratuitous_arp('fa:16:3e', VIP)


class FakeSocket:
    def __init__(self, fail_on_send=None):
        self.sent = []
        self.closed = False
        self.fail_on_send = fail_on_send

    def send(self, frame):
        if len(self.sent) == self.fail_on_send:
            raise OSError(100, 'Network is down')
        self.sent.append(frame)
        return len(frame)

    def close(self):
        self.closed = True


@pytest.fixture
def packet_socket(monkeypatch):
    """The socket announce() opens, and the interfaces it was opened on."""
    fake = FakeSocket()
    fake.opened_on = []

    def open_socket(ifname):
        fake.opened_on.append(ifname)
        return fake

    monkeypatch.setattr(announce, '_open', open_socket)
    monkeypatch.setattr(announce, '_running', lambda sock, ifname: True)
    return fake


def test_announce_sends_every_round_then_closes(packet_socket):
    thread = announce.announce('eth1', MAC, [VIP, VIP6], rounds=2,
                               interval=0)
    thread.join(5)

    round_frames = announce.frames(MAC, [VIP, VIP6])
    assert packet_socket.opened_on == ['eth1']
    assert packet_socket.sent == round_frames * 2
    assert packet_socket.closed


def test_announce_waits_for_carrier(packet_socket, monkeypatch):
    answers = iter([False, False, True])
    monkeypatch.setattr(announce, '_running',
                        lambda sock, ifname: next(answers))
    monkeypatch.setattr(announce, '_CARRIER_POLL', 0)

    announce.announce('eth1', MAC, [VIP], rounds=1).join(5)

    assert next(answers, 'all asked') == 'all asked'
    assert len(packet_socket.sent) == 2


def test_announce_without_carrier_sends_anyway(packet_socket, monkeypatch,
                                               caplog):
    monkeypatch.setattr(announce, '_running', lambda sock, ifname: False)

    announce.announce('eth1', MAC, [VIP], rounds=1, carrier_timeout=0).join(5)

    assert len(packet_socket.sent) == 2
    assert 'no carrier' in caplog.text


def test_nothing_to_announce_opens_nothing(packet_socket):
    assert announce.announce('eth1', MAC, []) is None
    assert packet_socket.opened_on == []


def test_socket_refused_is_a_warning(monkeypatch, caplog):
    def refuse(ifname):
        raise PermissionError(1, 'Operation not permitted')

    monkeypatch.setattr(announce, '_open', refuse)

    assert announce.announce('eth1', MAC, [VIP]) is None
    assert [(record.levelno, record.getMessage())
            for record in caplog.records] == [
        (logging.WARNING, 'Could not announce 192.0.2.10 on eth1: '
                          '[Errno 1] Operation not permitted')]


def test_send_failure_is_a_warning_and_closes(monkeypatch, caplog):
    fake = FakeSocket(fail_on_send=3)
    monkeypatch.setattr(announce, '_open', lambda ifname: fake)
    monkeypatch.setattr(announce, '_running', lambda sock, ifname: True)

    announce.announce('eth1', MAC, [VIP, VIP6], rounds=3, interval=0).join(5)

    assert len(fake.sent) == 3
    assert fake.closed
    assert ('Could not announce 192.0.2.10, 2001:db8:60::10 on eth1 after '
            '1 rounds' in caplog.text)


def test_running_reads_the_interface_flags():
    # Any socket asks the kernel of its own namespace; loopback is up.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert announce._running(sock, 'lo')
        with pytest.raises(OSError):
            announce._running(sock, 'no-such-if')
