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
"""Flows replacing a load balancer's amphorae with new ones.

Each amphora is replaced in a slot of its own, one slot after the other,
so that in an ACTIVE_STANDBY pair the other amphora serves meanwhile:

1. find the amphora serving the slot's role (its server and VRRP port);
2. in an anti-affinity group, delete it first (the group leaves its
   replacement no other host); otherwise it serves until step 6;
3. boot the replacement (same role, name and metadata, same group), wait
   for it and its agent;
4. a NEW VRRP base port (direct with sriov_vip), named as a replacement's
   until step 6, hot-plugged into the new amphora;
5. the VIP plugged on it;
6. the commit: the old server and port deleted, the new port renamed to
   the role's name; from then on every flow finds the new amphora, and a
   failure keeps it;
7. the role's member ports, normal and SR-IOV (named after role and
   network), attached to and plugged in the new amphora;
8. the whole state pushed to all amphorae: firewall (sriov_vip), haproxy,
   and keepalived (ACTIVE_STANDBY) with the new VRRP address as the peer.

A failure before the commit deletes the new server and port (the slot's
first task undoes the slot, finding them by role and name, so a worker
that took the job over does it as well) and the load balancer goes to
ERROR; the old amphora, unless step 2 deleted it, keeps serving. A slot
that committed stays: failing over again repairs what is left.

The flows are shaped by the topology when they are built: the load
balancer flow has a slot per role, the standby's first (the master keeps
serving while it is replaced, and the new standby takes over while the
master is).

Store: ``loadbalancer``, ``loadbalancer_id``, ``flavor``,
``availability_zone``, as every job has them; ``amphora.failover`` also
``amphora``: ``{"role": STANDALONE | MASTER | BACKUP, "id": server id}``
(``id`` optional: a server that no longer serves its role is not failed
over again, the slot is empty).

The slots' tasks on Nova and Neutron are in flows.tasks.failover_compute
and flows.tasks.failover_network.
"""

from taskflow.patterns import linear_flow

from flows import common
from flows.tasks import amphora
from flows.tasks import compute
from flows.tasks import failover_compute
from flows.tasks import failover_network
from flows.tasks import identity
from flows.tasks import lb_state
from flows.tasks import loadbalancer_status
from flows.tasks import member_port_plan
from flows.tasks import member_ports
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import flavor as sriov_flavor


def _slot_flow(slot, find_amphora, roles, sriov_vip):
    """Replace one amphora; ``find_amphora`` picks it and undoes the slot."""
    amphorae = f'replacement_amphorae_{slot}'
    ports = f'replacement_ports_{slot}'
    plan = f'member_ports_plan_{slot}'
    member_ports_key = f'member_ports_{slot}'
    flow = linear_flow.Flow(f'failover-{slot}')
    flow.add(find_amphora,
             failover_network.DeleteOldAmphoraFirst(slot),
             identity.IssueReplacementIdentity(slot),
             failover_compute.BootReplacementAmphora(slot),
             compute.WaitForAmphorae(
                 name=f'failover-{slot}-wait-for-amphora',
                 rebind={'booted_amphorae': f'booted_replacement_{slot}'},
                 provides=amphorae),
             amphora.WaitForAgents(name=f'failover-{slot}-wait-for-agent',
                                   rebind={'amphorae': amphorae}),
             failover_network.CreateReplacementVrrpPort(slot),
             failover_compute.AttachReplacementPorts(slot),
             amphora.PlugVip(len(roles) == 1,
                             name=f'failover-{slot}-plug-vip',
                             rebind={'amphorae': amphorae,
                                     'vrrp_ports': ports}),
             failover_network.CommitReplacement(slot),
             member_port_plan.PlanReplacementMemberPorts(slot),
             member_ports.CreateMemberPorts(
                 name=f'failover-{slot}-create-member-ports',
                 rebind={'member_ports_plan': plan},
                 provides=member_ports_key),
             member_ports.AttachMemberPorts(
                 name=f'failover-{slot}-attach-member-ports',
                 rebind={'member_ports': member_ports_key},
                 revert_rebind={'member_ports_plan': plan}),
             member_ports.PlugMemberPorts(
                 name=f'failover-{slot}-plug-member-ports',
                 rebind={'member_ports_plan': plan,
                         'member_ports': member_ports_key}),
             # The whole state to all the amphorae: keepalived starts on
             # the new one, the peer's changes to the new VRRP address.
             lb_state.ResolveCurrentState(
                 name=f'failover-{slot}-resolve-state',
                 rebind={'old_amphora': f'old_amphora_{slot}'},
                 provides=f'lb_state_{slot}'),
             *common.push_state_steps(sriov_vip, keepalived=len(roles) > 1,
                                      lb_state=f'lb_state_{slot}',
                                      name_prefix=f'failover-{slot}-'))
    return flow


def _failover_flow(name, slots, sriov_vip):
    flow = linear_flow.Flow(name)
    flow.add(loadbalancer_status.CollectNoObjects(),
             network.GetVipPlug())
    if not sriov_vip:
        flow.add(security_group.GetSecurityGroup())
    flow.add(*slots)
    flow.add(loadbalancer_status.MarkLoadBalancerActive())
    return flow


def loadbalancer_failover_flow(topology=None, sriov_vip=None):
    """Replace every amphora of the load balancer, the standby first.

    The load balancer (PENDING_UPDATE, as octavia-api set it) ends ACTIVE,
    or ERROR when a slot failed.
    """
    roles = sriov_flavor.topology_roles(topology)
    return _failover_flow(
        'loadbalancer.failover',
        [_slot_flow(slot, failover_network.FindAmphoraToReplace(slot, role),
                    roles, sriov_vip)
         for slot, role in enumerate(reversed(roles))], sriov_vip)


def amphora_failover_flow(topology=None, sriov_vip=None):
    """Replace the store's ``amphora``; the load balancer ends ACTIVE."""
    roles = sriov_flavor.topology_roles(topology)
    return _failover_flow(
        'amphora.failover',
        [_slot_flow(0, failover_network.FindNamedAmphora(0, roles), roles,
                    sriov_vip)], sriov_vip)
