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
"""The VIP port of a load balancer: the holder of its addresses in Neutron.

The port is "normal" and never bound, whatever the flavor: the addresses
are served by the amphorae's VRRP base ports (SR-IOV VFs with sriov_vip),
which carry them as allowed address pairs. This port only reserves them in
Neutron's IPAM. It is created administratively down so that no mechanism
driver answers ARP or neighbour discovery for it (OVN would, for an up port
without a host) and competes with the amphora that really owns the address.
device_owner "Octavia" and device_id "lb-<load balancer id>" mark it as made
by Octavia, as Octavia's own amphora provider marks its VIP ports: only such
ports are deleted with the load balancer; a port the user brought stays.
"""

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

DEVICE_OWNER = 'Octavia'
PORT_NAME_PREFIX = 'octavia-lb-'
DEVICE_ID_PREFIX = 'lb-'

# octavia-lib's keys of the VIP dictionary.
VIP_ADDRESS = 'vip_address'
VIP_NETWORK_ID = 'vip_network_id'
VIP_PORT_ID = 'vip_port_id'
VIP_SUBNET_ID = 'vip_subnet_id'
VIP_QOS_POLICY_ID = 'vip_qos_policy_id'
VIP_SG_IDS = 'vip_sg_ids'
OCTAVIA_OWNED = 'octavia_owned'


def _driver_error(message, error=None):
    operator = f'{message}: {error}' if error else message
    return lib_exceptions.DriverError(user_fault_string=message,
                                      operator_fault_string=operator)


def _neutron_message(error):
    return getattr(error, 'details', None) or str(error)


def device_id(loadbalancer_id):
    return f'{DEVICE_ID_PREFIX}{loadbalancer_id}'


def create_vip_port(conn, loadbalancer_id, project_id, vip, additional_vips):
    """Create (or adopt the user's) VIP port; return what octavia-api reads.

    :param conn: openstacksdk Connection
    :param vip: octavia-lib VIP dictionary (vip_port_id, vip_network_id,
        vip_subnet_id, vip_address, vip_qos_policy_id, vip_sg_ids)
    :param additional_vips: list of {'subnet_id', 'ip_address'} on the same
        network
    :returns: (vip dictionary with the port's id, network, subnet and
        address; list of additional VIP dictionaries)
    :raises Conflict: a requested address is in use.
    :raises DriverError: Neutron refused or could not be reached; the
        message names the object at fault.
    """
    try:
        if vip.get(VIP_PORT_ID):
            port = _get_user_port(conn, vip[VIP_PORT_ID])
            owned = False
        else:
            port = _create_port(conn, loadbalancer_id, project_id, vip,
                                additional_vips)
            owned = True
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as e:
        message = 'Neutron failed while preparing the VIP port'
        raise _driver_error(message, e)
    try:
        return _describe(port, vip, additional_vips, owned)
    except lib_exceptions.DriverError:
        if owned:
            delete_vip_port(conn, loadbalancer_id, port.id)
        raise


def _get_user_port(conn, port_id):
    try:
        return conn.network.get_port(port_id)
    except os_exceptions.NotFoundException as e:
        raise _driver_error(f'vip_port_id {port_id}: no such port in '
                            f'Neutron', e)


def _network_of(conn, vip):
    subnet_id = vip.get(VIP_SUBNET_ID)
    if not subnet_id:
        return vip[VIP_NETWORK_ID]
    # The subnet decides the network: it is what the user named, and
    # Neutron, not the caller, knows where it lives.
    try:
        return conn.network.get_subnet(subnet_id).network_id
    except os_exceptions.NotFoundException as e:
        raise _driver_error(f'vip_subnet_id {subnet_id}: no such subnet in '
                            f'Neutron', e)


def _fixed_ip(subnet_id, ip_address):
    fixed_ip = {}
    if subnet_id:
        fixed_ip['subnet_id'] = subnet_id
    if ip_address:
        fixed_ip['ip_address'] = ip_address
    return fixed_ip


def _create_port(conn, loadbalancer_id, project_id, vip, additional_vips):
    network_id = _network_of(conn, vip)
    requested = [_fixed_ip(vip.get(VIP_SUBNET_ID), vip.get(VIP_ADDRESS))]
    requested += [_fixed_ip(add.get('subnet_id'), add.get('ip_address'))
                  for add in additional_vips]
    attrs = {
        'name': f'{PORT_NAME_PREFIX}{loadbalancer_id}',
        'network_id': network_id,
        'admin_state_up': False,
        'device_id': device_id(loadbalancer_id),
        'device_owner': DEVICE_OWNER,
        'project_id': project_id,
    }
    fixed_ips = [fixed_ip for fixed_ip in requested if fixed_ip]
    if fixed_ips:
        attrs['fixed_ips'] = fixed_ips
    if vip.get(VIP_SG_IDS):
        attrs['security_group_ids'] = vip[VIP_SG_IDS]
    try:
        port = conn.network.create_port(**attrs)
    except os_exceptions.ConflictException as e:
        addresses = [fixed_ip['ip_address'] for fixed_ip in fixed_ips
                     if 'ip_address' in fixed_ip]
        message = _neutron_message(e)
        if addresses:
            raise lib_exceptions.Conflict(
                user_fault_string=message,
                operator_fault_string=f'VIP port for load balancer '
                                      f'{loadbalancer_id}: {message}')
        raise _driver_error(f'Neutron could not allocate a VIP address on '
                            f'network {network_id}: {message}', e)
    except (os_exceptions.NotFoundException,
            os_exceptions.BadRequestException) as e:
        # Neutron's message names what it did not find or accept (the
        # network, an additional VIP's subnet, an address).
        raise _driver_error(f'Neutron refused the VIP port: '
                            f'{_neutron_message(e)}', e)
    LOG.info('Created VIP port %s (%s) for load balancer %s', port.id,
             ', '.join(fixed_ip['ip_address'] for fixed_ip in port.fixed_ips),
             loadbalancer_id)
    return port


def _take_fixed_ip(port, free, subnet_id, ip_address, what):
    for fixed_ip in free:
        if ((not subnet_id or fixed_ip['subnet_id'] == subnet_id) and
                (not ip_address or fixed_ip['ip_address'] == ip_address)):
            free.remove(fixed_ip)
            return fixed_ip
    wanted = ' '.join(part for part in (
        f'subnet {subnet_id}' if subnet_id else '',
        f'address {ip_address}' if ip_address else '') if part)
    raise _driver_error(f'{what}: port {port.id} has no free fixed IP with '
                        f'{wanted or "an address"}')


def _describe(port, vip, additional_vips, owned):
    free = list(port.fixed_ips)
    primary = _take_fixed_ip(port, free, vip.get(VIP_SUBNET_ID),
                             vip.get(VIP_ADDRESS), 'VIP')
    vip_dict = {
        VIP_PORT_ID: port.id,
        VIP_NETWORK_ID: port.network_id,
        VIP_SUBNET_ID: primary['subnet_id'],
        VIP_ADDRESS: primary['ip_address'],
        OCTAVIA_OWNED: owned,
    }
    for key in (VIP_QOS_POLICY_ID, VIP_SG_IDS):
        if vip.get(key):
            vip_dict[key] = vip[key]
    additional = []
    for add in additional_vips:
        fixed_ip = _take_fixed_ip(port, free, add.get('subnet_id'),
                                  add.get('ip_address'), 'additional VIP')
        additional.append({'port_id': port.id,
                           'network_id': port.network_id,
                           'subnet_id': fixed_ip['subnet_id'],
                           'ip_address': fixed_ip['ip_address']})
    return vip_dict, additional


def delete_vip_port(conn, loadbalancer_id, port_id):
    """Delete the VIP port if this provider made it for that load balancer.

    A port the user brought (vip_port_id) is left alone. For the driver
    after a refused load balancer create, and for the worker when a load
    balancer is deleted. Errors are logged, not raised: both callers are
    past the point where a leftover port could change the outcome.

    :returns: True when the port is gone (deleted now or already missing).
    """
    try:
        port = conn.network.get_port(port_id)
        if (port.device_owner != DEVICE_OWNER or
                port.device_id != device_id(loadbalancer_id)):
            LOG.info('VIP port %s of load balancer %s belongs to its user; '
                     'leaving it', port_id, loadbalancer_id)
            return False
        conn.network.delete_port(port, ignore_missing=True)
    except os_exceptions.NotFoundException:
        return True
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as e:
        LOG.error('Could not delete VIP port %s of load balancer %s; delete '
                  'it by hand: %s', port_id, loadbalancer_id, e)
        return False
    LOG.info('Deleted VIP port %s of load balancer %s', port_id,
             loadbalancer_id)
    return True
