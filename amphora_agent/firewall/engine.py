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
"""The firewall engine: puts a SecurityGroup in force and keeps it there.

All nftables and netlink work runs on one dedicated thread that has entered
the configured network namespace. ``setns(CLONE_NEWNET)`` only moves the
calling thread, and libnftables binds its netlink socket to the namespace of
the thread creating the context, so the context, the rtnetlink socket used
for scans and the read of ``ip_local_port_range`` (a per-namespace sysctl)
all live on that thread. Being one thread, it also serialises the applies:
callers are served in the order they arrive, so the last one wins and no
apply ever sees another one half done.

Link and address changes (a VF hot-plugged, a VIP address added) trigger a
re-scan on the same thread; when the set of filtered interfaces or their
roles changed, the state in force is rendered again for the new set.

Every ``verify_interval`` seconds the table is checked for drift and
repaired (amphora_agent.firewall.repair).

``stop()`` leaves the rules in the kernel: the firewall outlives the agent.
"""

import concurrent.futures
import json
import threading

import nftables
from oslo_config import cfg
from oslo_log import log as logging
from pyroute2 import IPRoute

from amphora_agent.firewall import addresses
from amphora_agent.firewall import bulk
from amphora_agent.firewall import errors
from amphora_agent.firewall import links
from amphora_agent.firewall import model
from amphora_agent.firewall import render
from amphora_agent.firewall import repair
from amphora_agent.firewall import state
from amphora_agent import netns

LOG = logging.getLogger(__name__)

# The drop-all base: essentials only, on every VF.
BASE = repair.BASE
_PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'
INLINE_CIDRS = state.INLINE_CIDRS

# Named here for the engine's callers.
FirewallError = errors.FirewallError
NotStarted = errors.NotStarted


def _configured_verify_interval():
    """[amphora_agent] firewall_verify_interval, 0 where not registered.

    The agent registers it before it builds its firewall; a process that
    did not (a test, a tool) gets no verification unless it asks.
    """
    try:
        return cfg.CONF.amphora_agent.firewall_verify_interval
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return 0


class Firewall(repair.DriftRepair):
    """The firewall of one network namespace.

    ``namespace``: the named network namespace holding the VFs (None or ''
    for the caller's own); ``state_file``: where the state in force is
    persisted (None: not persisted); ``vf_link_kinds``: link kinds treated
    as VFs in addition to real ones (test beds emulate VFs with veths);
    ``verify_interval``: seconds between two checks for drift, 0 for none,
    None for ``[amphora_agent] firewall_verify_interval``.
    """

    def __init__(self, namespace=None, state_file=None, vf_link_kinds=(),
                 verify_interval=None):
        self.namespace = namespace or None
        self.state_file = state_file
        self.vf_link_kinds = frozenset(vf_link_kinds)
        self.verify_interval = (_configured_verify_interval()
                                if verify_interval is None
                                else verify_interval)
        self._start_lock = threading.Lock()
        self._executor = None
        self._watcher = None
        self._verifier = None
        self._verifier_stop = threading.Event()
        # Only touched on the nft thread.
        self._nft = None
        self._ipr = None
        self._installed = render.Installed()
        self._vip_ifnames = set()
        self._restored = False
        # (security group, roles, ephemeral ports, its canonical Ruleset):
        # rendered again only when one of the three changed.
        self._wanted = None
        # Read by current() from any thread, written on the nft thread.
        self._state_lock = threading.Lock()
        self._sg = None
        self._sg_dict = None
        self._roles = {}
        self._generation = 0
        self._applied_at = None
        self._repairs = {'count': 0, 'failed': 0, 'last_repair_at': None,
                         'last_difference': None}
        self._verified_at = None
        self._cidr_files = state.CidrFiles()

    # Public interface ----------------------------------------------------

    def start(self):
        """Restore the persisted state (or the base) and watch the links."""
        with self._start_lock:
            if self._executor:
                return
            executor = netns.executor(self.namespace, 1, 'firewall-nft',
                                      setup=self._open_thread_resources)
            self._executor = executor
            # Watch first, then scan: a change during the restore is then
            # seen by the restore's scan or reported afterwards.
            watcher = links.Watcher(self.namespace, self._links_changed)
            try:
                watcher.start()
                executor.submit(self._restore).result()
            except BaseException:
                self._executor = None
                watcher.stop()
                self._shut_down(executor)
                raise
            self._watcher = watcher
            if self.verify_interval > 0:
                self._verifier_stop.clear()
                self._verifier = threading.Thread(
                    target=self._verify_periodically, daemon=True,
                    name='firewall-verify')
                self._verifier.start()

    def apply(self, sg):
        """Put ``sg`` in force, persist it and return current()."""
        return self._call(self._apply, sg)

    def refresh(self):
        """Filter the interfaces present now before returning.

        Link events reach the engine asynchronously; a caller about to bring
        a freshly moved VF up calls this so that the VF is never up without
        its chain.
        """
        self._call(self._refresh)

    def current(self):
        with self._state_lock:
            return {'security_group': (None if self._sg_dict is None
                                       else dict(self._sg_dict)),
                    'interfaces': dict(self._roles),
                    'generation': self._generation,
                    'applied_at': self._applied_at}

    def counters(self):
        """The counters' values, and the drift repairs (see repairs())."""
        result = self._call(self._read_counters)
        result['repairs'] = self.repairs()
        return result

    def repairs(self):
        """How often drift was found and put right, and the last one.

        ``count`` repairs done, ``failed`` ones that left a difference,
        ``last_repair_at`` and ``last_difference`` (what differed) of the
        last one, ``last_verified_at`` of the last check and the
        ``verify_interval`` in seconds (0: no periodic check).
        """
        with self._state_lock:
            return dict(self._repairs, last_verified_at=self._verified_at,
                        verify_interval=self.verify_interval)

    def verify(self):
        """Check for drift now and repair it; the differences found.

        What the periodic check does, for a caller that cannot wait.
        """
        return self._call(self._verify)

    def stop(self):
        with self._start_lock:
            if not self._executor:
                return
            if self._verifier is not None:
                self._verifier_stop.set()
                self._verifier.join()
                self._verifier = None
            self._watcher.stop()
            self._shut_down(self._executor)
            self._executor = None
            self._watcher = None

    # Thread plumbing -----------------------------------------------------

    def _call(self, function, *args):
        executor = self._executor
        if executor is None:
            raise NotStarted()
        return executor.submit(function, *args).result()

    def _open_thread_resources(self):
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._ipr = IPRoute()

    def _shut_down(self, executor):
        try:
            executor.submit(self._close_thread_resources).result()
        except concurrent.futures.BrokenExecutor:
            # The thread never entered the namespace: nothing to close.
            pass
        executor.shutdown()

    def _close_thread_resources(self):
        self._ipr.close()

    def _links_changed(self):
        executor = self._executor
        if executor is not None:
            executor.submit(self._refresh)

    # Work done on the nft thread -----------------------------------------

    def _nft_run(self, commands, consume=False, decode=json.loads):
        """Run one transaction of nftables JSON commands.

        This is what ``Nftables.json_cmd`` does (serialise, run through
        libnftables' JSON parser, decode the output), except that with
        ``consume`` the commands are dropped once serialised: at 50k CIDRs
        in one listener their Python objects hold ~20 MB that libnftables
        would otherwise have to find on top of its own ~60 MB. ``decode``
        turns the output text into what is returned.
        """
        if not commands:
            return None
        text = json.dumps({'nftables': commands})
        if consume:
            commands.clear()
        rc, output, error = self._nft.cmd(text)
        del text
        if rc != 0:
            raise FirewallError(error.strip() or f'nft failed ({rc})')
        return decode(output) if output else None

    def _list_table(self):
        """Our table's objects (counters with their values), no elements.

        Measured with nft 1.0.6 and 50k elements in the table: ``list
        table``, ``list counters`` and even ``list counter`` fetch every set
        element (150-200 ms, +30 MB RSS), while a terse ``list ruleset``
        skips them (3 ms). Only the objects of our table are returned.
        """
        self._nft.set_terse_output(True)
        try:
            output = self._nft_run([{'list': {'ruleset': None}}])
        finally:
            self._nft.set_terse_output(False)
        ours = []
        for item in output['nftables']:
            kind, body = next(iter(item.items()))
            table = body.get('name') if kind == 'table' else body.get('table')
            if body.get('family') == render.FAMILY and table == render.TABLE:
                ours.append(item)
        return ours

    def _read_installed(self):
        return render.installed_from_listing(self._list_table())

    @staticmethod
    def _ephemeral_ports():
        with open(_PORT_RANGE) as stream:
            first, last = stream.read().split()
        return int(first), int(last)

    def _roles_for(self, found):
        return {ifname: (render.ROLE_VIP if ifname in self._vip_ifnames
                         else render.ROLE_MEMBER)
                for ifname, link in found.items()
                if link.is_vf or ifname in self._vip_ifnames}

    def _render(self, sg, roles, repair=False):
        """Put ``sg`` in force on ``roles``; on failure the old one stays.

        A failure may come from a stale picture of the table (someone
        flushed it): then the table is read again and the render retried
        once. ``repair``: see render.build.
        """
        options = {'repair': True} if repair else {}
        for attempt in (1, 2):
            with bulk.gc_paused():
                plan = render.build(sg, roles, self._ephemeral_ports(),
                                    self._installed, **options)
            prepared = 0
            try:
                for commands in plan.prepare:
                    self._nft_run(commands, consume=True)
                    prepared += 1
                self._nft_run(plan.switch)
            except FirewallError:
                self._undo(plan.rollback[:prepared])
                self._installed = self._read_installed()
                if attempt == 2:
                    raise
                LOG.warning('Applying the ruleset failed; re-read the table '
                            'and retrying once', exc_info=True)
                continue
            self._installed = plan.result
            try:
                self._nft_run(plan.cleanup)
            except FirewallError:
                # The new generation is in force; the old one is unused and
                # is found and deleted by the next render.
                LOG.exception('Deleting the previous generation failed')
                self._installed = self._read_installed()
            return

    def _undo(self, rollbacks):
        commands = [command for undo in reversed(rollbacks)
                    for command in undo]
        try:
            self._nft_run(commands)
        except FirewallError:
            LOG.exception('Removing the unused new generation failed; the '
                          'next apply removes it')

    def _restore(self):
        self._installed = self._read_installed()
        sg = None
        try:
            document = state.load(self.state_file) if self.state_file else None
            if document and document.get('security_group') is not None:
                sg = model.parse_security_group(document['security_group'])
        except (ValueError, model.InvalidRequest) as error:
            LOG.error('Ignoring the firewall state in %s (%s); the drop-all '
                      'base is in force until rules arrive',
                      self.state_file, error)
            document = None
        found = links.scan(self._ipr, self.vf_link_kinds)
        if sg is not None:
            wanted = set(sg.vip_interfaces)
            self._vip_ifnames = {ifname for ifname, link in found.items()
                                 if link.addresses & wanted}
        roles = self._roles_for(found)
        try:
            self._render(sg or BASE, roles)
        except FirewallError:
            if sg is None:
                raise
            LOG.exception('Restoring the firewall state from %s failed; the '
                          'drop-all base is in force until rules arrive',
                          self.state_file)
            sg = None
            self._vip_ifnames = set()
            roles = self._roles_for(found)
            self._render(BASE, roles)
        with self._state_lock:
            self._sg = sg
            self._sg_dict = sg.to_dict() if sg else None
            self._roles = roles
            self._generation = document.get('generation', 0) if sg else 0
            self._applied_at = (document.get('applied_at') if sg
                                else repair.now())
            saved = (document or {}).get('repairs')
            if isinstance(saved, dict):
                self._repairs.update(
                    (key, saved[key]) for key in self._repairs
                    if key in saved)
        self._restored = True
        LOG.info('Firewall started: %s on %s',
                 'restored state' if sg else 'drop-all base', roles)

    def _apply(self, sg):
        found = links.scan(self._ipr, self.vf_link_kinds)
        vip_ifnames = set()
        for index, address in enumerate(sg.vip_interfaces):
            owners = [ifname for ifname, link in found.items()
                      if address in link.addresses]
            if not owners:
                raise model.InvalidRequest(
                    f'vip_interfaces[{index}]',
                    f'{addresses.format_address(*address)} is on no '
                    'interface')
            vip_ifnames.update(owners)
        previous_vips = self._vip_ifnames
        self._vip_ifnames = vip_ifnames
        roles = self._roles_for(found)
        try:
            self._render(sg, roles)
        except BaseException:
            self._vip_ifnames = previous_vips
            raise
        sg_dict = sg.to_dict()
        with self._state_lock:
            self._sg = sg
            self._sg_dict = sg_dict
            self._roles = roles
            self._generation += 1
            self._applied_at = repair.now()
            document = self._document()
        self._save(document)
        LOG.info('Firewall generation %d in force on %s', self._generation,
                 roles)
        return self.current()

    def _document(self):
        """The state file's content and the CIDR file it refers to.

        See state.CidrFiles. The caller holds the state lock.
        """
        document = {'security_group': self._sg_dict,
                    'generation': self._generation,
                    'applied_at': self._applied_at,
                    'repairs': dict(self._repairs)}
        blobs = self._cidr_files.split(self._sg, document)
        return document, blobs

    def _save(self, document):
        """Persist ``document`` as _document() returned it, if configured."""
        if self.state_file:
            state.save(self.state_file, *document)

    def _refresh(self):
        if not self._restored:
            return
        found = links.scan(self._ipr, self.vf_link_kinds)
        sg = self._sg
        # A VIP interface stays one while it exists, even when keepalived
        # moves the VIP away; a new one is recognised by its address.
        self._vip_ifnames &= set(found)
        if sg is not None:
            wanted = set(sg.vip_interfaces)
            self._vip_ifnames |= {ifname for ifname, link in found.items()
                                  if link.addresses & wanted}
        roles = self._roles_for(found)
        if roles == self._roles:
            return
        try:
            self._render(sg or BASE, roles)
        except FirewallError:
            LOG.exception('Filtering the changed interfaces %s failed',
                          roles)
            return
        with self._state_lock:
            self._roles = roles
        LOG.info('Interfaces changed, firewall now on %s', roles)

    def _read_counters(self):
        result = {'interfaces': {}, 'listeners': {}}
        for item in self._list_table():
            counter = item.get('counter')
            if not counter:
                continue
            name = counter['name']
            value = {'packets': counter['packets'],
                     'bytes': counter['bytes']}
            if name in render.SHARED_COUNTERS:
                result[name] = {'accepted': value}
            elif name.startswith(render.DROP_COUNTER_PREFIX):
                ifname = render.decode_ifname(
                    name[len(render.DROP_COUNTER_PREFIX):])
                result['interfaces'][ifname] = {'dropped': value}
            elif name.startswith(render.LISTENER_COUNTER_PREFIX):
                protocol, port, verdict = name[
                    len(render.LISTENER_COUNTER_PREFIX):].split('_')
                result['listeners'].setdefault(
                    f'{protocol}:{port}', {})[verdict] = value
        return result
