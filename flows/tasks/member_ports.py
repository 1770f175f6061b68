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
"""SR-IOV member ports: one VF per amphora on each direct member network.

A member with ``vnic_type`` direct (the flavor's ``allow_member_sriov``)
is reached through a port of its own network on every amphora: a Neutron
port of the flavor's ``sriov_vnic_type`` without security groups (Neutron
enforces none on a VF; the amphora firewall's member chain admits the
members' replies), hot-plugged through Nova, which claims a VF on the
amphora's host, and configured by the amphora agent. Later direct members
on the same network use the same ports; the last one leaving that network
takes them away (unplugged, detached, deleted).

A member port is named after its load balancer, amphora role and network
(``member_port_name``), so a revert, a later flow or the load balancer's
deletion finds it in Neutron without any record of its own.

``PlanMemberPorts`` decides what a flow does, from the load balancer's
state once the flow's change is made; the other tasks each work on one
system and undo only what the plan marked as theirs to make, never a port
an earlier member still uses. The plan (``member_ports_plan``)::

    {"amphorae": [amphora dicts, see flows.tasks.compute],
     "plug": [network ids whose ports must be there and plugged],
     "subnets": {network id: [subnet ids the ports need an address on]},
     "new_ports": [[role, network id], ...] ports the plan makes,
     "release": [network ids whose ports go]}

A member port is passed between tasks as ``{"id", "mac_address",
"network_id", "fixed_ips", "vnic_type", "amphora_id", "role"}``.

Where the flows use them: member create ``PlanMemberPorts('member')``,
``plug_flow()``, then the state push; member delete and pool delete
``PlanMemberPorts(<type>, deleting=True)``, the state push, then
``release_flow()``; member batch update ``PlanMemberPorts()``,
``plug_flow()``, the push, ``release_flow()``. The load balancer delete
flow wraps the deletion of the amphorae in ``FindLoadBalancerMemberPorts``
and ``DeleteLoadBalancerMemberPorts``.
"""

from octavia_lib.common import constants as lib_consts
from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_log import log as logging
from taskflow.patterns import linear_flow
from taskflow import task

from flows.tasks import amphora as amphora_tasks
from flows.tasks import compute
from flows.tasks import firewall
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from sriov_octavia import octavia_status as status

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

MEMBER_PORTS_PLAN = 'member_ports_plan'
MEMBER_PORTS = 'member_ports'


class MemberPortError(Exception):
    """A member network cannot get an SR-IOV port; the message says why."""


def find_member_port(conn, loadbalancer_id, role, network_id):
    name = naming.member_port_name(loadbalancer_id, role, network_id)
    return next(iter(conn.network.ports(name=name)), None)


def _attached_ports(conn, amphora):
    """The Neutron ports bound to an amphora, whatever made them."""
    return list(conn.network.ports(device_id=amphora['id']))


def _is_member_port(port, loadbalancer_id):
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
            after = firewall.apply_member_batch(before, pool_id, members)
            created = [member for pool in after['pools']
                       if pool.get(lib_consts.POOL_ID) == pool_id
                       for member in pool['members']]
        else:
            after = firewall.apply_change(before, self.object_type,
                                          provider_object,
                                          deleting=self.deleting)
            created = ([provider_object] if self.object_type == 'member'
                       and not self.deleting else [])
        created_subnets = direct_subnets({'pools': [{'members': created}]})
        conn = clients.connection()
        amphorae = compute.find_amphorae(conn, loadbalancer_id,
                                         availability_zone)
        wanted = _networks_of(conn, direct_subnets(after))
        plug = _networks_of(conn, created_subnets)
        attached = {amphora['id']: _attached_ports(conn, amphora)
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
                for port in ports if _is_member_port(port, loadbalancer_id)}
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
                        not _is_member_port(port, lb_id)):
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


def _new_ports(plan):
    return {(role, network_id) for role, network_id in plan['new_ports']}


def _port_dict(port, amphora):
    return {'id': port.id, 'mac_address': port.mac_address,
            'network_id': port.network_id,
            'fixed_ips': [dict(fixed_ip) for fixed_ip in port.fixed_ips],
            'vnic_type': port.binding_vnic_type,
            'amphora_id': amphora['id'], 'role': amphora['role']}


def _plan_ports(conn, loadbalancer_id, plan, networks, only_new=False):
    """``[(amphora, port)]`` of the plan's amphorae on ``networks``.

    ``only_new``: only the ports the plan makes. Ports not in Neutron are
    left out.
    """
    new = _new_ports(plan)
    found = []
    for network_id in networks:
        for amphora in plan['amphorae']:
            if only_new and (amphora['role'], network_id) not in new:
                continue
            port = find_member_port(conn, loadbalancer_id, amphora['role'],
                                    network_id)
            if port is not None:
                found.append((amphora, port))
    return found


def _interface_timeout():
    sriov_conf.register_opts(CONF)
    return CONF.sriov_amphora.interface_timeout


class CreateMemberPorts(task.Task):
    """Neutron: a direct port per amphora on each network to plug.

    An existing port is used again; one lacking an address on a subnet a
    direct member is on gets it. Provides ``member_ports``. On revert the
    ports the plan made are deleted, found by name.
    """

    default_provides = MEMBER_PORTS

    def execute(self, loadbalancer_id, flavor, member_ports_plan):
        plan = member_ports_plan
        if not plan['plug']:
            return []
        conn = clients.connection()
        ports = []
        for network_id in plan['plug']:
            subnet_ids = plan['subnets'][network_id]
            for amphora in plan['amphorae']:
                port = find_member_port(conn, loadbalancer_id,
                                        amphora['role'], network_id)
                if port is None:
                    port = conn.network.create_port(
                        name=naming.member_port_name(
                            loadbalancer_id, amphora['role'], network_id),
                        description=f'SR-IOV member port of amphora '
                                    f'{amphora["id"]} of load balancer '
                                    f'{loadbalancer_id}',
                        network_id=network_id,
                        fixed_ips=[{'subnet_id': subnet_id}
                                   for subnet_id in subnet_ids],
                        binding_vnic_type=flavor[
                            sriov_flavor.SRIOV_VNIC_TYPE],
                        # Neutron would accept them and enforce nothing on
                        # a VF; the amphora firewall does that job.
                        security_group_ids=[])
                    LOG.info('Created member port %s (vnic type %s) on '
                             'network %s for amphora %s of load balancer '
                             '%s', port.id, port.binding_vnic_type,
                             network_id, amphora['id'], loadbalancer_id)
                else:
                    port = self._add_subnets(conn, port, subnet_ids)
                ports.append(_port_dict(port, amphora))
        return ports

    @staticmethod
    def _add_subnets(conn, port, subnet_ids):
        missing = set(subnet_ids) - {fixed_ip['subnet_id']
                                     for fixed_ip in port.fixed_ips}
        if not missing:
            return port
        fixed_ips = [{'subnet_id': fixed_ip['subnet_id'],
                      'ip_address': fixed_ip['ip_address']}
                     for fixed_ip in port.fixed_ips]
        fixed_ips += [{'subnet_id': subnet_id}
                      for subnet_id in sorted(missing)]
        LOG.info('Member port %s gets addresses on subnets %s', port.id,
                 ', '.join(sorted(missing)))
        return conn.network.update_port(port, fixed_ips=fixed_ips)

    def revert(self, loadbalancer_id, member_ports_plan, *args, **kwargs):
        if not member_ports_plan['new_ports']:
            return
        with compute.reverting(f'the member ports made for load balancer '
                               f'{loadbalancer_id}'):
            conn = clients.connection()
            for _amphora, port in _plan_ports(
                    conn, loadbalancer_id, member_ports_plan,
                    member_ports_plan['plug'], only_new=True):
                conn.network.delete_port(port, ignore_missing=True)
                LOG.info('Deleted member port %s of load balancer %s',
                         port.id, loadbalancer_id)


class AttachMemberPorts(task.Task):
    """Nova: hot-plug the member ports; a direct one claims a VF.

    On revert the ports the plan made are detached again.
    """

    def execute(self, loadbalancer_id, member_ports):
        if not member_ports:
            return
        conn = clients.connection()
        for port in member_ports:
            if compute.is_attached(conn, port['amphora_id'], port['id']):
                continue
            try:
                conn.compute.create_server_interface(port['amphora_id'],
                                                     port_id=port['id'])
            except os_exceptions.SDKException as error:
                network = conn.network.get_network(port['network_id'])
                LOG.error('Nova could not attach member port %s (vnic type '
                          '%s) on network %s to amphora %s of load balancer '
                          '%s: %s. Check the free VFs of the amphora\'s host '
                          'on physical network %s ([pci] device_spec on the '
                          'compute host, openstack server show %s for the '
                          'host), that the host aggregate the compute '
                          'flavor selects has VFs on that network, and the '
                          'nova-compute log. The member goes to ERROR; the '
                          'load balancer is unchanged.', port['id'],
                          port['vnic_type'], port['network_id'],
                          port['amphora_id'], loadbalancer_id, error,
                          network.provider_physical_network,
                          port['amphora_id'])
                raise MemberPortError(
                    f'member port {port["id"]} could not be attached to '
                    f'amphora {port["amphora_id"]}: {error}') from error
            LOG.info('Attached member port %s to amphora %s', port['id'],
                     port['amphora_id'])

    def revert(self, loadbalancer_id, member_ports_plan, *args, **kwargs):
        if not member_ports_plan['new_ports']:
            return
        with compute.reverting(f'the attachment of the member ports made '
                               f'for load balancer {loadbalancer_id}'):
            conn = clients.connection()
            for amphora, port in _plan_ports(
                    conn, loadbalancer_id, member_ports_plan,
                    member_ports_plan['plug'], only_new=True):
                compute.detach_port(conn, amphora['id'], port.id)


def _subnet_plug(conn, fixed_ip):
    subnet = conn.network.get_subnet(fixed_ip['subnet_id'])
    return {'ip_address': fixed_ip['ip_address'],
            'subnet_cidr': subnet.cidr,
            'gateway': subnet.gateway_ip,
            'host_routes': [{'destination': route['destination'],
                             'nexthop': route['nexthop']}
                            for route in subnet.host_routes or ()]}


class PlugMemberPorts(task.Task):
    """Amphora agents: configure each member VF (addresses, MTU, routes).

    On revert the VFs of the ports the plan made are unplugged.
    """

    def execute(self, member_ports, member_ports_plan):
        if not member_ports:
            return
        conn = clients.connection()
        amphorae = {amphora['id']: amphora
                    for amphora in member_ports_plan['amphorae']}
        timeout = _interface_timeout()
        for port in member_ports:
            mtu = conn.network.get_network(port['network_id']).mtu
            fixed_ips = [_subnet_plug(conn, fixed_ip)
                         for fixed_ip in port['fixed_ips']]
            amphora = amphorae[port['amphora_id']]
            with amphora_tasks.agent_for(amphora) as agent:
                agent.wait_for_interface(port['mac_address'], timeout)
                interface = agent.plug_network(port['mac_address'],
                                               fixed_ips, mtu=mtu)
            LOG.info('Amphora %s: member port %s plugged on %s (%s)',
                     port['amphora_id'], port['id'], interface.get('name'),
                     ', '.join(ip['ip_address'] for ip in fixed_ips))

    def revert(self, loadbalancer_id, member_ports_plan, *args, **kwargs):
        if not member_ports_plan['new_ports']:
            return
        with compute.reverting(f'the plugging of the member ports made for '
                               f'load balancer {loadbalancer_id}'):
            for amphora, port in _plan_ports(
                    clients.connection(), loadbalancer_id,
                    member_ports_plan, member_ports_plan['plug'],
                    only_new=True):
                with amphora_tasks.agent_for(amphora) as agent:
                    agent.unplug_network(port.mac_address, missing_ok=True)


class _ReleaseTask(task.Task):
    """Works on the member ports of the plan's networks to release."""

    what = None

    def execute(self, loadbalancer_id, member_ports_plan):
        if not member_ports_plan['release']:
            return
        conn = clients.connection()
        for amphora, port in _plan_ports(conn, loadbalancer_id,
                                         member_ports_plan,
                                         member_ports_plan['release']):
            self.release(conn, amphora, port)

    def revert(self, loadbalancer_id, member_ports_plan, *args, **kwargs):
        if member_ports_plan['release']:
            # Nothing to give back: the ports serve no member any more.
            LOG.warning('%s of the unused member ports on networks %s of '
                        'load balancer %s failed; the next member change '
                        'of the load balancer releases what is attached, '
                        'openstack port list --name %s<role>-<network> '
                        'shows what is left.', self.what,
                        ', '.join(member_ports_plan['release']),
                        loadbalancer_id,
                        naming.member_port_prefix(loadbalancer_id))


class UnplugMemberPorts(_ReleaseTask):
    """Amphora agents: take the unused member VFs down, addresses off."""

    what = 'Unplugging'

    def release(self, conn, amphora, port):
        if port.device_id != amphora['id']:
            return
        with amphora_tasks.agent_for(amphora) as agent:
            agent.unplug_network(port.mac_address, missing_ok=True)
        LOG.info('Amphora %s: member port %s unplugged', amphora['id'],
                 port.id)


class DetachMemberPorts(_ReleaseTask):
    """Nova: detach the unused member ports, giving their VFs back."""

    what = 'Detaching'

    def release(self, conn, amphora, port):
        compute.detach_port(conn, amphora['id'], port.id)


class DeleteMemberPorts(_ReleaseTask):
    """Neutron: delete the unused member ports."""

    what = 'Deleting'

    def release(self, conn, amphora, port):
        conn.network.delete_port(port, ignore_missing=True)
        LOG.info('Deleted member port %s of amphora %s', port.id,
                 amphora['id'])


def plug_flow():
    """Create, attach and plug the plan's member ports (sub-flow).

    Needs ``member_ports_plan`` (``PlanMemberPorts``), ``loadbalancer_id``
    and ``flavor``; provides ``member_ports``.
    """
    flow = linear_flow.Flow('plug-member-ports')
    flow.add(CreateMemberPorts(), AttachMemberPorts(), PlugMemberPorts())
    return flow


def release_flow():
    """Unplug, detach and delete the plan's unused member ports."""
    flow = linear_flow.Flow('release-member-ports')
    flow.add(UnplugMemberPorts(), DetachMemberPorts(), DeleteMemberPorts())
    return flow


class FindLoadBalancerMemberPorts(task.Task):
    """Load balancer delete, before the amphorae go: their member ports.

    Nova only unbinds the ports it did not make when it deletes a server,
    so the member ports are collected while the amphorae still hold them
    and deleted by ``DeleteLoadBalancerMemberPorts`` once they are gone.
    Provides ``lb_member_port_ids``; reads only.
    """

    default_provides = 'lb_member_port_ids'

    def execute(self, loadbalancer_id):
        conn = clients.connection()
        found = set()
        for server in compute.find_servers(conn, loadbalancer_id):
            found.update(port.id for port in _attached_ports(
                conn, {'id': server.id})
                if _is_member_port(port, loadbalancer_id))
        return sorted(found)


class DeleteLoadBalancerMemberPorts(task.Task):
    """Load balancer delete, after the amphorae: delete their member ports.

    Nothing to give back on revert; a port Neutron refused to delete is
    named in the log (once the amphorae are gone no name lookup finds the
    member networks again).
    """

    def execute(self, loadbalancer_id, lb_member_port_ids):
        if not lb_member_port_ids:
            return
        conn = clients.connection()
        failed = []
        for port_id in lb_member_port_ids:
            try:
                conn.network.delete_port(port_id, ignore_missing=True)
            except os_exceptions.SDKException as error:
                failed.append(port_id)
                LOG.error('Could not delete member port %s of load balancer '
                          '%s: %s', port_id, loadbalancer_id, error)
                continue
            LOG.info('Deleted member port %s of load balancer %s', port_id,
                     loadbalancer_id)
        if failed:
            raise MemberPortError(
                f'member ports {", ".join(failed)} of load balancer '
                f'{loadbalancer_id} could not be deleted; delete them with '
                f'openstack port delete')
