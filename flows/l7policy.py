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
"""Flows on L7 policies.

Each operation pushes the load balancer's state after it to the amphorae
(the haproxy configuration with the listeners' L7 switching) before
reporting.
"""

from flows import common
from flows.tasks import firewall


def create_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'l7policy.create', 'l7policy',
        steps=(firewall.PushState('l7policy'),))


def update_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'l7policy.update', 'l7policy', updating=True,
        steps=(firewall.PushState('l7policy', updating=True),))


def delete_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'l7policy.delete', 'l7policy', deleting=True,
        steps=(firewall.PushState('l7policy', deleting=True),))
