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
"""Ports in the real Neutron, handled the way nova-compute handles them.

Binding a port sets ``device_id``, ``device_owner`` (``compute:<zone>``),
``binding:host_id`` and, for a port on a virtual function,
``binding:profile`` with ``pci_slot``, ``physical_network`` and
``pci_vendor_info``; Neutron's mechanism drivers then decide the
``binding:vif_type``. Unbinding clears all of it again.
"""

import threading

import openstack
from openstack import exceptions as sdk_exceptions
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# vnic types that need a virtual function (Nova's VNIC_TYPES_SRIOV subset
# the sriovnicswitch mechanism driver binds).
SRIOV_VNIC_TYPES = ('direct', 'macvtap')
FAILED_VIF_TYPES = ('binding_failed', 'unbound')


class PortNotFound(Exception):
    pass


class NetworkNotFound(Exception):
    pass


class PortBindingFailed(Exception):
    def __init__(self, port_id):
        super().__init__(
            f'Binding failed for port {port_id}, please check neutron logs '
            'for more information.')
        self.port_id = port_id


class Neutron:
    def __init__(self, url):
        self._url = url
        self._local = threading.local()

    @property
    def _network(self):
        # Keystoneauth sessions are not meant to be shared between the
        # request threads: one connection per thread.
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = openstack.connect(
                auth_type='none', network_endpoint_override=self._url,
                load_yaml_config=False, load_envvars=False)
            self._local.conn = conn
        return conn.network

    def get_port(self, port_id):
        try:
            return self._network.get_port(port_id)
        except sdk_exceptions.NotFoundException:
            raise PortNotFound(f'Port id {port_id} could not be found.')

    def get_network(self, network_id):
        try:
            return self._network.get_network(network_id)
        except sdk_exceptions.NotFoundException:
            raise NetworkNotFound(
                f'Network {network_id} could not be found.')

    def get_subnet(self, subnet_id):
        return self._network.get_subnet(subnet_id)

    def create_port(self, network_id, project_id, server_id, zone,
                    fixed_ip=None, security_group_ids=None):
        """A port for a ``{"uuid": network}`` request, owned by the server.

        ``security_group_ids`` None leaves Neutron's default group.
        """
        attrs = {}
        if fixed_ip:
            attrs['fixed_ips'] = [{'ip_address': fixed_ip}]
        if security_group_ids is not None:
            attrs['security_group_ids'] = security_group_ids
        return self._network.create_port(
            network_id=network_id, project_id=project_id,
            device_id=server_id, device_owner=f'compute:{zone}', **attrs)

    def find_security_group(self, name_or_id, project_id):
        """The project's group of that id or name, None if none.

        A name two groups share is ambiguous to Nova as well: refused.
        """
        try:
            return self._network.get_security_group(name_or_id)
        except sdk_exceptions.NotFoundException:
            pass
        found = list(self._network.security_groups(name=name_or_id,
                                                   project_id=project_id))
        if len(found) > 1:
            return None
        return found[0] if found else None

    def bind_port(self, port_id, server_id, host, zone, vf=None):
        """Bind to ``host``; raise PortBindingFailed if Neutron cannot."""
        attrs = {'device_id': server_id, 'device_owner': f'compute:{zone}',
                 'binding_host_id': host}
        if vf is not None:
            attrs['binding_profile'] = {
                'pci_slot': vf.pci_slot,
                'physical_network': vf.physical_network,
                'pci_vendor_info': f'{vf.vendor_id}:{vf.product_id}'}
        port = self._network.update_port(port_id, **attrs)
        if port.binding_vif_type in FAILED_VIF_TYPES:
            LOG.warning('Port %s failed to bind on %s (vif_type %s)',
                        port_id, host, port.binding_vif_type)
            raise PortBindingFailed(port_id)
        return port

    def unbind_port(self, port_id):
        try:
            self._network.update_port(
                port_id, device_id='', device_owner='',
                binding_host_id=None, binding_profile={})
        except sdk_exceptions.NotFoundException:
            LOG.info('Port %s is gone already, nothing to unbind', port_id)

    def delete_port(self, port_id):
        self._network.delete_port(port_id, ignore_missing=True)


def physical_network(neutron, port):
    """The physnet a port needs a VF on, None for non-SR-IOV ports."""
    if port.binding_vnic_type not in SRIOV_VNIC_TYPES:
        return None
    network = neutron.get_network(port.network_id)
    return network.provider_physical_network or ''


def release_port(neutron, interface):
    """Give a server's port back as Nova does.

    Nova deletes the ports it created and only unbinds the others.
    """
    if interface['created_by_nova']:
        neutron.delete_port(interface['port_id'])
    else:
        neutron.unbind_port(interface['port_id'])
