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
"""One worker: its conductor, and its health, certificate and housekeeping
loops.

The same whether octavia-driver-agent runs it as a provider agent
(sriov_octavia.worker.agent) or it runs on its own (sriov-octavia-worker).
The conductor's claims and the health group's membership carry one name,
so that an operator finds a worker under the same name in both.
"""

from sriov_octavia.worker import certificates
from sriov_octavia.worker import conductor
from sriov_octavia.worker import health
from sriov_octavia.worker import housekeeping
from sriov_octavia.worker import membership


def run(conf, stop_event):
    """Run until ``stop_event``; raises when the conductor dies."""
    name = conductor.worker_name()
    group = membership.HealthGroup(name, conf)
    try:
        health.start(conf, stop_event, group)
        certificates.start(conf, stop_event, group)
        housekeeping.start(conf, stop_event, group)
        conductor.run(conf, stop_event, name=name)
    finally:
        # The others take this worker's load balancers at once, rather
        # than when its membership would have expired.
        group.leave()
