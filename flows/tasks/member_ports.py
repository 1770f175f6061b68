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
"""Member ports: one port per amphora on each member network.

As Octavia's amphora driver does, a member on a network the amphorae are
not on is reached through a port of its own network on every amphora,
hot-plugged through Nova and configured by the amphora agent with
source routing (the port's addresses answer through its own routing
table). Which networks get ports, and of which kind, is planned by
flows.tasks.member_port_plan:

- for a direct member (the flavor's ``allow_member_sriov``) a Neutron
  port of the flavor's ``sriov_vnic_type`` without security groups
  (Neutron enforces none on a VF; the amphora firewall's member chain
  admits the members' replies), for which Nova claims a VF on the
  amphora's host;
- for any other member a normal port, which Neutron gives the project's
  default security group, as Octavia does its member ports: Neutron's
  groups are stateful, so the replies to the amphora's own connections
  pass them. The amphora firewall filters VFs only, so it lets them
  through such an interface untouched.

Later members on the same network use the same ports; the last one
leaving that network takes them away (unplugged, detached, deleted).

The tasks here each work on one system and undo only what the plan
marked as theirs to make, never a port an earlier member still uses. A
member port is passed between tasks as ``{"id", "mac_address",
"network_id", "fixed_ips", "vnic_type", "amphora_id", "role"}``.

The load balancer delete flow wraps the deletion of the amphorae in
``FindLoadBalancerMemberPorts`` and ``DeleteLoadBalancerMemberPorts``.
"""

from openstack import exceptions as os_exceptions
from oslo_log import log as logging
from taskflow.patterns import linear_flow
from taskflow import task

from flows.tasks import compute
from flows.tasks import member_port_plan
from flows.tasks import network
from flows.tasks import undo
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

MEMBER_PORTS = 'member_ports'
MemberPortError = member_port_plan.MemberPortError
find_port = member_port_plan.find_member_port


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
            port = find_port(conn, loadbalancer_id, amphora['role'],
                             network_id)
            if port is not None:
                found.append((amphora, port))
    return found


def _vnic_type(plan, network_id, flavor):
    # A plan made before normal member ports existed planned VFs only.
    return ((plan.get('vnic_types') or {}).get(network_id) or
            flavor[sriov_flavor.SRIOV_VNIC_TYPE])


def _interface_timeout():
    return CONF.sriov_amphora.interface_timeout


class _PlugTask(task.Task):
    """Makes the plan's ports; on revert undoes only the new ones.

    ``undo(conn, amphora, port)`` undoes the task's work on one port the
    plan made; ports an earlier member uses are never touched.
    """

    undoing = None

    def revert(self, loadbalancer_id, member_ports_plan, *args, **kwargs):
        if not member_ports_plan['new_ports']:
            return
        with undo.reverting(f'the {self.undoing} of the member ports '
                            f'made for load balancer {loadbalancer_id}'):
            conn = clients.connection()
            for amphora, port in _plan_ports(
                    conn, loadbalancer_id, member_ports_plan,
                    member_ports_plan['plug'], only_new=True):
                self.undo(conn, amphora, port)


class CreateMemberPorts(_PlugTask):
    """Neutron: a port per amphora on each network to plug.

    New ports are of the plan's vnic type for their network. An existing
    port is used again; one lacking an address on a subnet a member is on
    gets it. Provides ``member_ports``. On revert the ports the plan made
    are deleted, found by name.
    """

    undoing = 'creation'

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
                port = find_port(conn, loadbalancer_id, amphora['role'],
                                 network_id)
                if port is None:
                    port = self._create(conn, loadbalancer_id, amphora,
                                        network_id, subnet_ids,
                                        _vnic_type(plan, network_id, flavor))
                else:
                    port = self._add_subnets(conn, port, subnet_ids)
                ports.append(_port_dict(port, amphora))
        return ports

    @staticmethod
    def _create(conn, loadbalancer_id, amphora, network_id, subnet_ids,
                vnic_type):
        attrs = {}
        if vnic_type != member_port_plan.VNIC_TYPE_NORMAL:
            # Neutron would accept them and enforce nothing on a VF; the
            # amphora firewall does that job. A normal port keeps the
            # project's default group Neutron gives it.
            attrs['security_group_ids'] = []
        port = conn.network.create_port(
            name=naming.member_port_name(loadbalancer_id, amphora['role'],
                                         network_id),
            description=f'Member port ({vnic_type}) of amphora '
                        f'{amphora["id"]} of load balancer '
                        f'{loadbalancer_id}',
            network_id=network_id,
            fixed_ips=[{'subnet_id': subnet_id} for subnet_id in subnet_ids],
            binding_vnic_type=vnic_type, **attrs)
        LOG.info('Created member port %s (vnic type %s) on network %s for '
                 'amphora %s of load balancer %s', port.id,
                 port.binding_vnic_type, network_id, amphora['id'],
                 loadbalancer_id)
        return port

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

    def undo(self, conn, amphora, port):
        conn.network.delete_port(port, ignore_missing=True)
        LOG.info('Deleted member port %s of amphora %s', port.id,
                 amphora['id'])


def _log_attach_failure(conn, loadbalancer_id, port, error):
    if port['vnic_type'] == member_port_plan.VNIC_TYPE_NORMAL:
        LOG.error('Nova could not attach member port %s (vnic type normal) '
                  'on network %s to amphora %s of load balancer %s: %s. '
                  'Check that Neutron binds ports of that network on the '
                  'amphora\'s host (openstack port show %s, binding_vif_type) '
                  'and the nova-compute log. The member goes to ERROR; the '
                  'load balancer is unchanged.', port['id'],
                  port['network_id'], port['amphora_id'], loadbalancer_id,
                  error, port['id'])
        return
    network = conn.network.get_network(port['network_id'])
    LOG.error('Nova could not attach member port %s (vnic type %s) on '
              'network %s to amphora %s of load balancer %s: %s. Check the '
              'free VFs of the amphora\'s host on physical network %s ([pci] '
              'device_spec on the compute host, openstack server show %s '
              'for the host), that the host aggregate the compute flavor '
              'selects has VFs on that network, and the nova-compute log. '
              'The member goes to ERROR; the load balancer is unchanged.',
              port['id'], port['vnic_type'], port['network_id'],
              port['amphora_id'], loadbalancer_id, error,
              network.provider_physical_network, port['amphora_id'])


class AttachMemberPorts(_PlugTask):
    """Nova: hot-plug the member ports; an SR-IOV one claims a VF.

    On revert the ports the plan made are detached again.
    """

    undoing = 'attachment'

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
                _log_attach_failure(conn, loadbalancer_id, port, error)
                raise MemberPortError(
                    f'member port {port["id"]} could not be attached to '
                    f'amphora {port["amphora_id"]}: {error}') from error
            LOG.info('Attached member port %s (vnic type %s) to amphora %s',
                     port['id'], port['vnic_type'], port['amphora_id'])

    def undo(self, conn, amphora, port):
        compute.detach_port(conn, amphora['id'], port.id)


def _subnet_plug(conn, fixed_ip):
    _, facts = network.subnet_facts(conn, fixed_ip['subnet_id'])
    return dict(facts, ip_address=fixed_ip['ip_address'])


class PlugMemberPorts(_PlugTask):
    """Amphora agents: configure each member port's interface.

    Addresses, MTU, and a routing table of its own with the subnets'
    gateways and host routes, which the source rules send the port's
    addresses to. On revert the interfaces of the ports the plan made are
    unplugged.
    """

    undoing = 'plugging'

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
            with amphorae_lib.agent_for(amphora) as agent:
                agent.wait_for_interface(port['mac_address'], timeout)
                interface = agent.plug_network(port['mac_address'],
                                               fixed_ips, mtu=mtu)
            LOG.info('Amphora %s: member port %s plugged on %s (%s)',
                     port['amphora_id'], port['id'], interface.get('name'),
                     ', '.join(ip['ip_address'] for ip in fixed_ips))

    def undo(self, conn, amphora, port):
        with amphorae_lib.agent_for(amphora) as agent:
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
    """Amphora agents: take the unused member interfaces down."""

    what = 'Unplugging'

    def release(self, conn, amphora, port):
        if port.device_id != amphora['id']:
            return
        with amphorae_lib.agent_for(amphora) as agent:
            agent.unplug_network(port.mac_address, missing_ok=True)
        LOG.info('Amphora %s: member port %s unplugged', amphora['id'],
                 port.id)


class DetachMemberPorts(_ReleaseTask):
    """Nova: detach the unused member ports (a VF goes back to its host)."""

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
        for server in amphorae_lib.find_servers(conn, loadbalancer_id):
            found.update(port.id for port in member_port_plan.attached_ports(
                conn, {'id': server.id})
                if member_port_plan.is_member_port(port, loadbalancer_id))
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
