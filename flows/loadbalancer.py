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
"""Flows creating, updating and deleting a load balancer's amphorae.

The flows are shaped by the flavor when they are built: a SINGLE flow
has the tasks of one amphora, an ACTIVE_STANDBY flow those of two, side
by side (flows.common.per_amphora), and only a load balancer without
``sriov_vip`` has the tasks of its Neutron security group. taskflow saves
the factory's arguments with the job, so a resumed job rebuilds the same
flow.
"""

from taskflow.patterns import linear_flow
from taskflow import task

from flows import common
from flows.tasks import amphora
from flows.tasks import amphora_state
from flows.tasks import compute
from flows.tasks import identity
from flows.tasks import loadbalancer_status
from flows.tasks import member_port_plan
from flows.tasks import member_ports
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import flavor as sriov_flavor


def _key(name, role):
    return f'{name}_{role.lower()}'


class JoinAmphorae(task.Task):
    """The amphorae and VRRP ports of the roles, as one list each.

    Provides ``amphorae`` and ``vrrp_ports`` in the order of ``roles``;
    only reads the store, so there is nothing to undo.
    """

    def __init__(self, roles):
        self.roles = tuple(roles)
        super(JoinAmphorae, self).__init__(
            name='join-amphorae', provides=(compute.AMPHORAE,
                                            network.VRRP_PORTS),
            requires=[_key(name, role) for role in self.roles
                      for name in (compute.AMPHORAE, network.VRRP_PORTS)])

    def execute(self, **per_role):
        return tuple(
            [item for role in self.roles for item in per_role[_key(name,
                                                                   role)]]
            for name in (compute.AMPHORAE, network.VRRP_PORTS))


def _boot_amphora(role):
    """Issue the role's identity, boot it, wait for it and its agent."""
    identities, booted, amphorae = (
        _key(name, role) for name in (identity.AMPHORA_IDENTITIES,
                                      compute.BOOTED_AMPHORAE,
                                      compute.AMPHORAE))
    prefix = role.lower()
    return common.role_flow(
        'boot', role,
        identity.IssueAmphoraIdentities(
            (role,), name=f'{prefix}-issue-identity', provides=identities),
        compute.BootAmphorae(
            (role,), name=f'{prefix}-boot-amphora',
            rebind={'amphora_identities': identities}, provides=booted),
        compute.WaitForAmphorae(
            name=f'{prefix}-wait-for-amphora',
            rebind={'booted_amphorae': booted}, provides=amphorae),
        amphora.WaitForAgents(name=f'{prefix}-wait-for-agent',
                              rebind={'amphorae': amphorae}))


def _plug_amphora(role, vip_on_interface):
    """The role's VRRP port: created, attached, plugged with the VIPs."""
    amphorae, ports = (_key(name, role) for name in (compute.AMPHORAE,
                                                     network.VRRP_PORTS))
    prefix = role.lower()
    return common.role_flow(
        'plug', role,
        network.CreateVrrpPorts(
            (role,), name=f'{prefix}-create-vrrp-port',
            rebind={'amphorae': amphorae}, provides=ports),
        compute.AttachPorts(
            name=f'{prefix}-attach-vrrp-port',
            rebind={'amphorae': amphorae, 'vrrp_ports': ports}),
        amphora.PlugVip(
            vip_on_interface, name=f'{prefix}-plug-vip',
            rebind={'amphorae': amphorae, 'vrrp_ports': ports}))


def create_flow(topology=None, sriov_vip=None):
    """Boot, wire and configure the amphorae; the load balancer ACTIVE.

    The firewall is in force before haproxy and keepalived start, so VRRP
    adverts from the peer pass from the first one on (ACTIVE_STANDBY: the
    VIPs are keepalived's to hold, PlugVip leaves them off the interface).

    Needs ``loadbalancer``, ``loadbalancer_id``, ``flavor`` and
    ``availability_zone`` in the store. Any failure reverts every step
    (ports deleted, interfaces detached, servers and server group deleted)
    and leaves the load balancer, and what was created with it, in ERROR.
    """
    roles = sriov_flavor.topology_roles(topology)
    pair = len(roles) > 1
    flow = linear_flow.Flow('loadbalancer.create')
    flow.add(loadbalancer_status.CollectCreatedObjects())
    if pair:
        flow.add(compute.CreateServerGroup())
    flow.add(compute.PrepareBoot(),
             common.per_amphora('boot-amphorae', roles, _boot_amphora),
             network.GetVipPlug())
    if not sriov_vip:
        flow.add(security_group.CreateSecurityGroup())
    flow.add(common.per_amphora(
        'plug-amphorae', roles,
        lambda role: _plug_amphora(role, vip_on_interface=not pair)))
    flow.add(JoinAmphorae(roles),
             # Members created with the load balancer get their networks'
             # ports as members created later do.
             member_port_plan.PlanMemberPorts('loadbalancer'),
             member_ports.plug_flow(),
             amphora_state.PushAmphoraState(
                 firewall=bool(sriov_vip), keepalived=pair, new=True,
                 rebind={'lb_state': 'loadbalancer'}),
             loadbalancer_status.MarkLoadBalancerActive())
    return flow


def update_flow(topology=None, sriov_vip=None):
    """Apply a load balancer update to what carries its traffic.

    Needs ``loadbalancer`` (the changed fields), ``original_loadbalancer``,
    ``loadbalancer_id`` and ``flavor``. Name, description and the like
    live in Octavia alone; the VIP's QoS policy and security groups are
    set on the VRRP ports. A failure puts the ports back and leaves the
    load balancer in ERROR.
    """
    flow = linear_flow.Flow('loadbalancer.update')
    flow.add(loadbalancer_status.CollectNoObjects())
    if not sriov_vip:
        flow.add(security_group.GetSecurityGroup())
    flow.add(network.UpdateVrrpPorts(),
             loadbalancer_status.MarkLoadBalancerActive())
    return flow


def delete_flow(topology=None, sriov_vip=None):
    """Delete the amphorae, their VRRP ports and group, the VIP port.

    Needs ``loadbalancer`` and ``loadbalancer_id`` (``cascade`` optional).
    Servers go first: Nova then lets go of the VRRP ports, which are
    deleted next. Everything is found in Nova and Neutron by the names and
    metadata the create flow gave it, so a load balancer whose create
    failed half way is deleted the same way.
    """
    flow = linear_flow.Flow('loadbalancer.delete')
    flow.add(loadbalancer_status.CollectDeletedObjects(),
             # Nova leaves ports it did not create in Neutron: the member
             # ports (normal and SR-IOV) are looked up while their amphorae
             # exist and deleted once Nova has let them go.
             member_ports.FindLoadBalancerMemberPorts(),
             compute.DeleteAmphorae(),
             member_ports.DeleteLoadBalancerMemberPorts(),
             network.DeleteVrrpPorts())
    if not sriov_vip:
        flow.add(security_group.DeleteSecurityGroup())
    flow.add(network.DeleteVipPort(),
             loadbalancer_status.MarkLoadBalancerDeleted())
    return flow
