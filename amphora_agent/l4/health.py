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
"""Health checks of the L4 engine's members: their schedule and states.

The nftables balancer has no haproxy or keepalived to watch its members,
so the agent probes them itself and the engine leaves DOWN members out of
its maps. One thread enters the data namespace and runs an asyncio loop
that probes each target every delay (the probes are
amphora_agent.l4.probes) and turns its results into UP/DOWN by rise and
fall, as haproxy does.
"""

import asyncio
import contextlib
import dataclasses
import threading

from oslo_log import log as logging

from amphora_agent.l4 import probes
from amphora_agent import netns

LOG = logging.getLogger(__name__)

# Probes in flight at once: each holds a socket (a file descriptor) for up
# to its timeout. More wait for a slot, and their timeout counts from it.
MAX_PROBES = 256
UP = 'UP'
DOWN = 'DOWN'


@dataclasses.dataclass(frozen=True)
class Monitor:
    type: str
    delay: float
    timeout: float
    rise: int
    fall: int
    http_method: str = 'GET'
    url_path: str = '/'
    expected_codes: str = '200'
    domain_name: str | None = None
    http_version: float = 1.0


@dataclasses.dataclass(frozen=True)
class Target:
    member_id: str
    address: str
    port: int | None


def validate(monitor):
    """Raise ValueError for what no probe could run; before any change."""
    if monitor.type not in probes.TYPES:
        raise ValueError(f'unsupported monitor type {monitor.type!r}')
    if monitor.type == 'HTTP':
        probes.parse_expected_codes(monitor.expected_codes)
    if monitor.delay <= 0 or monitor.timeout <= 0:
        raise ValueError('delay and timeout must be positive')
    if monitor.rise < 1 or monitor.fall < 1:
        raise ValueError('rise and fall must be at least 1')


def _key(pool_id, monitor, target):
    """What identifies a check: a change of any part starts it afresh."""
    return (pool_id, target.member_id, monitor, target.address, target.port)


class _Check:
    """One target of one pool: its state, its streak and its task.

    As haproxy does with a new server (health = rise), a target is assumed
    UP until its first result, and goes DOWN at once if that one fails,
    so a member that never answered does not take flows for fall x delay
    seconds first.
    From its first success on, fall failures in a row make it DOWN.
    """

    def __init__(self, pool_id, monitor, target):
        self.pool_id = pool_id
        self.monitor = monitor
        self.target = target
        self.state = UP
        self.fresh = True
        self.streak = 0  # results in a row that contradict the state
        self.task = None

    def observe(self, ok):
        """Count one result; True when it changed the state."""
        if ok is None:
            return False
        if self.fresh:
            self.fresh = False
            if not ok:
                self.state = DOWN
                return True
        if ok == (self.state == UP):
            self.streak = 0
            return False
        self.streak += 1
        if self.streak < (self.monitor.rise if ok else self.monitor.fall):
            return False
        self.state, self.streak = (UP if ok else DOWN), 0
        return True


class HealthChecker:
    """Probes members from ``namespace`` and reports their UP/DOWN states.

    ``on_change()`` runs on the checker's thread, between probes: it must
    return quickly (e.g. hand the work to the engine's own thread).
    """

    def __init__(self, namespace, on_change):
        self.namespace = namespace
        self._on_change = on_change
        self._lock = threading.Lock()
        self._checks = {}
        self._loop = None
        self._stopped = False
        ready = threading.Event()
        failure = []
        self._thread = threading.Thread(
            target=self._main, args=(ready, failure), daemon=True,
            name='l4-health')
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]

    def configure(self, checks):
        """Replace every check by ``{pool_id: (Monitor, [Target, ...])}``."""
        wanted = {}
        for pool_id, (monitor, targets) in checks.items():
            validate(monitor)
            for target in targets:
                if target.port is None and monitor.type != 'PING':
                    raise ValueError(f'member {target.member_id}: a '
                                     f'{monitor.type} probe needs a port')
                wanted[_key(pool_id, monitor, target)] = (pool_id, monitor,
                                                          target)
        with self._lock:
            if self._stopped:
                raise RuntimeError('health checker stopped')
            old = self._checks
            self._checks = {key: old.get(key) or _Check(*args)
                            for key, args in wanted.items()}
            removed = [check for key, check in old.items()
                       if key not in self._checks]
            self._loop.call_soon_threadsafe(self._schedule, removed)

    def states(self):
        """{member_id: 'UP'|'DOWN'}; DOWN if any of its checks says so."""
        result = {}
        with self._lock:
            for check in self._checks.values():
                member = check.target.member_id
                if result.get(member) != DOWN:
                    result[member] = check.state
        return result

    def stop(self):
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._checks = {}
            self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # On the checker's thread ---------------------------------------------

    def _main(self, ready, failure):
        try:
            netns.enter(self.namespace)
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            executor = probes.namespace_executor(self.namespace)
            loop.set_default_executor(executor)
        except BaseException as error:
            failure.append(error)
            ready.set()
            return
        self._loop = loop
        self._slots = asyncio.Semaphore(MAX_PROBES)
        ready.set()
        try:
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(
                asyncio.gather(*tasks, return_exceptions=True))
        finally:
            # An HTTP probe still running ends within its timeout; its
            # result then finds the loop closed and is dropped.
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()

    def _schedule(self, removed):
        for check in removed:
            if check.task:
                check.task.cancel()
        with self._lock:
            new = [c for c in self._checks.values() if c.task is None]
        # First probes spread over one delay, not all at once.
        for index, check in enumerate(new):
            check.task = self._loop.create_task(
                self._run(check, check.monitor.delay * index / len(new)))

    async def _run(self, check, offset):
        loop = asyncio.get_running_loop()
        await asyncio.sleep(offset)
        while True:
            started = loop.time()
            # HTTP probes are bounded by their executor's threads instead;
            # queued there, they must not take the other probes' slots.
            slot = (contextlib.nullcontext() if check.monitor.type == 'HTTP'
                    else self._slots)
            try:
                async with slot:
                    ok, reason = await probes.run_probe(check.monitor,
                                                        check.target)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                LOG.exception('L4 health probe of member %s failed',
                              check.target.member_id)
                ok, reason = False, repr(error)
            self._record(check, ok, reason)
            await asyncio.sleep(
                max(0.0, started + check.monitor.delay - loop.time()))

    def _record(self, check, ok, reason):
        if ok is None:
            LOG.warning('L4 member %s (%s port %s): %s',
                        check.target.member_id, check.target.address,
                        check.target.port, reason)
        with self._lock:
            key = _key(check.pool_id, check.monitor, check.target)
            # A result of a check removed while it probed counts no more.
            if self._checks.get(key) is not check or not check.observe(ok):
                return
            state = check.state
        (LOG.info if state == UP else LOG.warning)(
            'L4 member %(member)s (%(address)s port %(port)s, pool '
            '%(pool)s) is now %(state)s by its %(type)s check: %(reason)s',
            {'member': check.target.member_id,
             'address': check.target.address, 'port': check.target.port,
             'pool': check.pool_id, 'state': state,
             'type': check.monitor.type, 'reason': reason})
        try:
            self._on_change()
        except Exception:
            LOG.exception('L4 health on_change callback failed')
