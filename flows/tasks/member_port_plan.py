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
"""SR-IOV member ports: which member networks a flow plugs and releases.

A direct member (the flavor's ``allow_member_sriov``) is reached through
a port of its own network on every amphora (flows.tasks.member_ports). A
member port is named after its load balancer, amphora role and network
(``member_port_name``), so a revert, a later flow or the load balancer's
deletion finds it in Neutron without any record of its own.

``PlanMemberPorts`` decides what a flow does, from the load balancer's
state once the flow's change is made; the other tasks each work on one
system and undo only what the plan marked as theirs to make, never a port
an earlier member still uses. The plan (``member_ports_plan``)::

    {"amphorae": [amphora dicts, see sriov_octavia.amphorae],
     "plug": [network ids whose ports must be there and plugged],
     "subnets": {network id: [subnet ids the ports need an address on]},
     "new_ports": [[role, network id], ...] ports the plan makes,
     "release": [network ids whose ports go]}

For a failover slot ``PlanReplacementMemberPorts`` plans the new
amphora's ports.
"""

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging
from taskflow import task

from flows.tasks import lb_state
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import clients
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from sriov_octavia import octavia_status as status

LOG = logging.getLogger(__name__)

MEMBER_PORTS_PLAN = 'member_ports_plan'


class MemberPortError(Exception):
    """A member network cannot get an SR-IOV port; the message says why."""


def find_member_port(conn, loadbalancer_id, role, network_id):
    name = naming.member_port_name(loadbalancer_id, role, network_id)
    return next(iter(conn.network.ports(name=name)), None)


def attached_ports(conn, amphora):
    """The Neutron ports bound to an amphora, whatever made them."""
    return list(conn.network.ports(device_id=amphora['id']))


def is_member_port(port, loadbalancer_id):
    return (port.name or '').startswith(
        naming.member_port_prefix(loadbalancer_id))


def direct_subnets(state):
    """``{subnet id}`` of the direct members of a load balancer dict."""
    # Unset lists arrive as None, lists cut by a recursion guard hold None.
    return {member['subnet_id']
            for pool in state.get('pools') or () if pool
            for member in pool.get('members') or () if member
            if member.get(lib_consts.VNIC_TYPE) ==
            lib_consts.VNIC_TYPE_DIRECT and member.get('subnet_id')}


def _networks_of(conn, subnet_ids):
    """``{network id: sorted subnet ids}`` of the given subnets."""
    networks = {}
    for subnet_id in sorted(subnet_ids):
        subnet = conn.network.get_subnet(subnet_id)
        networks.setdefault(subnet.network_id, []).append(subnet_id)
    return networks


def _empty_plan():
    return {'amphorae': [], 'plug': [], 'subnets': {}, 'new_ports': [],
            'release': []}


class PlanMemberPorts(task.Task):
    """Which member networks a flow plugs and releases on the amphorae.

    Only reads Octavia, Neutron and Nova, so there is nothing to undo.

    :param object_type: the store key of the object the flow changes
        (``member``, ``pool``), or None for a member batch (``members`` and
        ``pool_id`` in the store).
    :param deleting: the flow deletes the object.

    The networks to plug are those of the direct members the flow creates
    (the store's member, or a batch's members); a direct member that
    failed before keeps no claim on a VF, so it cannot fail the flows of
    other members. The networks to release are those where the load
    balancer has member ports but no direct member once the change is
    made.

    :raises MemberPortError: a network to plug is the VIP network or is
        attached to an amphora with a port that is not a member port of
        this load balancer (a normal port cannot become a VF).
    """

    default_provides = MEMBER_PORTS_PLAN

    def __init__(self, object_type=None, deleting=False):
        rebind = {'provider_object': object_type} if object_type else {}
        super(PlanMemberPorts, self).__init__(
            name=f'{object_type or "member-batch"}-plan-member-ports',
            rebind=rebind)
        self.object_type = object_type
        self.deleting = deleting

    def execute(self, loadbalancer_id, flavor, availability_zone,
                provider_object=None, members=None, pool_id=None):
        if not flavor[sriov_flavor.ALLOW_MEMBER_SRIOV]:
            return _empty_plan()
        before = status.StatusReporter().get_loadbalancer(loadbalancer_id)
        if self.object_type is None:
            after = lb_state.apply_member_batch(before, pool_id, members)
            created = [member for pool in after['pools']
                       if pool.get(lib_consts.POOL_ID) == pool_id
                       for member in pool['members']]
        else:
            after = lb_state.apply_change(before, self.object_type,
                                          provider_object,
                                          deleting=self.deleting)
            created = ([provider_object] if self.object_type == 'member'
                       and not self.deleting else [])
        created_subnets = direct_subnets({'pools': [{'members': created}]})
        conn = clients.connection()
        amphorae = amphorae_lib.find_amphorae(conn, loadbalancer_id,
                                              availability_zone)
        wanted = _networks_of(conn, direct_subnets(after))
        plug = _networks_of(conn, created_subnets)
        attached = {amphora['id']: attached_ports(conn, amphora)
                    for amphora in amphorae}
        plan = _empty_plan()
        plan['amphorae'] = amphorae
        plan['plug'] = sorted(plug)
        plan['subnets'] = {network_id: wanted.get(network_id, subnets)
                           for network_id, subnets in plug.items()}
        for network_id in plan['plug']:
            self._check_network(after, network_id, amphorae, attached)
            for amphora in amphorae:
                if find_member_port(conn, loadbalancer_id, amphora['role'],
                                    network_id) is None:
                    plan['new_ports'].append([amphora['role'], network_id])
        # Member ports the amphorae hold, and the ports the members
        # leaving may have left unattached, are released when unused.
        held = {port.network_id for ports in attached.values()
                for port in ports if is_member_port(port, loadbalancer_id)}
        held.update(
            network_id
            for network_id in _networks_of(conn, direct_subnets(before))
            if any(find_member_port(conn, loadbalancer_id, amphora['role'],
                                    network_id) for amphora in amphorae))
        plan['release'] = sorted(held - set(wanted))
        LOG.info('Load balancer %s member ports: plug %s (new ports %s), '
                 'release %s', loadbalancer_id, plan['plug'] or 'none',
                 plan['new_ports'] or 'none', plan['release'] or 'none')
        return plan

    @staticmethod
    def _check_network(state, network_id, amphorae, attached):
        lb_id = state['loadbalancer_id']
        if network_id == state.get('vip_network_id'):
            LOG.error('Load balancer %s: a direct (SR-IOV) member on the '
                      'VIP network %s cannot get a VF of its own; the '
                      'amphorae reach that network through their VIP port. '
                      'Create the member without --request-sriov.', lb_id,
                      network_id)
            raise MemberPortError(f'network {network_id} is the VIP network '
                                  f'of load balancer {lb_id}')
        for amphora in amphorae:
            for port in attached[amphora['id']]:
                if (port.network_id == network_id and
                        not is_member_port(port, lb_id)):
                    LOG.error('Amphora %s of load balancer %s is attached '
                              'to network %s already with port %s (vnic '
                              'type %s), not an SR-IOV member port: a direct '
                              'member cannot get a VF on that network. '
                              'Check the amphora\'s interfaces (openstack '
                              'server show %s); create the member without '
                              '--request-sriov or on another network.',
                              amphora['id'], lb_id, network_id, port.id,
                              port.binding_vnic_type, amphora['id'])
                    raise MemberPortError(
                        f'network {network_id} is attached to amphora '
                        f'{amphora["id"]} with non-SR-IOV port {port.id}')


class PlanReplacementMemberPorts(task.Task):
    """After a slot's commit: the role's member ports for the new amphora.

    A member port is named after its role and network, so the new amphora
    takes over the ports the old one held (Nova let go of them when it
    deleted the old server), on the networks of the direct members. A
    network without its port (a member whose VF failed, in ERROR) gets
    none here: that member's failure must not fail the failover. The plan
    (``member_ports_plan_<slot>``) is what flows.tasks.member_ports
    attaches and plugs; it makes no port, so their reverts undo nothing.
    """

    def __init__(self, slot):
        super(PlanReplacementMemberPorts, self).__init__(
            name=f'failover-{slot}-plan-member-ports',
            rebind={'amphorae': f'replacement_amphorae_{slot}'},
            provides=f'member_ports_plan_{slot}')

    def execute(self, loadbalancer_id, flavor, amphorae):
        plan = dict(_empty_plan(), amphorae=amphorae)
        if not amphorae or not flavor[sriov_flavor.ALLOW_MEMBER_SRIOV]:
            return plan
        conn = clients.connection()
        [role] = {amphora_dict['role'] for amphora_dict in amphorae}
        for subnet_id in sorted(direct_subnets(
                lb_state.current_state(loadbalancer_id))):
            network_id = conn.network.get_subnet(subnet_id).network_id
            if find_member_port(conn, loadbalancer_id, role,
                                network_id) is not None:
                plan['subnets'].setdefault(network_id, []).append(subnet_id)
        plan['plug'] = sorted(plan['subnets'])
        LOG.info('Load balancer %s failover: member networks %s for the new '
                 '%s amphora', loadbalancer_id, plan['plug'] or 'none', role)
        return plan
