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
"""Listener statistics that never go backwards, reported as increments.

haproxy's counters start again from zero whenever haproxy does: on a
reload, and on the new amphora of a failover. Reported as they stand they
would make Octavia's totals fall. So each round reports what each
amphora's counters grew by since the last round, as Octavia's own health
manager reports its amphorae's (deltas added by Octavia's statistics
drivers); a counter found smaller than before counted from zero again.

Counters first seen by this worker are new (the round's increment) when it
already checked the load balancer, since a new amphora or listener counted
from zero; otherwise (the worker just started, or the load balancer moved
to it from another worker) they may have been reported already, and only
their growth from now on counts.
"""

from octavia.common import data_models
from octavia.statistics import stats_base

from sriov_octavia.worker import haproxy_status

ACTIVE_CONNECTIONS = 'active_connections'
CUMULATIVE = ('bytes_in', 'bytes_out', 'total_connections',
              'request_errors')


class ListenerCounters(object):
    """The last counters seen of each (amphora server, listener)."""

    def __init__(self):
        self._last = {}

    def increments(self, views_by_server, new_counts=True):
        """``{listener id: increments}`` of one load balancer's views.

        :param views_by_server: ``{server id: haproxy view}``.
        :param new_counts: whether counters not seen before are new
            (counted whole) or possibly reported already (a baseline).
        ``active_connections`` is not an increment but the sum now.
        """
        totals = {}
        for server_id, view in sorted(views_by_server.items()):
            counters = haproxy_status.frontend_counters(view)
            for listener_id, now in counters.items():
                before = self._last.get((server_id, listener_id))
                self._last[(server_id, listener_id)] = now
                if before is None and not new_counts:
                    before = now
                total = totals.setdefault(
                    listener_id, dict.fromkeys(CUMULATIVE + (
                        ACTIVE_CONNECTIONS,), 0))
                for field in CUMULATIVE:
                    if before is None or now[field] < before[field]:
                        total[field] += now[field]
                    else:
                        total[field] += now[field] - before[field]
                total[ACTIVE_CONNECTIONS] += now[ACTIVE_CONNECTIONS]
        return totals

    def retain(self, server_ids):
        """Forget the amphorae not in ``server_ids`` (gone, or moved)."""
        self._last = {key: value for key, value in self._last.items()
                      if key[0] in server_ids}


def report(increments):
    """Add ``{listener id: increments}`` through Octavia's stats drivers."""
    if not increments:
        return
    stats_base.update_stats_via_driver(
        [data_models.ListenerStatistics(listener_id=listener_id, **counts)
         for listener_id, counts in sorted(increments.items())],
        deltas=True)
