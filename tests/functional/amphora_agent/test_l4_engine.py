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
"""The L4 engine against the real kernel: datagrams balanced for real.

A client namespace sends UDP flows to the VIP of an "amphora" namespace
where the engine put its table; two member namespaces answer with their
names. Every test uses its own listener port, so flows left in conntrack
by an earlier test are never counted for a later one.
"""

import collections
import json
import os
import socket
import subprocess

import pytest

from amphora_agent.l4 import engine as l4_engine
from amphora_agent.l4 import model
from amphora_agent.l4 import render
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import firewall_lab as fl
from tests.functional.amphora_agent import l4_lab as lab_mod

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='needs root for namespaces')

M1, M2 = 'member1', 'member2'
ADDR = {name: value[0] for name, value in lab_mod.MEMBERS.items()}
ADDR6 = {name: value[1] for name, value in lab_mod.MEMBERS.items()}


@pytest.fixture(scope='module')
def lab():
    with netlab.Lab(lab_mod.PREFIX) as lab:
        lab_mod.build(lab)
        servers = []
        for name in (M1, M2):
            for address in (ADDR[name], ADDR6[name]):
                servers.append(lab_mod.NamedEcho(
                    lab.name(name), address, lab_mod.MEMBER_PORT, name))
        yield lab
        for server in servers:
            server.close()


@pytest.fixture
def engine(lab, tmp_path):
    checkers = []

    def factory(namespace, on_change):
        checkers.append(lab_mod.StubChecker(namespace, on_change))
        return checkers[-1]

    l4 = l4_engine.L4Engine(namespace=lab.name(lab_mod.AMP),
                            state_file=str(tmp_path / 'l4.json'),
                            refresh_interval=0, health_factory=factory)
    l4.start()
    l4.checker = checkers[0]
    yield l4
    l4.delete(l4.holds() or '')
    l4.stop()


def member(name, weight=1, backup=False, six=False):
    return {'id': name, 'address': (ADDR6 if six else ADDR)[name],
            'port': lab_mod.MEMBER_PORT, 'weight': weight,
            'backup': backup}


def document(port, members, algorithm='ROUND_ROBIN', persistence=None,
             flow_limit=1000, connection_limit=None, protocol='UDP',
             addresses=(lab_mod.VIP4,)):
    return model.parse_document({
        'loadbalancer_id': 'lb1', 'flow_limit': flow_limit,
        'listeners': [{
            'id': f'listener{port}', 'protocol': protocol, 'port': port,
            'addresses': list(addresses),
            'connection_limit': connection_limit,
            'pool': {'id': f'pool{port}', 'algorithm': algorithm,
                     'persistence': persistence, 'members': members}}]})


def flows(lab, port, count, sources=(lab_mod.CLIENTS4[0],),
          destination=lab_mod.VIP4, keep=None):
    """``count`` new flows; the member that answered each (None: none)."""
    answers = []
    for index in range(count):
        flow = lab_mod.Flow(lab.name(lab_mod.CLIENT),
                            sources[index % len(sources)], destination,
                            port)
        answer = flow.ask(wait=fl.WAIT if keep == 'short' else fl.PATIENCE)
        if answer is not None:
            # Replies come from the VIP, never from the member.
            assert flow.peer == (destination, port)
        answers.append(answer)
        flow.close()
    return answers


def tally(answers):
    return collections.Counter(answers)


def nft_list(lab):
    return netlab.run(lab.name(lab_mod.AMP),
                      ['nft', '-j', 'list', 'ruleset']).stdout


def test_round_robin_balances_and_replies_from_the_vip(lab, engine):
    engine.apply(document(6001, [member(M1), member(M2)]))

    assert tally(flows(lab, 6001, 8)) == {M1: 4, M2: 4}
    assert lab_mod.in_amp(lab, lab_mod.read,
                          '/proc/sys/net/ipv4/ip_forward') == '1'


def test_weights_share_the_flows(lab, engine):
    engine.apply(document(6002, [member(M1, weight=3), member(M2)]))

    assert tally(flows(lab, 6002, 12)) == {M1: 9, M2: 3}


def test_backup_member_only_when_the_others_are_down(lab, engine):
    engine.apply(document(6003, [member(M1), member(M2, backup=True)]))
    assert tally(flows(lab, 6003, 4)) == {M1: 4}

    engine.checker.set(member1='DOWN')
    engine.refresh()  # a barrier: the queued re-render ran before it
    assert tally(flows(lab, 6003, 4)) == {M2: 4}
    status = engine.status('lb1')
    assert status['backends']['pool6003:listener6003']['servers'] == {
        M1: {'status': 'DOWN'}, M2: {'status': 'NO CHECK'}}


def test_down_member_gets_no_new_flows_and_comes_back(lab, engine):
    engine.apply(document(6004, [member(M1), member(M2)]))
    engine.checker.set(member2='DOWN')
    engine.refresh()
    assert tally(flows(lab, 6004, 4)) == {M1: 4}

    engine.checker.set(member2='UP')
    engine.refresh()
    assert tally(flows(lab, 6004, 4)) == {M1: 2, M2: 2}
    assert engine.current('lb1')['health'] == {M1: 'NO CHECK', M2: 'UP'}


def test_source_ip_keeps_a_client_on_one_member(lab, engine):
    engine.apply(document(6005, [member(M1), member(M2)],
                          algorithm='SOURCE_IP'))

    per_source = {source: set(flows(lab, 6005, 4, sources=(source,)))
                  for source in lab_mod.CLIENTS4}
    assert all(len(members) == 1 for members in per_source.values())
    # 16 sources hashed over two members: both are used.
    assert set().union(*per_source.values()) == {M1, M2}


def test_persistence_granularity_keeps_a_prefix_on_one_member(lab, engine):
    engine.apply(document(6006, [member(M1), member(M2)],
                          persistence={'type': 'SOURCE_IP',
                                       'granularity': '255.255.255.0'}))

    assert len(set(flows(lab, 6006, 16, sources=lab_mod.CLIENTS4))) == 1


def test_least_connections_prefers_the_member_with_fewer_flows(lab, engine):
    engine.apply(document(6007, [member(M1), member(M2)],
                          algorithm='LEAST_CONNECTIONS'))
    engine.checker.set(member2='DOWN')
    engine.refresh()
    assert tally(flows(lab, 6007, 6)) == {M1: 6}
    engine.checker.set(member2='UP')

    engine.refresh()
    counters = engine.counters()
    assert counters['members'][M1]['active'] == 6
    assert counters['members'][M2]['active'] == 0
    # The flows expected before the next refresh all fit on member2.
    assert tally(flows(lab, 6007, 4)) == {M2: 4}


def test_ipv6(lab, engine):
    engine.apply(document(6008, [member(M1, six=True),
                                 member(M2, six=True)],
                          addresses=(lab_mod.VIP6,)))

    assert tally(flows(lab, 6008, 4, sources=(lab_mod.CLIENT6,),
                       destination=lab_mod.VIP6)) == {M1: 2, M2: 2}


def test_a_members_port_unreachable_reaches_the_client(lab, engine):
    closed = dict(member(M1), port=lab_mod.MEMBER_PORT + 1)
    engine.apply(document(6016, [closed]))

    # The member's ICMP error is about the translated flow; conntrack
    # translates it back, so the client learns at once instead of waiting.
    # A connected socket is the one the kernel tells of ICMP errors.
    with fl.open_socket(lab.name(lab_mod.CLIENT), socket.AF_INET,
                        socket.SOCK_DGRAM) as sock:
        sock.bind((lab_mod.CLIENTS4[0], 0))
        sock.connect((lab_mod.VIP4, 6016))
        sock.settimeout(fl.PATIENCE)
        sock.send(b'who')
        with pytest.raises(ConnectionRefusedError):
            sock.recv(1024)


def test_flow_limit_drops_and_counts_new_flows(lab, engine):
    engine.apply(document(6009, [member(M1)], flow_limit=3))
    kept = []
    for _ in range(4):
        flow = lab_mod.Flow(lab.name(lab_mod.CLIENT), lab_mod.CLIENTS4[0],
                            lab_mod.VIP4, 6009)
        kept.append(flow.ask(wait=fl.WAIT))
        # Kept open: a closed socket's flow still lives in conntrack.
    assert kept == [M1, M1, M1, None]
    assert engine.counters()['over_flow_limit'] == 1


def test_connection_limit_refuses_and_counts(lab, engine):
    engine.apply(document(6010, [member(M1), member(M2)],
                          connection_limit=2))

    assert flows(lab, 6010, 3, keep='short')[2] is None
    frontend = engine.status('lb1')['frontends']['listener6010']
    answered = frontend.pop('bout')
    # Octavia's listener statistics: the two admitted flows' request
    # datagrams (IPv4 and UDP headers, "who") in, the answers out.
    assert frontend == {'status': 'OPEN', 'scur': 2, 'stot': 2,
                        'bin': 2 * (20 + 8 + len(b'who')), 'ereq': 1}
    assert answered >= 2 * (20 + 8 + 1)


def test_replacing_is_atomic_and_a_refused_one_leaves_the_old(
        lab, engine, monkeypatch):
    engine.apply(document(6011, [member(M1)]))
    before = nft_list(lab)
    build = render.build

    def broken(*args, **kwargs):
        # The kernel refuses the last command: nothing of it may remain.
        return build(*args, **kwargs) + [render.rule('nowhere',
                                                     {'accept': None})]

    monkeypatch.setattr(render, 'build', broken)
    with pytest.raises(l4_engine.L4Error):
        engine.apply(document(6011, [member(M2)]))
    monkeypatch.undo()

    assert nft_list(lab) == before
    assert tally(flows(lab, 6011, 2)) == {M1: 2}
    assert engine.current('lb1')['listeners'][0]['pool']['members'][0][
        'id'] == M1
    with pytest.raises(model.InvalidRequest):
        document(6011, [member(M2, weight=300)])

    engine.apply(document(6011, [member(M2)]))
    assert tally(flows(lab, 6011, 2)) == {M2: 2}
    # Counters carried over: 2 flows before, 2 after.
    assert engine.status('lb1')['frontends']['listener6011']['stot'] == 4


def _tcp_conntrack_delta(lab, port):
    server = fl.TcpServer(lab.name(lab_mod.AMP), lab_mod.VIP4, port)
    try:
        path = '/proc/sys/net/netfilter/nf_conntrack_count'
        before = int(lab_mod.in_amp(lab, lab_mod.read, path))
        assert fl.tcp_request(lab.name(lab_mod.CLIENT), lab_mod.CLIENTS4[1],
                              lab_mod.VIP4, port)
        return int(lab_mod.in_amp(lab, lab_mod.read, path)) - before
    finally:
        server.close()


def test_only_udp_and_sctp_listener_flows_are_tracked(lab, engine):
    engine.apply(document(6012, [member(M1)]))

    assert _tcp_conntrack_delta(lab, 8012) == 0
    assert flows(lab, 6012, 1) == [M1]


def test_delete_removes_the_table(lab, engine):
    engine.apply(document(6013, [member(M1)]))
    assert 'sriov_octavia_l4' in nft_list(lab)

    assert engine.delete('lb1')
    assert not engine.delete('lb1')
    assert 'sriov_octavia_l4' not in nft_list(lab)
    assert engine.current('lb1') is None
    assert _tcp_conntrack_delta(lab, 8013) == 0
    assert flows(lab, 6013, 1, keep='short') == [None]


def test_sctp_ruleset_is_accepted(lab, engine):
    engine.apply(document(6014, [member(M1), member(M2)],
                          protocol='SCTP', connection_limit=5,
                          algorithm='SOURCE_IP'))

    rules = [item['rule'] for item in json.loads(nft_list(lab))['nftables']
             if 'rule' in item]
    dnats = [rule['expr'] for rule in rules if rule['chain'] == 'm_0_0']
    assert dnats[0][1]['match']['right'] == 'sctp'
    assert dnats[0][2]['dnat'] == {'family': 'ip', 'addr': ADDR[M1],
                                   'port': lab_mod.MEMBER_PORT}


def test_document_is_restored_at_start(lab, engine, tmp_path):
    engine.apply(document(6015, [member(M1)]))
    engine.stop()
    netlab.run(lab.name(lab_mod.AMP), ['nft', 'delete', 'table', 'inet',
                                       'sriov_octavia_l4'])
    engine.start()

    assert engine.holds() == 'lb1'
    assert flows(lab, 6015, 1) == [M1]


def test_second_load_balancer_conflicts(lab, engine):
    engine.apply(document(6016, [member(M1)]))
    other = model.parse_document(dict(
        document(6016, [member(M1)]).to_dict(), loadbalancer_id='lb2'))

    with pytest.raises(l4_engine.Conflict):
        engine.apply(other)


def test_forwarding_is_put_back_when_the_table_goes(lab, engine):
    path = '/proc/sys/net/ipv4/ip_forward'
    subprocess.run(['ip', 'netns', 'exec', lab.name(lab_mod.AMP), 'sysctl',
                    '-qw', 'net.ipv4.ip_forward=0'], check=True)
    engine.apply(document(6017, [member(M1)]))
    assert lab_mod.in_amp(lab, lab_mod.read, path) == '1'

    engine.delete('lb1')
    assert lab_mod.in_amp(lab, lab_mod.read, path) == '0'
