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
"""The L4 engine: UDP and SCTP load balancing by nftables (SPEC.md).

All nftables work, the conntrack reads and the sysctl writes run on one
dedicated thread that entered the data namespace: ``setns`` moves only the
calling thread, libnftables binds its netlink socket to the namespace of
the thread creating the context, and ``/proc/sys`` and
``/proc/thread-self/net`` answer for the reading thread's namespace. Being
one thread, it also puts the applies, the health changes and the
LEAST_CONNECTIONS refreshes in one order.

The health checker calls back from its own thread; the engine only queues
the re-render there, so a slow nft never stalls the probes.

The document in force is persisted under the engine's base path and put
back in force by ``start()``; ``stop()`` leaves the rules in the kernel:
flows keep flowing while the agent restarts.
"""

import json
import os
import threading

import nftables
from oslo_config import cfg
from oslo_log import log as logging

from amphora_agent.firewall import state
from amphora_agent.l4 import conntrack
from amphora_agent.l4 import errors
from amphora_agent.l4 import health
from amphora_agent.l4 import model
from amphora_agent.l4 import render
from amphora_agent.l4 import view
from amphora_agent import netns

LOG = logging.getLogger(__name__)

_CONNTRACK_MAX = '/proc/sys/net/netfilter/nf_conntrack_max'
FORWARDING = ('/proc/sys/net/ipv4/ip_forward',
              '/proc/sys/net/ipv6/conf/all/forwarding')
DEFAULT_REFRESH_INTERVAL = 2.0

L4Error = errors.L4Error
Conflict = errors.Conflict
NotStarted = errors.NotStarted


def _configured_refresh_interval():
    try:
        return cfg.CONF.amphora_agent.l4_refresh_interval
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return DEFAULT_REFRESH_INTERVAL


def health_checks(document):
    """The checker's configuration: {pool id: (Monitor, [Target])}."""
    checks = {}
    for listener in document.listeners:
        pool = listener.pool
        if pool is None or pool.monitor is None:
            continue
        targets = [health.Target(
            member.id, member.monitor_address or member.address,
            None if pool.monitor['type'] == 'PING'
            else member.monitor_port or member.port)
            for member in pool.members if member.enabled]
        checks[pool.id] = (health.Monitor(**pool.monitor), targets)
    return checks


class L4Engine:
    """UDP and SCTP load balancing in one network namespace.

    ``namespace``: the data namespace (None: the caller's own);
    ``state_file``: where the document in force is kept (None: nowhere);
    ``refresh_interval``: seconds between two LEAST_CONNECTIONS re-shares
    (None: ``[amphora_agent] l4_refresh_interval``); ``health_factory``:
    ``(namespace, on_change) -> checker`` (see amphora_agent.l4.health).
    """

    def __init__(self, namespace=None, state_file=None,
                 refresh_interval=None, health_factory=None):
        self.namespace = namespace or None
        self.state_file = state_file
        self.refresh_interval = (_configured_refresh_interval()
                                 if refresh_interval is None
                                 else refresh_interval)
        self._health_factory = health_factory or health.HealthChecker
        self._start_lock = threading.Lock()
        self._executor = None
        self._refresher = None
        self._refresher_stop = threading.Event()
        self._checker = None
        # Only touched on the nft thread.
        self._nft = None
        self._health = {}
        self._slots = {}
        self._flows_seen = {}
        self._forwarding_before = None
        # Read from any thread, written on the nft thread.
        self._lock = threading.Lock()
        self._document = None

    # Public interface ----------------------------------------------------

    def start(self):
        with self._start_lock:
            if self._executor:
                return
            executor = netns.executor(self.namespace, 1, 'l4-nft',
                                      setup=self._open_nft)
            self._executor = executor
            try:
                self._checker = self._health_factory(self.namespace,
                                                     self._health_changed)
                executor.submit(self._restore).result()
            except BaseException:
                self._executor = None
                executor.shutdown()
                if self._checker is not None:
                    self._checker.stop()
                raise
            if self.refresh_interval > 0:
                self._refresher_stop.clear()
                self._refresher = threading.Thread(
                    target=self._refresh_periodically, daemon=True,
                    name='l4-refresh')
                self._refresher.start()

    def stop(self):
        with self._start_lock:
            if not self._executor:
                return
            if self._refresher is not None:
                self._refresher_stop.set()
                self._refresher.join()
                self._refresher = None
            if self._checker is not None:
                self._checker.stop()
                self._checker = None
            self._executor.shutdown()
            self._executor = None

    def apply(self, document):
        """Put ``document`` in force (all or nothing) and persist it."""
        return self._call(self._apply, document)

    def delete(self, loadbalancer_id):
        """Forget ``loadbalancer_id``'s document; False if it held none."""
        return self._call(self._delete, loadbalancer_id)

    def holds(self):
        """The load balancer id whose document is in force, or None."""
        with self._lock:
            return self._document and self._document.loadbalancer_id

    def current(self, loadbalancer_id):
        """The document in force with each member's state, or None."""
        with self._lock:
            document = self._document
        if document is None or document.loadbalancer_id != loadbalancer_id:
            return None
        health = self._member_health()
        result = document.to_dict()
        result['health'] = {
            member.id: render.member_state(member, health)
            for _, member in document.members()}
        return result

    def status(self, loadbalancer_id):
        """The L4 listeners in haproxy's status shape, or None."""
        snapshot = self._call(self._snapshot, loadbalancer_id)
        return None if snapshot is None else view.status(*snapshot)

    def counters(self):
        """What the metrics show (view.counters), None with no document."""
        snapshot = self._call(self._snapshot)
        return None if snapshot is None else view.counters(*snapshot)

    def refresh(self):
        """Re-share LEAST_CONNECTIONS slots now (what the timer does)."""
        self._call(self._refresh)

    def info(self):
        return {'l4_loadbalancer_id': self.holds(),
                'l4_refresh_interval': self.refresh_interval,
                'l4_state_file': self.state_file}

    # Thread plumbing -----------------------------------------------------

    def _call(self, function, *args):
        executor = self._executor
        if executor is None:
            raise NotStarted()
        return executor.submit(function, *args).result()

    def _open_nft(self):
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)

    def _health_changed(self):
        # Called on the checker's thread: queue, never wait.
        executor = self._executor
        if executor is not None:
            try:
                executor.submit(self._rechoose)
            except RuntimeError:
                pass  # shutting down

    def _refresh_periodically(self):
        while not self._refresher_stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except NotStarted:
                return
            except Exception:
                LOG.exception('LEAST_CONNECTIONS refresh failed; trying '
                              'again in %s s', self.refresh_interval)

    # Work done on the nft thread -----------------------------------------

    def _nft_run(self, commands):
        rc, output, error = self._nft.cmd(json.dumps({'nftables': commands}))
        if rc != 0:
            raise L4Error(error.strip() or f'nft failed ({rc})')
        return json.loads(output) if output else None

    def _member_health(self):
        checker = self._checker
        return dict(checker.states()) if checker is not None else {}

    def _read_counters(self):
        try:
            listing = self._nft_run([{'list': {'table': {
                'family': render.FAMILY, 'name': render.TABLE}}}])
        except L4Error:
            return {}  # no table yet
        return render.counters_from_listing(listing or {})

    @staticmethod
    def _check_conntrack_room(flow_limit):
        # The kernel's table is shared with nothing else here, but a full
        # one drops every new flow with no counter of ours to show it.
        with open(_CONNTRACK_MAX) as stream:
            room = int(stream.read())
        if room < flow_limit:
            LOG.warning('The flow limit (%d) exceeds the kernel\'s '
                        'conntrack table (net.netfilter.nf_conntrack_max = '
                        '%d): new flows are dropped by the kernel before '
                        'the limit; lower [sriov_amphora] l4_flow_limit or '
                        'raise the sysctl in the amphora image',
                        flow_limit, room)

    def _set_forwarding(self, enabled):
        if enabled and self._forwarding_before is None:
            before = {}
            for path in FORWARDING:
                with open(path) as stream:
                    before[path] = stream.read().strip()
            self._forwarding_before = before
        if not enabled and self._forwarding_before is None:
            return
        for path in FORWARDING:
            value = '1' if enabled else self._forwarding_before[path]
            with open(path, 'w') as stream:
                stream.write(value)
        if not enabled:
            self._forwarding_before = None

    def _save(self, document):
        if not self.state_file:
            return
        if document is None:
            try:
                os.unlink(self.state_file)
            except FileNotFoundError:
                pass
            return
        state.save(self.state_file, {
            'document': document.to_dict(),
            'forwarding_before': self._forwarding_before})

    def _restore(self):
        if not self.state_file:
            return
        try:
            saved = state.load(self.state_file)
            document = (model.parse_document(saved['document'])
                        if saved else None)
        except (ValueError, KeyError, TypeError) as error:
            LOG.error('Ignoring the L4 state in %s: %s', self.state_file,
                      error)
            return
        if document is None:
            return
        self._forwarding_before = saved.get('forwarding_before')
        try:
            self._apply(document)
        except L4Error:
            LOG.exception('Restoring the L4 document of load balancer %s '
                          'from %s failed', document.loadbalancer_id,
                          self.state_file)
        else:
            LOG.info('Restored the L4 document of load balancer %s',
                     document.loadbalancer_id)

    def _apply(self, document):
        with self._lock:
            held = self._document
        if held is not None and held.loadbalancer_id != \
                document.loadbalancer_id:
            raise Conflict(held.loadbalancer_id, document.loadbalancer_id)
        if not document.listeners:
            self._remove_table()
        else:
            # Members kept keep their state; new ones count as UP until
            # their first probe, as the checker reports them.
            health = self._member_health()
            self._nft_run(render.build(document, health,
                                       netns.ephemeral_ports(),
                                       counters=self._read_counters()))
            self._health = health
            self._slots = {}
            self._set_forwarding(True)
            self._check_conntrack_room(document.flow_limit)
        with self._lock:
            self._document = document
        if self._checker is not None:
            self._checker.configure(health_checks(document))
        self._save(document)
        LOG.info('L4 document of load balancer %s in force: %d listeners',
                 document.loadbalancer_id, len(document.listeners))
        return self.current(document.loadbalancer_id)

    def _remove_table(self):
        table = {'table': {'family': render.FAMILY, 'name': render.TABLE}}
        self._nft_run([{'add': table}, {'delete': table}])
        # The sysctl is put back only after the table went: no flow is
        # then left half forwarded.
        self._set_forwarding(False)

    def _delete(self, loadbalancer_id):
        with self._lock:
            document = self._document
        if document is None or document.loadbalancer_id != loadbalancer_id:
            return False
        if self._checker is not None:
            self._checker.configure({})
        self._remove_table()
        with self._lock:
            self._document = None
        self._slots = {}
        self._save(None)
        LOG.info('L4 document of load balancer %s deleted', loadbalancer_id)
        return True

    def _rechoose(self):
        with self._lock:
            document = self._document
        if document is None or not document.listeners:
            return
        health = self._member_health()
        if health == self._health:
            return
        self._nft_run(render.choices(document, health, self._slots))
        self._health = health
        LOG.info('Member states changed, L4 member choice re-rendered: %s',
                 health)

    def _refresh(self):
        with self._lock:
            document = self._document
        if document is None:
            return
        shared = [listener for listener in document.listeners
                  if listener.pool is not None and
                  listener.pool.algorithm == 'LEAST_CONNECTIONS' and
                  not listener.pool.hashed]
        if not shared:
            return
        counters = self._read_counters()
        _, active = conntrack.tally(document, conntrack.flows())
        health = self._member_health()
        slots = {}
        for listener in shared:
            slots[listener.id] = view.least_connections_slots(
                listener, health, active, counters, self._flows_seen)
        if slots != self._slots or health != self._health:
            self._nft_run(render.choices(document, health, slots))
            self._slots = slots
            self._health = health

    def _snapshot(self, loadbalancer_id=None):
        """What view reads; None with no document (or another one's)."""
        with self._lock:
            document = self._document
        if document is None or loadbalancer_id not in (
                None, document.loadbalancer_id):
            return None
        per_listener, per_member = conntrack.tally(document,
                                                   conntrack.flows())
        return (document, self._member_health(), self._read_counters(),
                per_listener, per_member, conntrack.count())
