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
"""Taskflow flows the sriov-octavia worker runs, by name.

``FLOWS`` maps the names the provider driver posts (``"<object>.<operation>"``)
to flow factories: module-level functions without arguments whose import path
is saved with each job, so that any worker can rebuild the flow.
"""

from flows import failover
from flows import health_monitor
from flows import l7policy
from flows import l7rule
from flows import listener
from flows import loadbalancer
from flows import member
from flows import pool

FLOWS = {}
for _name, _module in (('loadbalancer', loadbalancer),
                       ('listener', listener), ('pool', pool),
                       ('member', member),
                       ('health_monitor', health_monitor),
                       ('l7policy', l7policy), ('l7rule', l7rule)):
    FLOWS[_name + '.create'] = _module.create_flow
    FLOWS[_name + '.update'] = _module.update_flow
    FLOWS[_name + '.delete'] = _module.delete_flow
FLOWS['member.batch_update'] = member.batch_update_flow
FLOWS['loadbalancer.failover'] = failover.loadbalancer_failover_flow
FLOWS['amphora.failover'] = failover.amphora_failover_flow
