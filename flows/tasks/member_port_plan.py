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
"""Member ports: which member networks a flow plugs and releases.

As Octavia's amphora driver does, every amphora gets a port of each
member network it is not on already (flows.tasks.member_ports): an
SR-IOV port for a direct member (the flavor's ``allow_member_sriov``), a
normal one for any other member. A member port is named after its load
balancer, amphora role and network (``member_port_name``), whatever its
kind, so a revert, a later flow or the load balancer's deletion finds it
in Neutron without any record of its own.

Per network, the first port decides the kind; every member there uses
it:

- the VIP network, and a network an amphora is attached to with a port
  that is not one of this load balancer's member ports (the management
  network, a port attached by hand), get no member port: normal members
  are reached through that port, direct members go to ERROR;
- where the member ports are normal, a direct member goes to ERROR (a
  normal port cannot become a VF); where they are SR-IOV ports, a normal
  member uses them;
- a network without member ports gets SR-IOV ports when a direct member
  the flow creates is on it, normal ones otherwise.

``PlanMemberPorts`` decides what a flow does, from the load balancer's
state once the flow's change is made; the other tasks each work on one
system and undo only what the plan marked as theirs to make, never a port
an earlier member still uses. The plan (``member_ports_plan``)::

    {"amphorae": [amphora dicts, see sriov_octavia.amphorae],
     "plug": [network ids whose ports must be there and plugged],
     "subnets": {network id: [subnet ids the ports need an address on]},
     "vnic_types": {network id: vnic type of the network's ports},
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
VNIC_TYPE_NORMAL = lib_consts.VNIC_TYPE_NORMAL


class MemberPortError(Exception):
    """A member network cannot get the port it needs; the message says why."""


def find_member_port(conn, loadbalancer_id, role, network_id):
    name = naming.member_port_name(loadbalancer_id, role, network_id)
    return next(iter(conn.network.ports(name=name)), None)


def attached_ports(conn, amphora):
    """The Neutron ports bound to an amphora, whatever made them."""
    return list(conn.network.ports(device_id=amphora['id']))


def is_member_port(port, loadbalancer_id):
    return (port.name or '').startswith(
        naming.member_port_prefix(loadbalancer_id))


def vnic_type_of(port):
    return port.binding_vnic_type or VNIC_TYPE_NORMAL


def member_subnets(state):
    """``{subnet id: a direct member is on it}`` of a load balancer dict.

    Members without a subnet are reached through the VIP subnet.
    """
    subnets = {}
    # Unset lists arrive as None, lists cut by a recursion guard hold None.
    for pool in state.get('pools') or ():
        for member in (pool or {}).get('members') or ():
            if member and member.get('subnet_id'):
                direct = (member.get(lib_consts.VNIC_TYPE) ==
                          lib_consts.VNIC_TYPE_DIRECT)
                subnets[member['subnet_id']] = (
                    subnets.get(member['subnet_id'], False) or direct)
    return subnets


def _subnet_networks(conn, state):
    """``networks_of(subnet_ids)``: ``{network id: sorted subnet ids}``.

    Each subnet is read from Neutron once per plan; the VIP subnet's
    network is in the state.
    """
    known = {}
    if state.get('vip_subnet_id') and state.get('vip_network_id'):
        known[state['vip_subnet_id']] = state['vip_network_id']

    def networks_of(subnet_ids):
        networks = {}
        for subnet_id in sorted(subnet_ids):
            if subnet_id not in known:
                known[subnet_id] = conn.network.get_subnet(
                    subnet_id).network_id
            networks.setdefault(known[subnet_id], []).append(subnet_id)
        return networks
    return networks_of


def _empty_plan():
    return {'amphorae': [], 'plug': [], 'subnets': {}, 'vnic_types': {},
            'new_ports': [], 'release': []}


def _vip_network_error(lb_id, network_id):
    LOG.error('Load balancer %s: a direct (SR-IOV) member on the VIP '
              'network %s cannot get a VF of its own; the amphorae reach '
              'that network through their VIP port. Create the member '
              'without --request-sriov.', lb_id, network_id)
    return MemberPortError(f'network {network_id} is the VIP network of '
                           f'load balancer {lb_id}')


def _attached_error(lb_id, network_id, amphora, port):
    LOG.error('Amphora %s of load balancer %s is attached to network %s '
              'already with port %s (vnic type %s), not an SR-IOV member '
              'port: a direct member cannot get a VF on that network. '
              'Check the amphora\'s interfaces (openstack server show %s); '
              'create the member without --request-sriov or on another '
              'network.', amphora['id'], lb_id, network_id, port.id,
              port.binding_vnic_type, amphora['id'])
    return MemberPortError(f'network {network_id} is attached to amphora '
                           f'{amphora["id"]} with non-SR-IOV port {port.id}')


def _normal_ports_error(lb_id, network_id, ports):
    port_ids = ', '.join(sorted(port.id for port in ports))
    LOG.error('Load balancer %s: its amphorae are attached to network %s '
              'with normal (non-SR-IOV) member ports %s, made for the '
              'normal members there: a direct member cannot get a VF on '
              'that network, and the members there share one port per '
              'amphora. Create the member without --request-sriov, or '
              'with it once the normal members of that network are gone.',
              lb_id, network_id, port_ids)
    return MemberPortError(f'network {network_id} is attached to the '
                           f'amphorae of load balancer {lb_id} with '
                           f'non-SR-IOV member ports {port_ids}')


def network_vnic_type(state, network_id, direct, flavor, amphorae, attached,
                      ports):
    """The vnic type of a network's member ports; None: it needs none.

    :param direct: a direct member the flow creates is on the network.
    :param attached: ``{amphora id: [ports bound to it]}``.
    :param ports: ``{role: the role's member port on the network or
        None}``.
    :raises MemberPortError: a direct member cannot have a VF there.
    """
    lb_id = state['loadbalancer_id']
    if network_id == state.get('vip_network_id'):
        if direct:
            raise _vip_network_error(lb_id, network_id)
        return None
    for amphora in amphorae:
        for port in attached[amphora['id']]:
            if (port.network_id == network_id and
                    not is_member_port(port, lb_id)):
                if direct:
                    raise _attached_error(lb_id, network_id, amphora, port)
                LOG.info('Amphora %s of load balancer %s is attached to '
                         'network %s with port %s already: the members '
                         'there get no member port.', amphora['id'], lb_id,
                         network_id, port.id)
                return None
    existing = [port for port in ports.values() if port is not None]
    kinds = {vnic_type_of(port) for port in existing}
    if direct and VNIC_TYPE_NORMAL in kinds:
        raise _normal_ports_error(
            lb_id, network_id, [port for port in existing
                                if vnic_type_of(port) == VNIC_TYPE_NORMAL])
    if kinds:
        # An SR-IOV port serves normal members as well.
        return min(kinds - {VNIC_TYPE_NORMAL} or kinds)
    return (flavor[sriov_flavor.SRIOV_VNIC_TYPE] if direct
            else VNIC_TYPE_NORMAL)


class PlanMemberPorts(task.Task):
    """Which member networks a flow plugs and releases on the amphorae.

    Only reads Octavia, Neutron and Nova, so there is nothing to undo.

    :param object_type: the store key of the object the flow changes
        (``member``, ``pool``; ``loadbalancer`` for a load balancer created
        with its members), or None for a member batch (``members`` and
        ``pool_id`` in the store).
    :param deleting: the flow deletes the object.

    The networks to plug are those of the members the flow creates (the
    store's member, or a batch's members); a member that failed before
    keeps no claim on a port, so it cannot fail the flows of other
    members. The networks to release are those where the load balancer
    has member ports but no member once the change is made.

    :raises MemberPortError: a direct member the flow creates cannot get
        a VF on its network (``network_vnic_type``).
    """

    default_provides = MEMBER_PORTS_PLAN

    def __init__(self, object_type=None, deleting=False):
        rebind = {'provider_object': object_type} if object_type else {}
        super(PlanMemberPorts, self).__init__(
            name=f'{object_type or "member-batch"}-plan-member-ports',
            rebind=rebind)
        self.object_type = object_type
        self.deleting = deleting

    def _after_change(self, before, provider_object, members, pool_id):
        """The state after the flow's change, and the members it creates."""
        if self.object_type == 'loadbalancer':
            # Created in one call with its graph: every member is new.
            return before, [member for pool in before.get('pools') or ()
                            if pool for member in pool.get('members') or ()
                            if member]
        if self.object_type is None:
            after = lb_state.apply_member_batch(before, pool_id, members)
            return after, [member for pool in after['pools']
                           if pool.get(lib_consts.POOL_ID) == pool_id
                           for member in pool['members']]
        after = lb_state.apply_change(before, self.object_type,
                                      provider_object,
                                      deleting=self.deleting)
        created = ([provider_object] if self.object_type == 'member'
                   and not self.deleting else [])
        return after, created

    def execute(self, loadbalancer_id, flavor, availability_zone,
                provider_object=None, members=None, pool_id=None):
        if self.object_type == 'loadbalancer':
            # The create job holds the whole graph created with it.
            before = provider_object
        else:
            before = status.StatusReporter().get_loadbalancer(
                loadbalancer_id)
        after, created = self._after_change(before, provider_object,
                                            members, pool_id)
        created_subnets = member_subnets({'pools': [{'members': created}]})
        before_subnets = member_subnets(before)
        after_subnets = member_subnets(after)
        plan = _empty_plan()
        if not (before_subnets or after_subnets):
            # Every member is reached through the VIP subnet.
            return plan
        conn = clients.connection()
        networks_of = _subnet_networks(conn, after)
        amphorae = amphorae_lib.find_amphorae(conn, loadbalancer_id,
                                              availability_zone)
        wanted = networks_of(after_subnets)
        attached = {amphora['id']: attached_ports(conn, amphora)
                    for amphora in amphorae}
        plan['amphorae'] = amphorae
        for network_id, subnet_ids in sorted(
                networks_of(created_subnets).items()):
            ports = {amphora['role']: find_member_port(
                conn, loadbalancer_id, amphora['role'], network_id)
                for amphora in amphorae}
            vnic_type = network_vnic_type(
                after, network_id,
                any(created_subnets[subnet_id] for subnet_id in subnet_ids),
                flavor, amphorae, attached, ports)
            if vnic_type is None:
                continue
            plan['plug'].append(network_id)
            plan['subnets'][network_id] = wanted.get(network_id, subnet_ids)
            plan['vnic_types'][network_id] = vnic_type
            plan['new_ports'] += [[amphora['role'], network_id]
                                  for amphora in amphorae
                                  if ports[amphora['role']] is None]
        # Member ports the amphorae hold, and the ports the members
        # leaving may have left unattached, are released when unused.
        held = {port.network_id for ports in attached.values()
                for port in ports if is_member_port(port, loadbalancer_id)}
        held.update(
            network_id for network_id
            in set(networks_of(before_subnets)) - set(wanted) - held
            if any(find_member_port(conn, loadbalancer_id, amphora['role'],
                                    network_id) for amphora in amphorae))
        plan['release'] = sorted(held - set(wanted))
        LOG.info('Load balancer %s member ports: plug %s (vnic types %s, '
                 'new ports %s), release %s', loadbalancer_id,
                 plan['plug'] or 'none', plan['vnic_types'] or 'none',
                 plan['new_ports'] or 'none', plan['release'] or 'none')
        return plan


class PlanReplacementMemberPorts(task.Task):
    """After a slot's commit: the role's member ports for the new amphora.

    A member port is named after its role and network, so the new amphora
    takes over the ports the old one held (Nova let go of them when it
    deleted the old server), normal and SR-IOV alike, on the networks of
    the members. A network without its port (a member whose VF failed, in
    ERROR; a network reached through another port) gets none here: no
    member's failure may fail the failover. The plan
    (``member_ports_plan_<slot>``) is what flows.tasks.member_ports
    attaches and plugs; it makes no port, so their reverts undo nothing.
    """

    def __init__(self, slot):
        super(PlanReplacementMemberPorts, self).__init__(
            name=f'failover-{slot}-plan-member-ports',
            rebind={'amphorae': f'replacement_amphorae_{slot}'},
            provides=f'member_ports_plan_{slot}')

    def execute(self, loadbalancer_id, amphorae):
        plan = dict(_empty_plan(), amphorae=amphorae)
        if not amphorae:
            return plan
        state = lb_state.current_state(loadbalancer_id)
        subnets = member_subnets(state)
        if not subnets:
            return plan
        conn = clients.connection()
        [role] = {amphora_dict['role'] for amphora_dict in amphorae}
        for network_id, subnet_ids in sorted(
                _subnet_networks(conn, state)(subnets).items()):
            port = find_member_port(conn, loadbalancer_id, role, network_id)
            if port is not None:
                plan['subnets'][network_id] = subnet_ids
                plan['vnic_types'][network_id] = vnic_type_of(port)
        plan['plug'] = sorted(plan['subnets'])
        LOG.info('Load balancer %s failover: member networks %s for the new '
                 '%s amphora', loadbalancer_id, plan['plug'] or 'none', role)
        return plan
