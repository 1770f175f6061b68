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
"""haproxy's view of a load balancer, in Octavia's operating statuses.

haproxy names frontends by listener id, backends ``<pool id>:<listener
id>`` and servers by member id (upstream Octavia's template), so no lookup
in Octavia is needed. With two amphorae (ACTIVE_STANDBY) both run the
health checks: an object's worst status counts (a member the standby cannot
reach would fail after a failover).

What the views cannot say, the number of amphorae answering can: with none
answering nothing serves, and with one of two the load balancer runs
without its standby.
"""

from octavia_lib.common import constants as lib_consts
from oslo_utils import uuidutils

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


def loadbalancer_update(loadbalancer_id, views, answering, expected,
                        object_ids):
    """The status update of a load balancer, its amphorae counted.

    :param views: the views of the amphorae that answered.
    :param answering: how many of its ``expected`` amphorae answered.
    :param object_ids: ``{"listeners", "pools", "members"}``: ids Octavia
        has, to say that nothing serves them when no amphora answers
        (none of their statuses may stay ONLINE from an earlier round).
    """
    if not answering:
        update = {lib_consts.LOADBALANCERS: [{
            lib_consts.ID: loadbalancer_id,
            lib_consts.OPERATING_STATUS: lib_consts.ERROR}]}
        for key in (lib_consts.LISTENERS, lib_consts.POOLS,
                    lib_consts.MEMBERS):
            if object_ids.get(key):
                update[key] = [{lib_consts.ID: object_id,
                                lib_consts.OPERATING_STATUS:
                                lib_consts.OFFLINE}
                               for object_id in object_ids[key]]
        return update
    update = operating_update(loadbalancer_id, views)
    if answering < expected:
        [loadbalancer] = update[lib_consts.LOADBALANCERS]
        loadbalancer[lib_consts.OPERATING_STATUS] = _worst(
            loadbalancer[lib_consts.OPERATING_STATUS], lib_consts.DEGRADED)
    return update


def frontend_counters(view):
    """haproxy's counters of each listener, as it counts them now.

    ``{listener id: {"bytes_in", "bytes_out", "active_connections",
    "total_connections", "request_errors"}}``.
    """
    return {name: {ours: int(frontend.get(theirs) or 0)
                   for ours, theirs in _STATISTICS}
            for name, frontend in (view.get('frontends') or {}).items()
            if uuidutils.is_uuid_like(name)}
