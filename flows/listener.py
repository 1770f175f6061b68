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
"""Flows on listeners.

Each operation pushes the load balancer's state after it to the amphorae
(haproxy configuration, and with the flavor's sriov_vip the amphora
firewall) before reporting.
"""

from flows import common
from flows.tasks import firewall


def create_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'listener.create', 'listener',
        steps=(firewall.PushState('listener'),))


def update_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'listener.update', 'listener', updating=True,
        steps=(firewall.PushState('listener', updating=True),))


def delete_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'listener.delete', 'listener', deleting=True,
        steps=(firewall.PushState('listener', deleting=True),))
