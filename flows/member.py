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
"""Flows on members.

With the flavor's sriov_vip each operation pushes the recomputed amphora
firewall to the amphorae before reporting.
"""

from taskflow.patterns import linear_flow

from flows import common
from flows.tasks import firewall
from flows.tasks import status


def create_flow():
    return common.object_flow(
        'member.create', 'member',
        steps=(firewall.PushFirewall('member'),))


def update_flow():
    return common.object_flow(
        'member.update', 'member', updating=True,
        steps=(firewall.PushFirewall('member', updating=True),))


def delete_flow():
    return common.object_flow(
        'member.delete', 'member', deleting=True,
        steps=(firewall.PushFirewall('member', deleting=True),))


def batch_update_flow():
    """Replace a pool's members with the list in ``members``.

    Needs ``members``, ``pool_id``, ``loadbalancer_id``, ``flavor`` and
    ``availability_zone`` in the store.
    """
    flow = linear_flow.Flow('member.batch_update')
    flow.add(status.ResolveMemberBatch())
    flow.add(firewall.PushMemberBatchFirewall())
    flow.add(status.MarkMemberBatchDone())
    return flow
