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
"""Orphans removed, and the amphorae's firewall repairs reported.

Every ``[house_keeping] cleanup_interval`` seconds (Octavia's own option
for its database cleanup) the worker lists this provider's servers (by
their metadata), server groups, security groups, VRRP and member ports
(by their names, ``sriov_octavia.naming``) and asks Octavia's database, in
one query, which of their load balancers it still has. What belongs to a
load balancer Octavia has no more (no row, or DELETED) is an orphan: a
delete flow that failed half way, a revert that could not reach Nova, a
create whose job outlived octavia-api's transaction. It is deleted once it
has existed for ``[sriov_worker] orphan_grace_period`` seconds (by the
cloud's ``created_at``, where the resource has one) and this worker has
seen it orphaned for as long: a load balancer being created has ports and
servers before octavia-api commits its row, and neither a young resource
nor one of a load balancer Octavia has is ever touched. Each removal is
logged with its kind, id, name and load balancer. Not here: VIP ports,
which live in the user's project marked as Octavia's own amphora provider
marks its VIP ports, so an orphan of ours cannot be told from theirs.

The same round asks each amphora's agent for its firewall counters: an
agent that found its nftables table changed (by hand?) and repaired it
says so there, and this loop logs a warning for each new repair, so the
operator reads the answer to "did anyone touch the VF firewall?" in one
place. (The agent repairs on its own, every [amphora_agent]
firewall_verify_interval seconds.)

With the health group (sriov_octavia.worker.membership) each worker takes
the load balancers the group gives it, as the health loop does; without
one, a worker takes them all. Deletions tolerate 404: a delete flow or
another worker may have been quicker.
"""

import collections
import datetime
import re
import time

from openstack import exceptions as os_exceptions
from oslo_log import log as logging

from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import naming
from sriov_octavia import octavia_db
from sriov_octavia.worker import periodic

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

SERVER = 'server'
SERVER_GROUP = 'server group'
SECURITY_GROUP = 'security group'
VRRP_PORT = 'VRRP port'
MEMBER_PORT = 'member port'
# Deleted in this order: a port goes after the server it is plugged into
# (Nova detaches it), a security group after the ports it is on (Neutron
# refuses it before), a server group once Nova took its servers out.
KINDS = (SERVER, VRRP_PORT, MEMBER_PORT, SECURITY_GROUP, SERVER_GROUP)

_UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
_ROLES = '|'.join(role.lower() for role in naming.ALL_ROLES)


def _pattern(name, **parts):
    """A regular expression for the names ``naming`` gives.

    ``name`` is built by a naming function from ``{part}`` placeholders,
    so that a change there is a change here.
    """
    text = re.escape(name)
    for part, expression in parts.items():
        text = text.replace(re.escape('{%s}' % part),
                            f'(?P<{part}>{expression})')
    return re.compile(f'^{text}$')


_PORTS = (
    (VRRP_PORT, _pattern(naming.vrrp_port_name('{lb}', '{role}'),
                         lb=_UUID, role=_ROLES)),
    (VRRP_PORT, _pattern(naming.replacement_vrrp_port_name('{lb}',
                                                           '{role}'),
                         lb=_UUID, role=_ROLES)),
    (MEMBER_PORT, _pattern(naming.member_port_name('{lb}', '{role}',
                                                   '{network}'),
                           lb=_UUID, role=_ROLES, network=_UUID)),
)
_SERVER_GROUP = _pattern(naming.server_group_name('{lb}'), lb=_UUID)
_SECURITY_GROUP = _pattern(naming.security_group_name('{lb}'), lb=_UUID)

Resource = collections.namedtuple(
    'Resource', 'kind id name loadbalancer_id created_at members')


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _created_at(text):
    """The cloud's creation time, None when it gives none we can read."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    if moment.tzinfo is None:
        # Nova and Neutron give UTC.
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _own_project(conn):
    """Neutron's listing filter for the service project, {} unknown.

    Ports and security groups are made in the project of the provider's
    credentials; an admin listing would otherwise return the whole
    cloud's.
    """
    try:
        project_id = conn.current_project_id
    except Exception:
        # Without Keystone (auth_type none) there is no project to ask.
        project_id = None
    return {'project_id': project_id} if project_id else {}


def _named(kind, pattern, item, created_at=None, members=()):
    match = pattern.match(item.name or '')
    if match is None:
        return None
    return Resource(kind, item.id, item.name, match.group('lb'),
                    _created_at(created_at), tuple(members or ()))


def find_resources(conn, servers):
    """This provider's servers, groups and ports, with their LB ids.

    ``servers``: Nova's detailed server listing, as the round has it.
    """
    found = []
    for server in servers:
        lb_id = (server.metadata or {}).get(naming.META_LOADBALANCER)
        if not lb_id or server.status == 'DELETED' or (
                getattr(server, 'task_state', None) == 'deleting'):
            continue
        found.append(Resource(SERVER, server.id, server.name, lb_id,
                              _created_at(server.created_at), ()))
    for group in conn.compute.server_groups():
        # Nova keeps no creation time of a server group: only the time
        # this worker has seen it orphaned protects it.
        resource = _named(SERVER_GROUP, _SERVER_GROUP, group,
                          members=group.member_ids)
        if resource:
            found.append(resource)
    project = _own_project(conn)
    for group in conn.network.security_groups(**project):
        resource = _named(SECURITY_GROUP, _SECURITY_GROUP, group,
                          group.created_at)
        if resource:
            found.append(resource)
    for port in conn.network.ports(**project):
        for kind, pattern in _PORTS:
            resource = _named(kind, pattern, port, port.created_at)
            if resource:
                found.append(resource)
                break
    return found


def _delete(conn, resource):
    if resource.kind == SERVER:
        conn.compute.delete_server(resource.id, ignore_missing=True)
    elif resource.kind == SERVER_GROUP:
        conn.compute.delete_server_group(resource.id, ignore_missing=True)
    elif resource.kind == SECURITY_GROUP:
        conn.network.delete_security_group(resource.id, ignore_missing=True)
    else:
        conn.network.delete_port(resource.id, ignore_missing=True)


class Housekeeper:
    """What one worker's rounds remember between them.

    ``group``: the health group that shares the load balancers among the
    workers, None for a worker that takes them all.
    """

    def __init__(self, conf=CONF, group=None, clock=time.monotonic,
                 now=_utcnow):
        self.conf = conf
        self.group = group
        self._clock = clock
        self._now = now
        # (kind, id) -> when this worker first saw it orphaned.
        self._orphaned_since = {}
        # server id -> the repair count its agent reported last.
        self._repairs_seen = {}
        self.removed = collections.Counter()
        self.firewall_repairs = 0

    @property
    def grace(self):
        return self.conf.sriov_worker.orphan_grace_period

    def _owned(self, loadbalancer_ids):
        if self.group is None:
            return set(loadbalancer_ids)
        return self.group.owned(loadbalancer_ids)

    def due(self, orphans):
        """The orphans old enough, and seen orphaned long enough, to go.

        Also forgets what is orphaned no more (or gone).
        """
        now, wall = self._clock(), self._now()
        grace = self.grace
        seen = {}
        due = []
        for resource in orphans:
            key = (resource.kind, resource.id)
            since = seen[key] = self._orphaned_since.get(key, now)
            if now - since < grace:
                continue
            if resource.created_at and (
                    wall - resource.created_at).total_seconds() < grace:
                continue
            due.append(resource)
        self._orphaned_since = seen
        return due

    def remove(self, conn, due):
        """Delete ``due``, kind by kind; how many went."""
        removed = 0
        for kind in KINDS:
            for resource in (item for item in due if item.kind == kind):
                if kind == SERVER_GROUP and resource.members:
                    # Its servers are on their way out: next round.
                    LOG.debug('Orphaned server group %s still has servers '
                              '%s', resource.id, resource.members)
                    continue
                try:
                    _delete(conn, resource)
                except os_exceptions.ConflictException as error:
                    LOG.info('Orphaned %s %s (%s) of load balancer %s is '
                             'still in use, trying again next round: %s',
                             kind, resource.id, resource.name,
                             resource.loadbalancer_id, error)
                    continue
                except Exception as error:
                    LOG.warning('Removing orphaned %s %s (%s) of load '
                                'balancer %s failed: %s', kind, resource.id,
                                resource.name, resource.loadbalancer_id,
                                error)
                    continue
                self._orphaned_since.pop((kind, resource.id), None)
                self.removed[kind] += 1
                removed += 1
                LOG.info('Removed orphaned %s %s (%s) of load balancer %s, '
                         'which Octavia no longer has', kind, resource.id,
                         resource.name, resource.loadbalancer_id)
        return removed

    def report_repairs(self, conn, servers):
        """Log the firewall repairs the agents of ``servers`` report.

        Returns how many new repairs were reported. An agent that does not
        answer (the health loop says so) or that counts no repairs (an
        older one) is skipped.
        """
        reported = 0
        for server in servers:
            if server.status != 'ACTIVE':
                continue
            try:
                agent = amphorae.server_agent(conn, server, self.conf)
                if agent is None:
                    continue
                with agent:
                    repairs = agent.get_counters().get('repairs')
            except Exception as error:
                LOG.debug('Amphora %s: no firewall counters this round: %s',
                          server.id, error)
                continue
            if not isinstance(repairs, dict):
                continue
            count = int(repairs.get('count') or 0)
            last = self._repairs_seen.get(server.id)
            self._repairs_seen[server.id] = count
            new = count - (last or 0)
            if new <= 0:
                continue
            reported += new
            metadata = server.metadata or {}
            LOG.warning(
                'Amphora %s (server %s) of load balancer %s: its agent found '
                'its firewall changed and repaired it %d more time(s) (%d '
                'counted; last at %s: %s)',
                metadata.get(naming.META_AMPHORA_ID), server.id,
                metadata.get(naming.META_LOADBALANCER), new, count,
                repairs.get('last_repair_at'), repairs.get('last_difference'))
        self.firewall_repairs += reported
        return reported

    def run_once(self):
        """One round: orphans, then repair reports. Returns a summary."""
        conn = clients.connection()
        servers = list(conn.compute.servers(details=True))
        resources = find_resources(conn, servers)
        owned = self._owned({item.loadbalancer_id for item in resources})
        existing = octavia_db.existing_load_balancer_ids(owned)
        orphans = [item for item in resources
                   if item.loadbalancer_id in owned and
                   item.loadbalancer_id not in existing]
        due = self.due(orphans)
        removed = self.remove(conn, due)
        live_servers = [server for server in servers
                        if (server.metadata or {}).get(
                            naming.META_LOADBALANCER) in existing]
        live_ids = {server.id for server in live_servers}
        self._repairs_seen = {server_id: count for server_id, count
                              in self._repairs_seen.items()
                              if server_id in live_ids}
        reported = self.report_repairs(conn, live_servers)
        return {'orphans': len(orphans), 'removed': removed,
                'waiting': len(orphans) - len(due),
                'firewall_repairs': reported}


def run(conf, stop_event, group=None):
    """A round every ``cleanup_interval`` seconds until ``stop_event``."""
    periodic.run('Housekeeping', '[house_keeping] cleanup_interval',
                 conf.house_keeping.cleanup_interval, stop_event,
                 lambda: Housekeeper(conf, group).run_once)


def start(conf, stop_event, group=None):
    """Run the housekeeping loop in a daemon thread; the thread."""
    return periodic.start('sriov-octavia-housekeeping', run, conf,
                          stop_event, group)
