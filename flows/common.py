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
"""The shape every flow on a load balancer child shares."""

from taskflow.patterns import linear_flow

from flows.tasks import status


def object_flow(flow_name, object_type, steps=(), deleting=False,
                updating=False):
    """Guard, the operation's own steps, then the outcome report.

    :param flow_name: ``"<object>.<operation>"``, also the flow's name.
    :param object_type: the store key of the object the flow works on.
    :param steps: tasks or sub-flows doing the work (pushing the amphora
        firewall, plugging ports, ...); any of them failing reverts the flow
        and the object ends in ERROR.
    :param deleting: report DELETED instead of ACTIVE at the end.
    :param updating: the store also holds ``original_<object_type>``.
    """
    flow = linear_flow.Flow(flow_name)
    flow.add(status.ResolveParents(object_type, with_original=updating))
    flow.add(*steps)
    if deleting:
        flow.add(status.MarkDeleted(object_type))
    else:
        flow.add(status.MarkActive(object_type))
    return flow
