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
"""What the L4 engine shows: haproxy's status shape, counters, LC shares.

The controller reads listener and member health from haproxy's status
answer (sriov_octavia/worker/haproxy_status.py); the L4 listeners are put
in the same shape so it needs no second reader. Flows are counted from
conntrack (active) and from the table's counters (totals, refusals).
"""

from amphora_agent.l4 import balance
from amphora_agent.l4 import render


def _packets(counters, name):
    return counters.get(name, (0, 0))[0]


def _bytes(counters, name):
    return counters.get(name, (0, 0))[1]


def status(document, health, counters, per_listener, per_member,
           conntrack_count):
    """``{"frontends": {...}, "backends": {...}}`` as haproxy words it."""
    frontends = {}
    backends = {}
    for listener in document.listeners:
        frontends[listener.id] = {
            'status': 'OPEN',
            'scur': per_listener.get(listener.id, 0),
            'stot': _packets(counters, render.counter_name('flows',
                                                           listener.id)),
            'bin': _bytes(counters, render.counter_name('bytes_in',
                                                        listener.id)),
            'bout': _bytes(counters, render.counter_name('bytes_out',
                                                         listener.id)),
            'ereq': _packets(counters, render.counter_name('refused',
                                                           listener.id))}
        pool = listener.pool
        if pool is None:
            continue
        servers = {member.id: {'status': render.member_state(member,
                                                             health)}
                   for member in pool.members}
        backends[f'{pool.id}:{listener.id}'] = {
            'status': 'UP' if render.available(pool, health) else 'DOWN',
            'servers': servers}
    return {'frontends': frontends, 'backends': backends}


def counters(document, health, counters, per_listener, per_member,
             conntrack_count):
    """The engine's numbers for the metrics (amphora_agent.metrics)."""
    listeners = {}
    members = {}
    for listener in document.listeners:
        listeners[listener.id] = {
            'protocol': listener.protocol, 'port': listener.port,
            'active': per_listener.get(listener.id, 0),
            **{kind: _packets(counters, render.counter_name(kind,
                                                            listener.id))
               for kind in ('flows', 'refused', 'no_member')},
            **{kind: _bytes(counters, render.counter_name(kind,
                                                          listener.id))
               for kind in ('bytes_in', 'bytes_out')}}
        for member in (listener.pool.members if listener.pool else ()):
            members[member.id] = {
                'listener': listener.id, 'pool': listener.pool.id,
                'active': per_member.get(member.id, 0),
                'flows': _packets(counters,
                                  render.counter_name('member', member.id)),
                'status': render.member_state(member, health)}
    return {'loadbalancer_id': document.loadbalancer_id,
            'listeners': listeners, 'members': members,
            'over_flow_limit': _packets(counters, 'over_flow_limit'),
            'unsolicited': _packets(counters, 'l4_unsolicited'),
            'conntrack_count': conntrack_count}


def least_connections_slots(listener, health, active, counters, seen):
    """{member id: slots} of a LEAST_CONNECTIONS listener, per family.

    ``seen``: {listener id: flows counted at the last refresh}, updated:
    the new flows of the last interval are the ones expected in the next.
    """
    name = render.counter_name('flows', listener.id)
    total = _packets(counters, name)
    # A counter lower than before was reset (table made again).
    expected = max(1, total - min(seen.get(listener.id, total), total))
    seen[listener.id] = total
    chosen = render.available(listener.pool, health)
    result = {}
    for family in (4, 6):
        weights = {member.id: member.weight for member in chosen
                   if member.family == family}
        if weights:
            result.update(balance.slots(active, weights, expected))
    return result
