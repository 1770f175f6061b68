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
"""Tasks on Neutron: the amphorae's VRRP base ports and the VIP port.

Each amphora gets a VRRP base port on the VIP subnet. With the flavor's
``sriov_vip`` it is an SR-IOV port (``sriov_vnic_type``, direct by
default) without security groups, which Neutron cannot enforce on a VF
(the amphora firewall does that job); port security stays on because
Neutron refuses allowed address pairs without it. The VIP and additional
VIPs are its allowed address pairs: the VIP port keeps them allocated, the
VRRP port is where they are served.

A VRRP port is named after its load balancer and amphora role, so a revert
or the delete flow finds it in Neutron without any other record.

A VRRP port is passed between tasks as ``{"id", "mac_address",
"ip_address", "subnet_id", "vnic_type", "amphora_id"}``.
"""

from oslo_log import log as logging
from taskflow import task

from flows.tasks import compute
from sriov_octavia import clients
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import vip as vip_port

LOG = logging.getLogger(__name__)

VNIC_TYPE_NORMAL = 'normal'
VRRP_PORTS = 'vrrp_ports'
VIP_PLUG = 'vip_plug'
ALL_ROLES = (compute.ROLE_STANDALONE, compute.ROLE_MASTER,
             compute.ROLE_BACKUP)


def vrrp_port_name(loadbalancer_id, role):
    return f'octavia-lb-vrrp-{loadbalancer_id}-{role.lower()}'


def vip_addresses(loadbalancer):
    """The VIP and the additional VIPs of a load balancer."""
    return [loadbalancer['vip_address']] + [
        extra['ip_address']
        for extra in loadbalancer.get('additional_vips') or ()]


def find_vrrp_ports(conn, loadbalancer_id, roles=ALL_ROLES):
    return [port for role in roles
            for port in conn.network.ports(
                name=vrrp_port_name(loadbalancer_id, role))]


def delete_vrrp_ports(conn, loadbalancer_id, roles=ALL_ROLES):
    for port in find_vrrp_ports(conn, loadbalancer_id, roles):
        conn.network.delete_port(port, ignore_missing=True)
        LOG.info('Deleted VRRP port %s of load balancer %s', port.id,
                 loadbalancer_id)


def _subnet_facts(conn, subnet_id):
    subnet = conn.network.get_subnet(subnet_id)
    return subnet, {
        'subnet_cidr': subnet.cidr,
        'gateway': subnet.gateway_ip,
        'host_routes': [{'destination': route['destination'],
                         'nexthop': route['nexthop']}
                        for route in subnet.host_routes or ()],
    }


class GetVipPlug(task.Task):
    """What the amphorae need to know of the VIP subnets to plug the VIP.

    Provides ``vip_plug``: ``{"subnet_cidr", "gateway", "host_routes",
    "mtu", "additional_vips": [{"ip_address", "subnet_cidr",
    "gateway"}]}``, read from Neutron.
    """

    default_provides = VIP_PLUG

    def execute(self, loadbalancer):
        conn = clients.connection()
        subnet, facts = _subnet_facts(conn, loadbalancer['vip_subnet_id'])
        facts['mtu'] = conn.network.get_network(subnet.network_id).mtu
        facts['additional_vips'] = []
        for extra in loadbalancer.get('additional_vips') or ():
            _, extra_facts = _subnet_facts(conn, extra['subnet_id'])
            facts['additional_vips'].append({
                'ip_address': extra['ip_address'],
                'subnet_cidr': extra_facts['subnet_cidr'],
                'gateway': extra_facts['gateway']})
        return facts


class CreateVrrpPorts(task.Task):
    """One VRRP base port per amphora on the VIP subnet."""

    default_provides = VRRP_PORTS

    def execute(self, loadbalancer, flavor, amphorae):
        conn = clients.connection()
        lb_id = loadbalancer['loadbalancer_id']
        attrs = {
            'network_id': loadbalancer['vip_network_id'],
            'fixed_ips': [{'subnet_id': loadbalancer['vip_subnet_id']}],
            'allowed_address_pairs': [{'ip_address': address} for address
                                      in vip_addresses(loadbalancer)],
            'is_port_security_enabled': True,
        }
        if flavor[sriov_flavor.SRIOV_VIP]:
            attrs['binding_vnic_type'] = flavor[sriov_flavor.SRIOV_VNIC_TYPE]
            # Neutron would accept them and enforce nothing on a VF.
            attrs['security_group_ids'] = []
        else:
            attrs['binding_vnic_type'] = VNIC_TYPE_NORMAL
            if loadbalancer.get(vip_port.VIP_SG_IDS):
                attrs['security_group_ids'] = loadbalancer[
                    vip_port.VIP_SG_IDS]
        if loadbalancer.get(vip_port.VIP_QOS_POLICY_ID):
            attrs['qos_policy_id'] = loadbalancer[vip_port.VIP_QOS_POLICY_ID]
        ports = []
        for amphora in amphorae:
            name = vrrp_port_name(lb_id, amphora['role'])
            # A port an interrupted run of this task made is used again.
            port = next(iter(conn.network.ports(name=name)), None)
            if port is None:
                port = conn.network.create_port(
                    name=name,
                    description=f'VRRP base port of amphora '
                                f'{amphora["id"]} of load balancer {lb_id}',
                    **attrs)
            fixed_ip = next(ip for ip in port.fixed_ips
                            if ip['subnet_id'] ==
                            loadbalancer['vip_subnet_id'])
            LOG.info('VRRP port %s (%s, vnic type %s) for amphora '
                     '%s of load balancer %s', port.id,
                     fixed_ip['ip_address'], port.binding_vnic_type,
                     amphora['id'], lb_id)
            ports.append({'id': port.id, 'mac_address': port.mac_address,
                          'ip_address': fixed_ip['ip_address'],
                          'subnet_id': fixed_ip['subnet_id'],
                          'vnic_type': port.binding_vnic_type,
                          'amphora_id': amphora['id']})
        return ports

    def revert(self, loadbalancer, flavor, *args, **kwargs):
        # By name: a create that failed half way left ports no result names.
        lb_id = loadbalancer['loadbalancer_id']
        with compute.reverting(f'the VRRP ports of load balancer {lb_id}'):
            delete_vrrp_ports(clients.connection(), lb_id,
                              compute.roles(flavor))


class DeleteVrrpPorts(task.Task):
    """Delete the load balancer's VRRP ports, found by their names."""

    def execute(self, loadbalancer_id):
        delete_vrrp_ports(clients.connection(), loadbalancer_id)


class DeleteVipPort(task.Task):
    """Delete the VIP port the driver made (a user's own port stays)."""

    def execute(self, loadbalancer):
        port_id = loadbalancer.get(vip_port.VIP_PORT_ID)
        if port_id:
            vip_port.delete_vip_port(clients.connection(),
                                     loadbalancer['loadbalancer_id'],
                                     port_id)
