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
"""Flows on health monitors.

Each operation pushes the load balancer's state after it to the amphorae
(haproxy configuration, and with the flavor's sriov_vip the amphora
firewall) before reporting.
"""

from flows import common
from flows.tasks import firewall


def create_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'health_monitor.create', 'health_monitor',
        steps=(firewall.PushState('health_monitor'),))


def update_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'health_monitor.update', 'health_monitor', updating=True,
        steps=(firewall.PushState('health_monitor', updating=True),))


def delete_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'health_monitor.delete', 'health_monitor', deleting=True,
        steps=(firewall.PushState('health_monitor', deleting=True),))
