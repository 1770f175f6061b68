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
7. the role's SR-IOV member ports (named after role and network) attached
   to and plugged in the new amphora;
8. the whole state pushed to all amphorae: firewall (sriov_vip), haproxy,
   and keepalived (ACTIVE_STANDBY) with the new VRRP address as the peer.

A failure before the commit deletes the new server and port (the slot's
first task undoes the slot, finding them by role and name, so a worker
that took the job over does it as well) and the load balancer goes to
ERROR; the old amphora, unless step 2 deleted it, keeps serving. A slot
that committed stays: failing over again repairs what is left.

The flows' shape does not depend on the topology (``FLOWS`` factories take
no arguments, and a resumed job must rebuild the same flow): the load
balancer flow has a slot per role ACTIVE_STANDBY has, and a slot past the
flavor's roles is empty.

Store: ``loadbalancer``, ``loadbalancer_id``, ``flavor``,
``availability_zone``, as every job has them; ``amphora.failover`` also
``amphora``: ``{"role": STANDALONE | MASTER | BACKUP, "id": server id}``
(``id`` optional: a server that no longer serves its role is not failed
over again).
"""

from oslo_log import log as logging
from taskflow.patterns import linear_flow
from taskflow import task

from flows.tasks import amphora
from flows.tasks import compute
from flows.tasks import engine
from flows.tasks import firewall
from flows.tasks import identity
from flows.tasks import loadbalancer_status
from flows.tasks import member_ports
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor

LOG = logging.getLogger(__name__)

# The most amphorae a topology has, the slots of a load balancer failover.
SLOTS = max(len(roles) for roles in compute.ROLES.values())


def _vrrp_port(conn, loadbalancer, amphora_dict):
    """What keepalived needs of an amphora's VRRP port."""
    [port] = network.find_vrrp_ports(conn, loadbalancer['loadbalancer_id'],
                                     (amphora_dict['role'],))
    [fixed_ip] = [ip for ip in port.fixed_ips
                  if ip['subnet_id'] == loadbalancer['vip_subnet_id']]
    return {'mac_address': port.mac_address,
            'ip_address': fixed_ip['ip_address']}


class PlanReplacementMemberPorts(task.Task):
    """After a slot's commit: the role's member ports for the new amphora.

    A member port is named after its role and network, so the new amphora
    takes over the ports the old one held (Nova let go of them when it
    deleted the old server), on the networks of the direct members. A
    network without its port (a member whose VF failed, in ERROR) gets
    none here: that member's failure must not fail the failover. The plan
    (``member_ports_plan_<slot>``) is what flows.tasks.member_ports
    attaches and plugs; it makes no port, so their reverts undo nothing.

    A task of this module: it composes flows.tasks.member_ports and
    flows.tasks.firewall.
    """

    def __init__(self, slot):
        super(PlanReplacementMemberPorts, self).__init__(
            name=f'failover-{slot}-plan-member-ports',
            rebind={'amphorae': f'replacement_amphorae_{slot}'},
            provides=f'member_ports_plan_{slot}')

    def execute(self, loadbalancer_id, flavor, amphorae):
        plan = {'amphorae': amphorae, 'plug': [], 'subnets': {},
                'new_ports': [], 'release': []}
        if not amphorae or not flavor[sriov_flavor.ALLOW_MEMBER_SRIOV]:
            return plan
        conn = clients.connection()
        [role] = {amphora_dict['role'] for amphora_dict in amphorae}
        for subnet_id in sorted(member_ports.direct_subnets(
                firewall.current_state(loadbalancer_id))):
            network_id = conn.network.get_subnet(subnet_id).network_id
            if member_ports.find_member_port(conn, loadbalancer_id, role,
                                             network_id) is not None:
                plan['subnets'].setdefault(network_id, []).append(subnet_id)
        plan['plug'] = sorted(plan['subnets'])
        LOG.info('Load balancer %s failover: member networks %s for the new '
                 '%s amphora', loadbalancer_id, plan['plug'] or 'none', role)
        return plan


class PushState(task.Task):
    """After a slot's commit: the whole state to all the amphorae.

    ``push_state`` (the firewall with sriov_vip, the security group without
    it, haproxy), then keepalived for ACTIVE_STANDBY on both amphorae: the
    new one starts it, the peer's changes to the new VRRP address. Every
    push carries the whole state, so there is nothing to undo.

    A task of this module rather than of flows.tasks.amphora: it composes
    flows.tasks.firewall and flows.tasks.engine, which build on that one.
    """

    def __init__(self, slot):
        super(PushState, self).__init__(
            name=f'failover-{slot}-push-state',
            rebind={'old_amphora': f'old_amphora_{slot}'})

    def execute(self, loadbalancer_id, flavor, availability_zone,
                old_amphora):
        if not old_amphora:
            return
        state = firewall.current_state(loadbalancer_id)
        firewall.push_state(state, availability_zone, flavor)
        if len(compute.roles(flavor)) < 2:
            return
        conn = clients.connection()
        amphorae = compute.find_amphorae(conn, loadbalancer_id,
                                         availability_zone)
        if len(amphorae) < 2:
            # A pair that had lost an amphora: keepalived waits for the
            # slot that brings the peer back.
            LOG.warning('Load balancer %s has %d amphora(e): keepalived is '
                        'configured once both are back', loadbalancer_id,
                        len(amphorae))
            return
        sriov_conf.register_opts(sriov_conf.CONF)
        engine.configure_vrrp(state, amphorae,
                              [_vrrp_port(conn, state, amphora_dict)
                               for amphora_dict in amphorae])


def _slot_flow(slot, find_amphora):
    """Replace one amphora; ``find_amphora`` picks it and undoes the slot."""
    amphorae = f'replacement_amphorae_{slot}'
    ports = f'replacement_ports_{slot}'
    plan = f'member_ports_plan_{slot}'
    member_ports_key = f'member_ports_{slot}'
    flow = linear_flow.Flow(f'failover-{slot}')
    flow.add(find_amphora,
             network.DeleteOldAmphoraFirst(slot),
             identity.IssueReplacementIdentity(slot),
             compute.BootReplacementAmphora(slot),
             compute.WaitForAmphorae(
                 name=f'failover-{slot}-wait-for-amphora',
                 rebind={'booted_amphorae': f'booted_replacement_{slot}'},
                 provides=amphorae),
             amphora.WaitForAgents(name=f'failover-{slot}-wait-for-agent',
                                   rebind={'amphorae': amphorae}),
             network.CreateReplacementVrrpPort(slot),
             compute.AttachReplacementPorts(slot),
             amphora.PlugVip(name=f'failover-{slot}-plug-vip',
                             rebind={'amphorae': amphorae,
                                     'vrrp_ports': ports}),
             network.CommitReplacement(slot),
             PlanReplacementMemberPorts(slot),
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
             PushState(slot))
    return flow


def _failover_flow(name, slots):
    flow = linear_flow.Flow(name)
    flow.add(loadbalancer_status.CollectNoObjects(),
             network.GetVipPlug(),
             security_group.GetSecurityGroup())
    flow.add(*slots)
    flow.add(loadbalancer_status.MarkLoadBalancerActive())
    return flow


def loadbalancer_failover_flow(topology=None, sriov_vip=None):
    """Replace every amphora of the load balancer, the standby first.

    The load balancer (PENDING_UPDATE, as octavia-api set it) ends ACTIVE,
    or ERROR when a slot failed.
    """
    return _failover_flow(
        'loadbalancer.failover',
        [_slot_flow(slot, network.FindAmphoraToReplace(slot))
         for slot in range(SLOTS)])


def amphora_failover_flow(topology=None, sriov_vip=None):
    """Replace the store's ``amphora``; the load balancer ends ACTIVE."""
    return _failover_flow('amphora.failover',
                          [_slot_flow(0, network.FindNamedAmphora(0))])
