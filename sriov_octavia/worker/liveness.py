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
"""When each amphora last answered, and which are overdue for failover.

An amphora is known by its load balancer and role rather than its server:
a deleted server answers no more than a hung one, and the replacement of a
failover takes its role. Its silence counts from the last answer, or from
the first time this worker checked it: a worker that just took over a load
balancer gives its amphorae the whole [health_manager] heartbeat_timeout.
"""

import time


class Liveness(object):

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._last_answer = {}

    def now(self):
        return self._clock()

    def observe(self, slot, answered, now):
        """Record one check of ``slot`` (``(load balancer id, role)``)."""
        if answered or slot not in self._last_answer:
            self._last_answer[slot] = now

    def restart(self, slots, now):
        """Silence counts from ``now``: after a failover or operation."""
        for slot in slots:
            self._last_answer[slot] = now

    def silent_for(self, slot, now):
        return now - self._last_answer.get(slot, now)

    def overdue(self, slots, timeout, now):
        return [slot for slot in slots
                if self.silent_for(slot, now) >= timeout]

    def retain(self, loadbalancer_ids):
        """Forget the load balancers not in ``loadbalancer_ids``."""
        self._last_answer = {slot: last for slot, last
                             in self._last_answer.items()
                             if slot[0] in loadbalancer_ids}
