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
"""The firewall and haproxy on igbvf, deciding frames the PF switched.

Clients reach the VIP from another VF of the same PF (switched inside the
NIC) and from the wire (through the PF's receive path); the member sits on
the wire, so its replies come back through the PF too.
"""

import time

import pytest

from tests.functional.igb import conftest
from tests.functional.igb import igb_lab

PARALLEL_GROUP = 'igb'
pytestmark = pytest.mark.igb
URL = f'http://{igb_lab.VIP}:{conftest.LISTENER_PORT}/'


def _listener(lab):
    return lab.counters()['listeners'][f'TCP:{conftest.LISTENER_PORT}']


def _vip_dropped(lab, amphora):
    ifname = amphora['interface']['name']
    return lab.counters()['interfaces'][ifname]['dropped']['packets']


def test_haproxy_serves_a_client_on_another_vf(lab, amphora):
    before = _listener(lab)['accepted']['packets']

    body = lab.http_get('client', igb_lab.CLIENT_ALLOWED, URL)

    assert body == conftest.MEMBER_BODY
    assert _listener(lab)['accepted']['packets'] > before


def test_haproxy_serves_a_client_on_the_wire(lab, amphora):
    body = lab.http_get('outside', igb_lab.OUTSIDE_ALLOWED, URL)

    assert body == conftest.MEMBER_BODY


def test_member_replies_through_the_pf_are_admitted(lab, amphora):
    before = lab.counters()['members']['accepted']['packets']

    assert lab.http_get('outside', igb_lab.OUTSIDE_ALLOWED, URL) == (
        conftest.MEMBER_BODY)

    assert lab.counters()['members']['accepted']['packets'] > before


def test_a_refused_client_on_another_vf_is_dropped_and_counted(
        lab, amphora):
    before = _listener(lab)['dropped']['packets']

    assert lab.http_get('client', igb_lab.CLIENT_REFUSED, URL,
                        timeout=3) is None

    assert _listener(lab)['dropped']['packets'] > before
    # Still served to the allowed source a moment later: nothing stuck.
    assert lab.http_get('client', igb_lab.CLIENT_ALLOWED, URL) == (
        conftest.MEMBER_BODY)


def test_a_refused_client_on_the_wire_is_dropped_and_counted(lab, amphora):
    before = _listener(lab)['dropped']['packets']

    assert lab.http_get('outside', igb_lab.OUTSIDE_REFUSED, URL,
                        timeout=3) is None

    assert _listener(lab)['dropped']['packets'] > before


def test_an_unlisted_port_is_dropped_on_the_vf(lab, amphora):
    before = _vip_dropped(lab, amphora)

    assert lab.http_get('client', igb_lab.CLIENT_ALLOWED,
                        f'http://{igb_lab.VIP}:8443/', timeout=3) is None

    assert _vip_dropped(lab, amphora) > before


def _send_vrrp(lab, namespace, source, count=3):
    """Raw VRRPv2 adverts from ``source``, unicast as Octavia's are."""
    script = (
        'import socket, struct, time\n'
        's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)\n'
        f's.bind(({source!r}, 0))\n'
        's.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)\n'
        # Version 2, advertisement; VRID 1, priority 100, one address.
        f'advert = struct.pack("!BBBBBBH4s", 0x21, 1, 100, 1, 0, 1, 0, '
        f'socket.inet_aton({igb_lab.VIP!r}))\n'
        f'for _ in range({count}):\n'
        f'    s.sendto(advert, ({igb_lab.VRRP_IP!r}, 0))\n'
        '    time.sleep(0.1)\n')
    lab.in_namespace(namespace, [igb_lab.sys.executable, '-c', script])


def test_vrrp_from_the_peer_amphora_is_admitted_and_from_others_dropped(
        lab, amphora):
    client_vf = lab.vf_netdevs[igb_lab.CLIENT_PORT.vf]
    lab.in_namespace('client', ['ip', 'addr', 'add',
                                f'{igb_lab.PEER_VRRP_IP}/32', 'dev',
                                client_vf])
    try:
        accepted = lab.counters()['vrrp']['accepted']['packets']
        _send_vrrp(lab, 'client', igb_lab.PEER_VRRP_IP)
        deadline = time.monotonic() + igb_lab.PATIENCE
        while lab.counters()['vrrp']['accepted']['packets'] < accepted + 3:
            assert time.monotonic() < deadline, 'the peer was not admitted'
            time.sleep(0.2)

        dropped = _vip_dropped(lab, amphora)
        accepted = lab.counters()['vrrp']['accepted']['packets']
        _send_vrrp(lab, 'client', igb_lab.CLIENT_ALLOWED)
        deadline = time.monotonic() + igb_lab.PATIENCE
        while _vip_dropped(lab, amphora) < dropped + 3:
            assert time.monotonic() < deadline, 'the stranger was not dropped'
            time.sleep(0.2)
        assert lab.counters()['vrrp']['accepted']['packets'] == accepted
    finally:
        lab.in_namespace('client', ['ip', 'addr', 'del',
                                    f'{igb_lab.PEER_VRRP_IP}/32', 'dev',
                                    client_vf])
