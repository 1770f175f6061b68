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

Each operation pushes the load balancer's state after it to the amphorae
(haproxy configuration, and with the flavor's sriov_vip the amphora
firewall) before reporting. With allow_member_sriov a direct
member's network is plugged into the amphorae (flows.tasks.member_ports)
before the firewall admits the member, and the ports of networks no direct
member uses any more are released after it no longer does.
"""

from taskflow.patterns import linear_flow

from flows import common
from flows.tasks import firewall
from flows.tasks import member_ports
from flows.tasks import status


def create_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'member.create', 'member',
        steps=(member_ports.PlanMemberPorts('member'),
               member_ports.plug_flow(),
               firewall.PushState('member')))


def update_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'member.update', 'member', updating=True,
        steps=(firewall.PushState('member', updating=True),))


def delete_flow(topology=None, sriov_vip=None):
    return common.object_flow(
        'member.delete', 'member', deleting=True,
        steps=(member_ports.PlanMemberPorts('member', deleting=True),
               firewall.PushState('member', deleting=True),
               member_ports.release_flow()))


def batch_update_flow(topology=None, sriov_vip=None):
    """Replace a pool's members with the list in ``members``.

    Needs ``members``, ``pool_id``, ``loadbalancer_id``, ``flavor`` and
    ``availability_zone`` in the store.
    """
    flow = linear_flow.Flow('member.batch_update')
    flow.add(status.ResolveMemberBatch())
    flow.add(member_ports.PlanMemberPorts())
    flow.add(member_ports.plug_flow())
    flow.add(firewall.PushMemberBatchState())
    flow.add(member_ports.release_flow())
    flow.add(status.MarkMemberBatchDone())
    return flow
