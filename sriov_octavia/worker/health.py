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
"""Operating status and listener statistics, from haproxy to Octavia.

A loop beside the worker's conductor: every ``[sriov_worker]
health_interval`` seconds it finds this provider's amphorae in Nova (by
the server metadata the load balancer flow gives them), asks each agent
for haproxy's view of its load balancer, and reports through the
driver-agent: the operating status of the listeners, pools, members and
the load balancer, and each listener's counters.

haproxy names frontends by listener id, backends ``<pool id>:<listener
id>`` and servers by member id (upstream Octavia's template), so no
lookup in Octavia is needed. With two amphorae (ACTIVE_STANDBY) both run
the health checks: an object's worst status counts (a member the standby
cannot reach would fail after a failover), and the counters are summed.

Nothing here may stop the worker: every failure is logged and the next
round starts afresh.
"""

import collections
import threading

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging
from oslo_utils import uuidutils

from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import octavia_status as status

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

# Worst last: merging two amphorae's views keeps the later one in this list.
_SEVERITY = (lib_consts.ONLINE, lib_consts.NO_MONITOR, lib_consts.DRAINING,
             lib_consts.OFFLINE, lib_consts.DEGRADED, lib_consts.ERROR)
_STATISTICS = (('bytes_in', 'bin'), ('bytes_out', 'bout'),
               ('active_connections', 'scur'),
               ('total_connections', 'stot'),
               ('request_errors', 'ereq'))


def _worst(*statuses):
    return max(statuses, key=_SEVERITY.index)


def member_status(server):
    """Octavia's operating status of a member from its haproxy server.

    None for a state haproxy may add that says nothing about the member.
    """
    state = (server.get('status') or '').upper()
    # "UP 1/3" and "DOWN 1/2" are on their way; they are still what the
    # first word says.
    if state.startswith('UP'):
        return lib_consts.ONLINE
    if state.startswith('DOWN'):
        return lib_consts.ERROR
    if state.startswith('MAINT'):
        return lib_consts.OFFLINE
    if state in ('DRAIN', 'NOLB'):
        return lib_consts.DRAINING
    if state == 'NO CHECK':
        return lib_consts.NO_MONITOR
    return None


def pool_status(backend, members):
    """A pool's status from its backend and its members' statuses."""
    if not backend.get('servers'):
        return lib_consts.ONLINE if (backend.get('status') or '').upper(
        ) == 'UP' else lib_consts.OFFLINE
    if (backend.get('status') or '').upper() != 'UP':
        return lib_consts.ERROR
    if lib_consts.ERROR in members:
        return lib_consts.DEGRADED
    return lib_consts.ONLINE


def listener_status(frontend):
    state = (frontend.get('status') or '').upper()
    if state == 'OPEN':
        return lib_consts.ONLINE
    if state == 'FULL':
        return lib_consts.DEGRADED
    return lib_consts.OFFLINE


def _merge(into, object_id, value):
    if value is not None:
        into[object_id] = _worst(into.get(object_id, value), value)


def operating_update(loadbalancer_id, views):
    """The ``update_loadbalancer_status`` argument from haproxy's views.

    :param views: the agents' ``get_loadbalancer_status`` answers, one per
        amphora that has haproxy running for the load balancer.
    """
    listeners, pools, members = {}, {}, {}
    for view in views:
        for name, frontend in (view.get('frontends') or {}).items():
            if uuidutils.is_uuid_like(name):
                _merge(listeners, name, listener_status(frontend))
        for name, backend in (view.get('backends') or {}).items():
            pool_id = name.split(':')[0]
            if not uuidutils.is_uuid_like(pool_id):
                continue
            seen = []
            for member_id, server in (backend.get('servers') or {}).items():
                value = member_status(server)
                seen.append(value)
                _merge(members, member_id, value)
            _merge(pools, pool_id, pool_status(backend, seen))
    unhealthy = (lib_consts.DEGRADED, lib_consts.ERROR)
    degraded = any(value in unhealthy for value in
                   list(listeners.values()) + list(pools.values()))
    update = {
        lib_consts.LOADBALANCERS: [{
            lib_consts.ID: loadbalancer_id,
            lib_consts.OPERATING_STATUS: (lib_consts.DEGRADED if degraded
                                          else lib_consts.ONLINE)}]}
    for key, found in ((lib_consts.LISTENERS, listeners),
                       (lib_consts.POOLS, pools),
                       (lib_consts.MEMBERS, members)):
        if found:
            update[key] = [{lib_consts.ID: object_id,
                            lib_consts.OPERATING_STATUS: value}
                           for object_id, value in sorted(found.items())]
    return update


def listener_statistics(views):
    """The ``update_listener_statistics`` argument, summed over views."""
    totals = collections.defaultdict(lambda: dict.fromkeys(
        (ours for ours, _ in _STATISTICS), 0))
    for view in views:
        for name, frontend in (view.get('frontends') or {}).items():
            if not uuidutils.is_uuid_like(name):
                continue
            for ours, theirs in _STATISTICS:
                totals[name][ours] += int(frontend.get(theirs) or 0)
    return {lib_consts.LISTENERS: [dict(counters, id=listener_id)
                                   for listener_id, counters
                                   in sorted(totals.items())]}


def _views(conn, loadbalancer_id, servers, conf):
    views = []
    for server in servers:
        try:
            agent = amphorae.server_agent(conn, server, conf)
            if agent is None:
                continue
            with agent:
                view = agent.get_loadbalancer_status(loadbalancer_id)
        except Exception as error:
            LOG.warning('Health of load balancer %s: amphora %s did not '
                        'answer: %s', loadbalancer_id, server.id, error)
            continue
        if view is not None:
            views.append(view)
    return views


def poll_once(conf, reporter=None):
    """One round over every amphora of this provider."""
    reporter = reporter or status.StatusReporter(conf)
    conn = clients.connection()
    servers_by_lb = amphorae.servers_by_loadbalancer(conn)
    for lb_id, servers in sorted(servers_by_lb.items()):
        views = _views(conn, lb_id, servers, conf)
        if not views:
            continue
        try:
            reporter.update_status(operating_update(lb_id, views))
            reporter.update_listener_statistics(listener_statistics(views))
        except Exception as error:
            LOG.warning('Health of load balancer %s could not be reported '
                        'to Octavia: %s', lb_id, error)


def run(conf, stop_event):
    """Poll every ``health_interval`` seconds until ``stop_event``."""
    interval = conf.sriov_worker.health_interval
    if interval <= 0:
        LOG.info('Member health and listener statistics are off '
                 '([sriov_worker] health_interval is 0).')
        return
    while not stop_event.wait(interval):
        try:
            poll_once(conf)
        except Exception:
            LOG.exception('Health round failed; trying again in %s s',
                          interval)


def start(conf, stop_event):
    """Run the health loop in a daemon thread; the thread."""
    thread = threading.Thread(target=run, args=(conf, stop_event),
                              name='sriov-octavia-health', daemon=True)
    thread.start()
    return thread
