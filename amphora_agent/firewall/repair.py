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
"""Drift: the firewall table checked against the state in force, and repaired.

Every ``verify_interval`` seconds the table is read back and compared, in
canonical form (``drift``), with what the renderer makes of the state in
force. A difference, someone's ``nft`` by hand included, is logged, put
right by rendering the state again (hitless, as an apply is) or, when that
is not enough (objects the renderer does not know, a base chain whose hook
was changed), by re-creating the whole table in one transaction, counters
carried over; and counted. The count survives restarts in the state file.

The engine's part (amphora_agent.firewall.engine.Firewall inherits it):
these methods run on its nft thread, as every nftables call does.
"""

import datetime

from oslo_log import log as logging

from amphora_agent.firewall import bulk
from amphora_agent.firewall import drift
from amphora_agent.firewall import errors
from amphora_agent.firewall import model
from amphora_agent.firewall import render

LOG = logging.getLogger(__name__)

# The drop-all base: essentials only, on every VF.
BASE = model.SecurityGroup(vip_interfaces=(), members=())


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class DriftRepair(object):

    def _verify_periodically(self):
        while not self._verifier_stop.wait(self.verify_interval):
            try:
                self.verify()
            except errors.NotStarted:
                return
            except Exception:
                LOG.exception('Checking the firewall for drift failed; '
                              'trying again in %s s', self.verify_interval)

    def _list_whole_table(self):
        """Our table with every set element, [] when there is none.

        Unlike ``_list_table`` this fetches the elements: what the check
        compares. Measured at 50k elements: see doc/source/agent.rst.
        """
        try:
            return self._nft_run([{'list': {'table': {
                'family': render.FAMILY, 'name': render.TABLE}}}],
                decode=drift.parse_listing)
        except errors.FirewallError as error:
            if errors.NO_SUCH_TABLE in str(error):
                return []
            raise

    def _wanted_ruleset(self, ephemeral_ports):
        """The canonical form of what the state in force renders to.

        Kept until the state, the interfaces or the ephemeral port range
        change: rendering 50k elements again every check costs more than
        keeping their canonical form.
        """
        sg = self._sg or BASE
        cached = self._wanted
        if (cached is not None and cached[0] is sg and
                cached[1] == self._roles and cached[2] == ephemeral_ports):
            return cached[3]
        self._wanted = None
        with bulk.gc_paused():
            plan = render.build(sg, self._roles, ephemeral_ports,
                                render.Installed())
            wanted = drift.of_plan(plan)
        del plan
        self._wanted = (sg, dict(self._roles), ephemeral_ports, wanted)
        return wanted

    def _differences(self):
        ephemeral_ports = self._ephemeral_ports()
        wanted = self._wanted_ruleset(ephemeral_ports)
        with bulk.gc_paused():
            live = drift.canonical(self._list_whole_table(),
                                   self._installed.serial)
        return drift.differences(wanted, live)

    def _verify(self):
        if not self._restored:
            return []
        # A link change not handled yet would look like drift.
        self._refresh()
        found = self._differences()
        with self._state_lock:
            self._verified_at = now()
        if not found:
            return []
        message = drift.summary(found)
        LOG.warning('The firewall table differs from the state in force '
                    '(changed by hand?), putting it right: %s', message)
        remaining = self._repair()
        with self._state_lock:
            if remaining:
                self._repairs['failed'] += 1
            else:
                self._repairs['count'] += 1
            self._repairs['last_repair_at'] = now()
            self._repairs['last_difference'] = message
            count = self._repairs['count']
            document = self._document()
        self._save(document)
        if remaining:
            LOG.error('The firewall table still differs from the state in '
                      'force after the repair: %s', drift.summary(remaining))
        else:
            LOG.warning('Firewall repaired (%d repairs counted)', count)
        return found

    def _repair(self):
        """Render the state in force again; the differences left."""
        sg = self._sg or BASE
        self._installed = self._read_installed()
        try:
            self._render(sg, self._roles, repair=True)
            remaining = self._differences()
        except errors.FirewallError as error:
            remaining = [f'rendering the state again failed: {error}']
        if not remaining:
            return []
        LOG.warning('Rendering the state again left differences (%s); '
                    're-creating the whole table', drift.summary(remaining))
        try:
            self._rebuild(sg)
        except errors.FirewallError as error:
            LOG.exception('Re-creating the firewall table failed')
            self._installed = self._read_installed()
            return [f're-creating the table failed: {error}']
        return self._differences()

    def _rebuild(self, sg):
        """Replace the whole table in one transaction, counts kept.

        Unlike a render, its rules look up sets created in the same
        transaction, which may drop a few packets during the commit: only
        for a table changed in ways a render cannot undo.
        """
        values = {}
        for item in self._list_table():
            counter = item.get('counter')
            if counter:
                values[counter['name']] = {'packets': counter['packets'],
                                           'bytes': counter['bytes']}
        with bulk.gc_paused():
            plan = render.build(sg, self._roles, self._ephemeral_ports(),
                                render.Installed(), counter_values=values)
        table = {'table': {'family': render.FAMILY, 'name': render.TABLE}}
        # "add" first: deleting a table that is gone would fail.
        commands = [{'add': table}, {'delete': table}]
        for step in plan.prepare:
            commands.extend(step)
        commands.extend(plan.switch)
        self._nft_run(commands, consume=True)
        self._installed = plan.result
