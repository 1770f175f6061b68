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
"""The L4 engine's health probes deciding real packets between namespaces.

Each probe runs from an amphora namespace against servers in a member
namespace across a veth; the HealthChecker then turns a member DOWN and
UP again end to end. Delays and timeouts are short so the module stays
fast; what must happen is polled for, never slept for.
"""

import collections
import threading
import time

import pytest

from amphora_agent.l4 import health
from amphora_agent.l4 import probes
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import firewall_lab
from tests.functional.amphora_agent import l4_health_lab as hlab

TIMEOUT = 0.2
PATIENCE = 10.0


@pytest.fixture(scope='module')
def lab():
    namespaces = netlab.Lab(hlab.PREFIX)
    try:
        amp, member = hlab.build(namespaces)
        yield amp, member
    finally:
        namespaces.close()


def monitor(kind, **kwargs):
    return health.Monitor(kind, delay=0.2, timeout=TIMEOUT, rise=2, fall=2,
                          **kwargs)


def check(namespace, kind, address, port, **kwargs):
    return probes.probe(namespace, monitor(kind, **kwargs),
                        health.Target('m1', address, port))


def wait_until(condition, patience=PATIENCE):
    deadline = time.monotonic() + patience
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize('address', [hlab.MEMBER4, hlab.MEMBER6])
def test_udp_connect(lab, address):
    amp, member = lab
    server = firewall_lab.UdpEcho(member, address, 7001)
    try:
        # The echo answers: an answer is a success too.
        assert check(amp, 'UDP-CONNECT', address, 7001) == (True,
                                                            'UDP answer')
    finally:
        server.close()
    assert check(amp, 'UDP-CONNECT', address, 7001) == (
        False, 'ICMP port unreachable')
    silent = firewall_lab.udp_receiver(member, address, 7001)
    with silent:
        assert check(amp, 'UDP-CONNECT', address, 7001) == (
            True, 'no ICMP port unreachable within timeout')


@pytest.mark.parametrize('address', [hlab.MEMBER4, hlab.MEMBER6])
def test_tcp(lab, address):
    amp, member = lab
    server = firewall_lab.TcpServer(member, address, 7002)
    try:
        assert check(amp, 'TCP', address, 7002) == (True, 'TCP connected')
    finally:
        server.close()
    assert check(amp, 'TCP', address, 7002) == (False, 'Connection refused')


def test_tcp_timeout(lab):
    amp, _ = lab
    # Nobody on the subnet has this address: no answer, not even a reset.
    started = time.monotonic()
    assert check(amp, 'TCP', '198.51.100.99', 7002) == (False, 'timeout')
    assert time.monotonic() - started < TIMEOUT + 1


def test_http(lab):
    amp, member = lab
    server = hlab.HttpServer(member, hlab.MEMBER4, 7080)
    try:
        assert check(amp, 'HTTP', hlab.MEMBER4, 7080, url_path='/ok') == (
            True, 'HTTP 200')
        assert check(amp, 'HTTP', hlab.MEMBER4, 7080, url_path='/fail',
                     expected_codes='200-204') == (
            False, 'HTTP 503 not in 200-204')
        assert check(amp, 'HTTP', hlab.MEMBER4, 7080, url_path='/fail',
                     expected_codes='200,503')[0]
        # HTTP/1.0 as haproxy sends it for Octavia's 1.0 monitors.
        assert server.server.requests[0][0] == 'GET /ok HTTP/1.0'
        assert check(amp, 'HTTP', hlab.MEMBER4, 7080, url_path='/vhost',
                     http_method='HEAD', http_version=1.1,
                     domain_name=hlab.VHOST) == (True, 'HTTP 200')
        line, headers = server.server.requests[-1]
        assert (line, headers['Host']) == ('HEAD /vhost HTTP/1.1',
                                           hlab.VHOST)
        assert check(amp, 'HTTP', hlab.MEMBER4, 7080, url_path='/vhost',
                     http_version=1.1, domain_name='wrong.example') == (
            False, 'HTTP 404 not in 200')
    finally:
        server.close()
    assert check(amp, 'HTTP', hlab.MEMBER4, 7080) == (False,
                                                      'Connection refused')


def test_http_ipv6(lab):
    amp, member = lab
    server = hlab.HttpServer(member, hlab.MEMBER6, 7081)
    try:
        assert check(amp, 'HTTP', hlab.MEMBER6, 7081, http_version=1.1,
                     expected_codes='200-204') == (True, 'HTTP 200')
        line, headers = server.server.requests[-1]
        assert (line, headers['Host']) == (
            'GET / HTTP/1.1', f'[{hlab.MEMBER6}]:7081')
    finally:
        server.close()


def test_ping(lab):
    amp, member = lab
    assert check(amp, 'PING', hlab.PING4, None) == (True, 'echo reply')
    assert check(amp, 'PING', hlab.MEMBER6, None) == (True, 'echo reply')
    hlab.remove_address(member, 'm0', hlab.PING4, 24)
    try:
        assert check(amp, 'PING', hlab.PING4, None) == (False, 'timeout')
    finally:
        netlab.add_address(member, 'm0', hlab.PING4 + '/24')
    assert wait_until(lambda: check(amp, 'PING', hlab.PING4, None)[0])


@pytest.mark.parametrize('address', [hlab.MEMBER4, hlab.MEMBER6])
def test_sctp_init_ack_then_abort(lab, address):
    amp, member = lab
    responder = hlab.SctpResponder(member, address, 7003, 'ack')
    try:
        assert check(amp, 'SCTP', address, 7003) == (True, 'SCTP INIT-ACK')
        assert wait_until(lambda: len(responder.received) == 2)
    finally:
        responder.close()
    (init, init_flags, init_port, init_tag, init_valid), abort = (
        responder.received)
    assert (init, init_tag, init_valid) == (1, 0, True)
    assert hlab.EPHEMERAL[0] <= init_port <= hlab.EPHEMERAL[1]
    # The ABORT carries the responder's tag from its INIT-ACK, so the T bit
    # (tag reflected) is clear.
    assert abort == (6, 0, init_port, hlab.SctpResponder.TAG, True)


@pytest.mark.parametrize('mode, reason', [('abort', 'SCTP ABORT'),
                                          ('silent', 'timeout')])
def test_sctp_down(lab, mode, reason):
    amp, member = lab
    responder = hlab.SctpResponder(member, hlab.MEMBER4, 7004, mode)
    try:
        assert check(amp, 'SCTP', hlab.MEMBER4, 7004) == (False, reason)
        # No ABORT answers an ABORT or silence.
        assert responder.chunks() == [1]
    finally:
        responder.close()


@pytest.mark.parametrize('address', [hlab.MEMBER4, hlab.MEMBER6])
def test_sctp_member_without_sctp(lab, address):
    amp, _ = lab
    # No responder: the member's kernel has no SCTP and says so by ICMP.
    assert check(amp, 'SCTP', address, 7004) == (
        False, 'ICMP protocol unreachable')


def test_health_checker_down_and_up(lab, monkeypatch):
    amp, member = lab
    results = collections.defaultdict(list)
    changes = []
    real_probe = probes.run_probe

    async def recorded_probe(monitor, target):
        result = await real_probe(monitor, target)
        results[target.member_id].append(result[0])
        return result

    def on_change():
        # Each call sees the results that led to it, and the states after.
        changes.append((threading.current_thread().name,
                        {key: list(value) for key, value in results.items()},
                        checker.states()))

    monkeypatch.setattr(probes, 'run_probe', recorded_probe)
    udp = firewall_lab.UdpEcho(member, hlab.MEMBER4, 7005)
    tcp = firewall_lab.TcpServer(member, hlab.MEMBER6, 7006)
    checker = health.HealthChecker(amp, on_change)
    try:
        checker.configure({
            'pool-udp': (monitor('UDP-CONNECT'),
                         [health.Target('udp', hlab.MEMBER4, 7005)]),
            # A target that times out must not hold the others back.
            'pool-sctp': (monitor('SCTP'),
                          [health.Target('sctp', hlab.MEMBER4, 7007)]),
            'pool-tcp': (monitor('TCP'),
                         [health.Target('tcp', hlab.MEMBER6, 7006)])})
        assert checker.states() == {'udp': 'UP', 'sctp': 'UP', 'tcp': 'UP'}
        assert wait_until(lambda: checker.states()['sctp'] == 'DOWN')
        assert wait_until(lambda: len(results['udp']) >= 2)
        assert checker.states()['udp'] == 'UP'
        udp.close()
        assert wait_until(lambda: checker.states()['udp'] == 'DOWN')
        udp = firewall_lab.UdpEcho(member, hlab.MEMBER4, 7005)
        assert wait_until(lambda: checker.states()['udp'] == 'UP')
        assert checker.states()['tcp'] == 'UP'
    finally:
        checker.stop()
        udp.close()
        tcp.close()
    assert not any(thread.name == 'l4-health'
                   for thread in threading.enumerate())
    # One call per change, on the checker's thread: sctp DOWN at its first
    # failure (haproxy's start), udp DOWN at fall=2 failures in a row after
    # a success, UP again at rise=2 successes in a row.
    assert [name for name, _, _ in changes] == ['l4-health'] * 3
    sctp_down = next(c for c in changes if c[2]['sctp'] == 'DOWN')
    udp_down = next(c for c in changes if c[2]['udp'] == 'DOWN')
    udp_up = changes[-1]
    assert sctp_down[1]['sctp'] == [False]
    assert udp_down[2]['udp'] == 'DOWN'
    assert udp_down[1]['udp'][-3:] == [True, False, False]
    assert udp_up[2]['udp'] == 'UP'
    assert udp_up[1]['udp'][-3:] == [False, True, True]


def test_many_targets_few_threads(lab, monkeypatch):
    # 200 silent UDP targets each take a whole timeout per probe: only
    # concurrent probes keep them all on their 0.2 s schedule, and they
    # must not cost a thread each.
    amp, member = lab
    results = collections.Counter()
    real_probe = probes.run_probe

    async def counted_probe(monitor, target):
        result = await real_probe(monitor, target)
        results[target.member_id] += 1
        return result

    monkeypatch.setattr(probes, 'run_probe', counted_probe)
    silent = [firewall_lab.udp_receiver(member, hlab.MEMBER4, port)
              for port in range(8000, 8200)]
    threads = threading.active_count()
    checker = health.HealthChecker(amp, lambda: None)
    try:
        checker.configure({'pool': (monitor('UDP-CONNECT'), [
            health.Target(f'm{port}', hlab.MEMBER4, port)
            for port in range(8000, 8200)])})
        started = time.monotonic()
        assert wait_until(lambda: len(results) == 200 and
                          min(results.values()) >= 5)
        # Five rounds of 0.2 s; one probe at a time would take 200 s.
        assert time.monotonic() - started < 5
        assert threading.active_count() == threads + 1
        assert set(checker.states().values()) == {'UP'}
    finally:
        checker.stop()
        for sock in silent:
            sock.close()


def test_namespace_missing():
    with pytest.raises(OSError):
        health.HealthChecker(f'{hlab.PREFIX}-absent', lambda: None)
