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
"""The L4 health checker's bookkeeping, with its probes scripted.

The checker runs for real (its thread, its loop, in the test's own
namespace) but ``run_probe`` answers from a script, so the rise/fall
arithmetic, reconfiguration and on_change are tested without packets.
"""

import asyncio
import collections
import errno
import threading
import time

import pytest

from amphora_agent.l4 import health
from amphora_agent.l4 import probes

PATIENCE = 10.0


def monitor(kind='UDP-CONNECT', rise=2, fall=2, delay=0.01, **kwargs):
    return health.Monitor(kind, delay=delay, timeout=delay, rise=rise,
                          fall=fall, **kwargs)


def target(member, address='192.0.2.5', port=53):
    return health.Target(member, address, port)


def wait_until(condition):
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, 'condition not reached'
        time.sleep(0.005)


class Script:
    """Answers each member's probes from its list, then repeats the last.

    A member whose list is empty blocks until ``release`` is set; a
    (member, port) key overrides the member's list for that port.
    """

    def __init__(self, **results):
        self.results = {member: list(values)
                        for member, values in results.items()}
        self.calls = collections.Counter()
        self.release = threading.Event()

    async def __call__(self, monitor, target):
        member = target.member_id
        self.calls[member] += 1
        values = self.results.get((member, target.port),
                                  self.results.get(member))
        if not values:
            while not self.release.is_set():
                await asyncio.sleep(0.005)
            return True, 'released'
        value = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(value, Exception):
            raise value
        return value, 'scripted'


@pytest.fixture
def checker(monkeypatch):
    """A started HealthChecker and its on_change calls; stopped after."""
    calls = []
    made = []

    def make(script):
        monkeypatch.setattr(probes, 'run_probe', script)
        made.append(health.HealthChecker(None, lambda: calls.append(
            dict(made[0].states()))))
        return made[0], calls

    yield make
    for instance in made:
        instance.stop()


@pytest.mark.parametrize('text, codes', [
    ('200', {200}), ('200,202', {200, 202}), (' 200 , 202 ', {200, 202}),
    ('200-204', {200, 201, 202, 203, 204}), ('301-301', {301})])
def test_expected_codes(text, codes):
    assert probes.parse_expected_codes(text) == codes


@pytest.mark.parametrize('text', ['', 'abc', '204-200', '99', '200-',
                                  '600', '200;202'])
def test_expected_codes_invalid(text):
    with pytest.raises(ValueError):
        probes.parse_expected_codes(text)


def test_rise_and_fall_arithmetic():
    check = health._Check('pool', monitor(rise=3, fall=2), target('a'))
    assert check.state == 'UP'
    assert check.observe(True) is False
    # An interrupted streak starts again.
    assert [check.observe(ok) for ok in (False, True, False)] == [False] * 3
    assert check.state == 'UP'
    assert check.observe(False) is True
    assert check.state == 'DOWN'
    assert [check.observe(ok) for ok in (True, True, False, True, True)] == [
        False] * 5
    assert check.observe(True) is True
    assert check.state == 'UP'


def test_fresh_target_down_at_its_first_failure():
    # haproxy's start: assumed UP, but DOWN at once if the first check
    # fails; then rise successes bring it back.
    check = health._Check('pool', monitor(rise=2, fall=3), target('a'))
    assert check.observe(False) is True
    assert check.state == 'DOWN'
    assert [check.observe(ok) for ok in (True, True)] == [False, True]
    assert [check.observe(ok) for ok in (False, False, False)] == [
        False, False, True]


def test_fall_one_and_rise_one():
    check = health._Check('pool', monitor(rise=1, fall=1), target('a'))
    assert [check.observe(ok) for ok in (True, False, False, True, True)] == [
        False, True, False, True, False]


@pytest.mark.parametrize('bad', [
    monitor('ICMP'), monitor('HTTP', expected_codes='2xx'),
    monitor(rise=0), monitor(fall=0), monitor(delay=0)])
def test_invalid_monitor_changes_nothing(checker, bad):
    instance, _ = checker(Script(a=[True]))
    instance.configure({'p': (monitor(), [target('a')])})
    with pytest.raises(ValueError):
        instance.configure({'p': (bad, [target('a')]),
                            'q': (monitor(), [target('b')])})
    assert instance.states() == {'a': 'UP'}


def test_port_required_but_for_ping(checker):
    instance, _ = checker(Script(a=[True]))
    with pytest.raises(ValueError):
        instance.configure({'p': (monitor(), [target('a', port=None)])})
    instance.configure({'p': (monitor('PING'), [target('a', port=None)])})
    assert instance.states() == {'a': 'UP'}


def test_fresh_target_counts_up(checker):
    script = Script(a=[])  # its first probe never ends
    instance, calls = checker(script)
    instance.configure({'p': (monitor(), [target('a')])})
    assert instance.states() == {'a': 'UP'}
    wait_until(lambda: script.calls['a'])
    assert instance.states() == {'a': 'UP'}
    assert calls == []


def test_on_change_fires_exactly_on_changes(checker, caplog):
    script = Script(a=[True, False, False, False, True, True, True])
    instance, calls = checker(script)
    instance.configure({'p': (monitor(), [target('a')])})
    wait_until(lambda: script.calls['a'] >= 10)
    # DOWN at the second failure, UP at the second success, then quiet.
    assert calls == [{'a': 'DOWN'}, {'a': 'UP'}]
    assert ('L4 member a (192.0.2.5 port 53, pool p) is now DOWN by its '
            'UDP-CONNECT check: scripted') in caplog.text


def test_slow_target_does_not_hold_others(checker):
    script = Script(a=[], b=[True])  # a's probe never ends
    instance, _ = checker(script)
    instance.configure({'p': (monitor(), [target('a'), target('b')])})
    wait_until(lambda: script.calls['b'] >= 20)
    assert script.calls['a'] == 1


def test_probe_not_made_counts_nothing():
    # No ephemeral port or descriptor left on the amphora: the member is
    # neither healthier nor sicker for it, and a streak goes on.
    check = health._Check('pool', monitor(fall=2), target('a'))
    assert [check.observe(ok) for ok in (True, False, None, False)] == [
        False, False, False, True]


def test_local_error_is_not_a_result(monkeypatch):
    async def no_port(monitor, target):
        raise BlockingIOError(errno.EAGAIN, 'no port')

    monkeypatch.setitem(probes._PROBES, 'UDP-CONNECT', no_port)
    assert probes.probe(None, monitor(), target('a')) == (
        None, 'not probed: Resource temporarily unavailable')


def test_probe_exception_is_a_failure(checker):
    instance, calls = checker(Script(a=[RuntimeError('bug')]))
    instance.configure({'p': (monitor(fall=1), [target('a')])})
    wait_until(lambda: calls)
    assert instance.states() == {'a': 'DOWN'}


def test_configure_keeps_kept_targets(checker):
    script = Script(a=[False], b=[True], c=[True])
    instance, calls = checker(script)
    mon = monitor()
    instance.configure({'p': (mon, [target('a'), target('b')])})
    wait_until(lambda: instance.states()['a'] == 'DOWN')
    kept = dict(instance._checks)
    instance.configure({'p': (mon, [target('a'), target('c')])})
    # a keeps its state and its running task; b is gone; c starts UP.
    assert instance.states() == {'a': 'DOWN', 'c': 'UP'}
    key = ('p', 'a', mon, '192.0.2.5', 53)
    assert instance._checks[key] is kept[key]
    assert not kept[key].task.done()
    removed = kept[('p', 'b', mon, '192.0.2.5', 53)]
    wait_until(lambda: removed.task.done())
    assert calls == [{'a': 'DOWN', 'b': 'UP'}]


@pytest.mark.parametrize('change', [
    {'port': 54}, {'address': '192.0.2.6'}, {'pool': 'q'}, {'delay': 0.02}])
def test_changed_target_starts_afresh(checker, monkeypatch, change):
    instance, _ = checker(Script(a=[False]))
    instance.configure({'p': (monitor(), [target('a')])})
    wait_until(lambda: instance.states()['a'] == 'DOWN')
    script = Script(a=[])  # the new check's probe never ends
    monkeypatch.setattr(probes, 'run_probe', script)
    instance.configure({change.get('pool', 'p'): (
        monitor(delay=change.get('delay', 0.01)),
        [target('a', change.get('address', '192.0.2.5'),
                change.get('port', 53))])})
    assert instance.states() == {'a': 'UP'}


def test_result_of_removed_target_is_dropped(checker):
    script = Script(a=[])
    instance, calls = checker(script)
    instance.configure({'p': (monitor(fall=1), [target('a')])})
    wait_until(lambda: script.calls['a'])
    instance.configure({})
    script.results['a'] = [False]
    script.release.set()
    time.sleep(0.05)  # let a stray result arrive, if one could
    assert instance.states() == {}
    assert calls == []


def test_member_down_when_any_check_is_down(checker):
    script = Script(a=[False], b=[True])
    script.results[('a', 80)] = [True]
    instance, _ = checker(script)
    instance.configure({'p': (monitor(), [target('a', port=53),
                                          target('b')]),
                        'q': (monitor(kind='TCP'), [target('a', port=80)])})
    wait_until(lambda: instance.states()['a'] == 'DOWN')
    assert instance.states()['b'] == 'UP'
    assert {check.state for check in instance._checks.values()
            if check.target.member_id == 'a'} == {'UP', 'DOWN'}


def test_stop(checker):
    instance, _ = checker(Script(a=[True]))
    instance.configure({'p': (monitor(), [target('a')])})
    instance.stop()
    instance.stop()
    assert not instance._thread.is_alive()
    assert instance.states() == {}
    with pytest.raises(RuntimeError):
        instance.configure({})


def test_udp_connect_silence_is_success_timeout_otherwise(monkeypatch):
    async def silent(monitor, target):
        await asyncio.sleep(10)

    monkeypatch.setitem(probes._PROBES, 'UDP-CONNECT', silent)
    monkeypatch.setitem(probes._PROBES, 'TCP', silent)
    assert probes.probe(None, monitor(), target('a'))[0] is True
    assert probes.probe(None, monitor('TCP'), target('a')) == (False,
                                                               'timeout')
