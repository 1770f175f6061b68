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
"""An SCTP listener on a real VF: associations through the VIP.

This machine's kernel has no SCTP sockets; the guest's has. The listener
is served by the agent's nftables L4 balancer (amphora_agent.l4), its
source list by the stateless firewall, and its member is checked by the
agent's SCTP health check (an INIT answered by INIT-ACK), all deciding real
SCTP packets that the PF switched: the client is on another VF, the member
on the wire.
"""

import textwrap
import time

import pytest

from tests.functional.igb import conftest
from tests.functional.igb import igb_lab

PARALLEL_GROUP = 'igb'
pytestmark = pytest.mark.igb

LISTENER_ID = '5d0c1a2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d'
POOL_ID = '6e1d2b3c-4f5a-4b6c-9d7e-8f9a0b1c2d3e'
MEMBER_ID = '7f2e3c4d-5a6b-4c7d-8e8f-9a0b1c2d3e4f'

# The member echoes the message, prefixed by the address it saw the
# association come from.
ECHO_SERVER = textwrap.dedent('''
    import socket, sys
    kind = (socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    with socket.socket(socket.AF_INET, *kind) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((sys.argv[1], int(sys.argv[2])))
        server.listen()
        while True:
            association, peer = server.accept()
            with association:
                message = association.recv(1000)
                association.sendall(peer[0].encode() + b' ' + message)
''')
CLIENT = textwrap.dedent('''
    import socket, sys
    kind = (socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    with socket.socket(socket.AF_INET, *kind) as client:
        client.settimeout(float(sys.argv[4]))
        # Bound to one address: the INIT then lists no other address the
        # member might try behind the balancer's back.
        client.bind((sys.argv[1], 0))
        try:
            client.connect((sys.argv[2], int(sys.argv[3])))
            client.sendall(b'diameter')
            print(client.recv(1000).decode())
        except OSError as error:
            print('failed:', type(error).__name__)
''')


def l4_document(monitor_delay=2):
    return {
        'loadbalancer_id': conftest.LOADBALANCER_ID,
        'flow_limit': 1000,
        'listeners': [{
            'id': LISTENER_ID, 'protocol': 'SCTP',
            'port': conftest.SCTP_PORT, 'addresses': [igb_lab.VIP],
            'connection_limit': None,
            'pool': {
                'id': POOL_ID, 'algorithm': 'ROUND_ROBIN',
                'persistence': None,
                'members': [{
                    'id': MEMBER_ID, 'address': igb_lab.MEMBER,
                    'port': conftest.SCTP_PORT, 'weight': 1,
                    'backup': False, 'enabled': True,
                    'monitor_address': None, 'monitor_port': None}],
                'monitor': {
                    'type': 'SCTP', 'delay': monitor_delay, 'timeout': 2,
                    'rise': 1, 'fall': 1, 'http_method': 'GET',
                    'url_path': '/', 'expected_codes': '200',
                    'domain_name': None, 'http_version': 1.0},
            }}],
    }


@pytest.fixture(scope='module')
def sctp_member(lab, amphora):
    lab.guest.run(['modprobe', 'sctp'])
    pid = _start_member(lab)
    lab.api.upload_l4_config(conftest.AMPHORA_ID, conftest.LOADBALANCER_ID,
                             l4_document())
    yield pid


def _start_member(lab):
    return lab.guest.spawn(
        ['ip', 'netns', 'exec', 'outside', igb_lab.sys.executable, '-c',
         ECHO_SERVER, igb_lab.MEMBER, str(conftest.SCTP_PORT)],
        f'{lab.workdir}/sctp-member.log')


def _associate(lab, namespace, source, timeout=10):
    return lab.in_namespace(namespace, [
        igb_lab.sys.executable, '-c', CLIENT, source, igb_lab.VIP,
        str(conftest.SCTP_PORT), str(timeout)],
        timeout=timeout + 30).stdout.strip()


def _health(lab):
    return lab.api.get_l4_config(conftest.LOADBALANCER_ID)['health'].get(
        MEMBER_ID)


def _wait_for_health(lab, wanted):
    deadline = time.monotonic() + igb_lab.PATIENCE
    while _health(lab) != wanted:
        assert time.monotonic() < deadline, (
            f'member health {_health(lab)}, waited for {wanted}')
        time.sleep(0.5)


def _sctp_listener(lab):
    return lab.counters()['listeners'][f'SCTP:{conftest.SCTP_PORT}']


def test_an_association_from_another_vf_reaches_the_member(lab, sctp_member):
    before = _sctp_listener(lab)['accepted']['packets']

    answer = _associate(lab, 'client', igb_lab.CLIENT_ALLOWED)

    # The member saw the amphora, not the client: its replies come back
    # through the amphora, which translates them for the client.
    peer, _, message = answer.partition(' ')
    assert message == 'diameter', answer
    assert peer not in (igb_lab.CLIENT_ALLOWED, igb_lab.VIP), answer
    assert _sctp_listener(lab)['accepted']['packets'] > before


def test_an_association_from_the_wire_reaches_the_member(lab, sctp_member):
    answer = _associate(lab, 'outside', igb_lab.OUTSIDE_ALLOWED)

    assert answer.endswith(' diameter'), answer


def test_a_source_outside_allowed_cidrs_gets_no_association(
        lab, sctp_member):
    before = _sctp_listener(lab)['dropped']['packets']

    answer = _associate(lab, 'client', igb_lab.CLIENT_REFUSED, timeout=3)

    assert answer.startswith('failed'), answer
    assert _sctp_listener(lab)['dropped']['packets'] > before


def test_the_sctp_health_check_follows_the_member(lab, sctp_member):
    _wait_for_health(lab, 'UP')

    lab.guest.signal(sctp_member, 15, wait=10)
    try:
        # The member's kernel answers INIT with ABORT now.
        _wait_for_health(lab, 'DOWN')
        assert _associate(lab, 'client', igb_lab.CLIENT_ALLOWED,
                          timeout=3).startswith('failed')
    finally:
        _start_member(lab)
    _wait_for_health(lab, 'UP')
    assert _associate(lab, 'client', igb_lab.CLIENT_ALLOWED).endswith(
        ' diameter')
