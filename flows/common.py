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
"""Pieces every flow's shape is built from."""

from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow

from flows.tasks import amphora_state
from flows.tasks import security_group


def push_state_steps(sriov_vip, keepalived=False, lb_state=None,
                     name_prefix=''):
    """The steps bringing the amphorae in step with ``lb_state``.

    Without ``sriov_vip`` the load balancer's Neutron security group
    follows the state; the amphorae get their whole state in one push
    (firewall with ``sriov_vip``, haproxy, keepalived with
    ``keepalived``).

    :param lb_state: the store key of the state, by default ``lb_state``.
    """
    rebind = {'lb_state': lb_state} if lb_state else None
    steps = []
    if not sriov_vip:
        steps.append(security_group.SyncSecurityGroup(
            name=f'{name_prefix}sync-security-group', rebind=rebind))
    steps.append(amphora_state.PushAmphoraState(
        firewall=bool(sriov_vip), keepalived=keepalived,
        name=f'{name_prefix}push-amphora-state', rebind=rebind))
    return steps


def per_amphora(name, roles, role_flow):
    """``role_flow(role)`` for each role, side by side.

    The amphorae of ACTIVE_STANDBY boot, plug and wait side by side; a
    failure of either reverts both.
    """
    flow = unordered_flow.Flow(name)
    flow.add(*(role_flow(role) for role in roles))
    return flow


def role_flow(name, role, *steps):
    """A linear flow named after the role, of ``steps``."""
    flow = linear_flow.Flow(f'{name}-{role.lower()}')
    flow.add(*steps)
    return flow
