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
"""The flows on listeners, pools, members, health monitors and L7 rules.

One shape for all of them: a guard that hands the object back in ERROR
on failure (``status.ResolveParents``), the work on the member ports
(normal and SR-IOV) the table below names, the load balancer's whole
state once the change is made pushed to the amphorae
(flows.common.push_state_steps), the report. A module-level factory per
flow name (``listener_create`` for ``listener.create``, ...) is what the
``sriov_octavia.flows`` entry points name.
"""

from taskflow.patterns import linear_flow

from flows import common
from flows.tasks import lb_state
from flows.tasks import member_port_plan
from flows.tasks import member_ports
from flows.tasks import status

OBJECT_TYPES = ('listener', 'pool', 'member', 'health_monitor', 'l7policy',
                'l7rule')
OPERATIONS = ('create', 'update', 'delete')
PLUG, RELEASE = 'plug', 'release'
# What a flow does to the member ports (flows.tasks.member_ports): a
# member's network is plugged into the amphorae before the firewall and
# haproxy know the member; the ports of networks no member uses any more go
# once they no longer do (a pool's members go with it).
MEMBER_PORTS = {('member', 'create'): PLUG, ('member', 'delete'): RELEASE,
                ('pool', 'delete'): RELEASE}


def object_flow(object_type, operation, sriov_vip=None, steps=()):
    """The flow ``<object_type>.<operation>``.

    :param steps: extra tasks after the guard (tests use it).
    """
    deleting = operation == 'delete'
    updating = operation == 'update'
    ports = MEMBER_PORTS.get((object_type, operation))
    flow = linear_flow.Flow(f'{object_type}.{operation}')
    flow.add(status.ResolveParents(object_type, with_original=updating))
    flow.add(*steps)
    if ports:
        flow.add(member_port_plan.PlanMemberPorts(object_type,
                                                  deleting=deleting))
    if ports == PLUG:
        flow.add(member_ports.plug_flow())
    flow.add(lb_state.ResolveChangedState(object_type, deleting=deleting,
                                          updating=updating))
    flow.add(*common.push_state_steps(sriov_vip))
    if ports == RELEASE:
        flow.add(member_ports.release_flow())
    flow.add(status.MarkDeleted(object_type) if deleting
             else status.MarkActive(object_type))
    return flow


def _factory(object_type, operation):
    def factory(topology=None, sriov_vip=None):
        return object_flow(object_type, operation, sriov_vip=sriov_vip)

    factory.__name__ = factory.__qualname__ = f'{object_type}_{operation}'
    factory.__doc__ = f'The {object_type}.{operation} flow.'
    return factory


for _object_type in OBJECT_TYPES:
    for _operation in OPERATIONS:
        globals()[f'{_object_type}_{_operation}'] = _factory(_object_type,
                                                             _operation)


def member_batch_update(topology=None, sriov_vip=None):
    """Replace a pool's members with the list in ``members``.

    Needs ``members``, ``pool_id``, ``loadbalancer_id``, ``flavor`` and
    ``availability_zone`` in the store.
    """
    flow = linear_flow.Flow('member.batch_update')
    flow.add(status.ResolveMemberBatch(),
             member_port_plan.PlanMemberPorts(),
             member_ports.plug_flow(),
             lb_state.ResolveMemberBatchState(),
             *common.push_state_steps(sriov_vip))
    flow.add(member_ports.release_flow(),
             status.MarkMemberBatchDone())
    return flow
