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
"""An in-memory stand-in for the openstacksdk proxies the flow tasks use.

It keeps state the way Nova, Neutron and Glance do (servers with
interfaces, ports with bindings, server groups), so a unit test checks
what is left in the cloud after a task ran or reverted, not only which
calls were made. Attribute names are checked against openstacksdk's
resources, so a misspelt attribute fails here as it would do nothing
there.
"""

import itertools
import re
import uuid

from openstack.compute.v2 import flavor as flavor_resource
from openstack.compute.v2 import server as server_resource
from openstack.compute.v2 import server_group as group_resource
from openstack.compute.v2 import server_interface as interface_resource
from openstack import exceptions as os_exceptions
from openstack.image.v2 import image as image_resource
from openstack.network.v2 import network as network_resource
from openstack.network.v2 import port as port_resource
from openstack.network.v2 import security_group as sg_resource
from openstack.network.v2 import security_group_rule as rule_resource
from openstack.network.v2 import subnet as subnet_resource

MGMT_NET = 'mgmt-net'
MGMT_SUBNET = 'mgmt-subnet'
VIP_NET = 'vip-net'
VIP_SUBNET = 'vip-subnet'
EXTRA_SUBNET = 'vip-subnet-v6'
MEMBER_NET = 'member-net'
MEMBER_SUBNET = 'member-subnet'
MEMBER_SUBNET_2 = 'member-subnet-2'
# A tenant network of its own (no physical network: no VF reaches it).
APP_NET = 'app-net'
APP_SUBNET = 'app-subnet'
IMAGE_TAG = 'amphora'
COMPUTE_FLAVOR = 'amphora-sriov-flavor'


def _check_attrs(resource_class, attrs):
    for name in attrs:
        if not hasattr(resource_class, name):
            raise TypeError(f'{resource_class.__name__} has no attribute '
                            f'{name}')


def found(objects, object_id, what):
    """``objects[object_id]``, or the NotFound the real service raises."""
    try:
        return objects[object_id]
    except KeyError:
        raise os_exceptions.NotFoundException(
            f'{what} {object_id} could not be found.')


class FakeCompute:
    def __init__(self, network):
        self._network = network
        self.servers_by_id = {}
        self.groups = {}
        self.interfaces = {}
        self.flavors = {COMPUTE_FLAVOR: flavor_resource.Flavor(
            id=COMPUTE_FLAVOR, extra_specs={'sriov-nic': 'true'})}
        # What a BUILD server turns into at its next look: ACTIVE, or
        # ERROR with this fault message.
        self.build_fault = None
        self.attach_error = None
        self.created = []
        # Ports Nova made itself (management): deleted with their server.
        self._own_ports = set()

    def create_server(self, **attrs):
        _check_attrs(server_resource.Server, attrs)
        assert attrs['flavor_id'] in self.flavors
        server = server_resource.Server(id=str(uuid.uuid4()),
                                        status='BUILD', **attrs)
        self.servers_by_id[server.id] = server
        self.created.append(server)
        self.interfaces[server.id] = []
        return server

    def get_server(self, server_id):
        server = self._server(server_id)
        if server.status == 'BUILD':
            if self.build_fault:
                server.status = 'ERROR'
                server.fault = {'code': 500, 'message': self.build_fault}
            else:
                server.status = 'ACTIVE'
                mgmt = self._network.create_port(
                    network_id=MGMT_NET, fixed_ips=[{'subnet_id':
                                                     MGMT_SUBNET}])
                self._own_ports.add(mgmt.id)
                self._attach(server.id, mgmt)
        return server

    def _server(self, server_id):
        return found(self.servers_by_id, server_id, 'Instance')

    def servers(self, details=True, name=None):
        return [server for server in self.servers_by_id.values()
                if not name or re.search(name, server.name)]

    def delete_server(self, server, ignore_missing=True):
        server_id = getattr(server, 'id', server)
        for interface in self.interfaces.pop(server_id, []):
            if interface.port_id in self._own_ports:
                self._network.delete_port(interface.port_id)
            else:
                self._network.unbind(interface.port_id)
        self.servers_by_id.pop(server_id, None)

    def get_flavor(self, flavor_id):
        return self.flavors[flavor_id]

    def _attach(self, server_id, port):
        port.device_id = server_id
        self.interfaces[server_id].append(interface_resource.ServerInterface(
            port_id=port.id, net_id=port.network_id,
            fixed_ips=list(port.fixed_ips), mac_addr=port.mac_address))

    def server_interfaces(self, server_id):
        self._server(server_id)
        return list(self.interfaces[server_id])

    def create_server_interface(self, server_id, port_id):
        self._server(server_id)
        if self.attach_error:
            raise self.attach_error
        self._attach(server_id, self._network.get_port(port_id))

    def delete_server_interface(self, port_id, server, ignore_missing=True):
        self._server(server)
        self.interfaces[server] = [i for i in self.interfaces[server]
                                   if i.port_id != port_id]
        self._network.unbind(port_id)

    def create_server_group(self, **attrs):
        _check_attrs(group_resource.ServerGroup, attrs)
        group = group_resource.ServerGroup(id=str(uuid.uuid4()), **attrs)
        self.groups[group.id] = group
        return group

    def server_groups(self):
        return list(self.groups.values())

    def delete_server_group(self, group, ignore_missing=True):
        self.groups.pop(group.id, None)


class FakeNetwork:
    def __init__(self):
        self.networks = {
            MGMT_NET: network_resource.Network(id=MGMT_NET, mtu=1500),
            VIP_NET: network_resource.Network(
                id=VIP_NET, mtu=9000, provider_physical_network='sriovnet'),
            MEMBER_NET: network_resource.Network(
                id=MEMBER_NET, mtu=8950,
                provider_physical_network='sriovnet'),
            APP_NET: network_resource.Network(id=APP_NET, mtu=1450),
        }
        self.subnets = {
            MGMT_SUBNET: subnet_resource.Subnet(
                id=MGMT_SUBNET, network_id=MGMT_NET,
                cidr='198.18.0.0/24', gateway_ip='198.18.0.1'),
            VIP_SUBNET: subnet_resource.Subnet(
                id=VIP_SUBNET, network_id=VIP_NET, cidr='203.0.113.0/24',
                gateway_ip='203.0.113.1',
                host_routes=[{'destination': '198.51.100.0/24',
                              'nexthop': '203.0.113.254'}]),
            EXTRA_SUBNET: subnet_resource.Subnet(
                id=EXTRA_SUBNET, network_id=VIP_NET,
                cidr='2001:db8:1::/64', gateway_ip='2001:db8:1::1',
                host_routes=[]),
            MEMBER_SUBNET: subnet_resource.Subnet(
                id=MEMBER_SUBNET, network_id=MEMBER_NET,
                cidr='198.51.100.0/24', gateway_ip='198.51.100.1',
                host_routes=[]),
            MEMBER_SUBNET_2: subnet_resource.Subnet(
                id=MEMBER_SUBNET_2, network_id=MEMBER_NET,
                cidr='2001:db8:2::/64', gateway_ip=None, host_routes=[]),
            APP_SUBNET: subnet_resource.Subnet(
                id=APP_SUBNET, network_id=APP_NET, cidr='192.0.2.0/24',
                gateway_ip='192.0.2.1',
                host_routes=[{'destination': '10.20.0.0/16',
                              'nexthop': '192.0.2.254'}]),
        }
        self.ports_by_id = {}
        self._hosts = itertools.count(10)
        self.security_groups_by_id = {}
        self.rules_by_id = {}

    def _fixed_ips(self, requests):
        fixed_ips = []
        for request in requests:
            if 'ip_address' in request:
                fixed_ips.append(dict(request))
                continue
            subnet = self.subnets[request['subnet_id']]
            host = next(self._hosts)
            prefix = subnet.cidr.split('/')[0]
            address = (prefix + str(host) if ':' in prefix else
                       prefix.rsplit('.', 1)[0] + f'.{host}')
            fixed_ips.append({'subnet_id': subnet.id,
                              'ip_address': address})
        return fixed_ips

    def create_port(self, **attrs):
        _check_attrs(port_resource.Port, attrs)
        fixed_ips = self._fixed_ips(attrs.pop('fixed_ips', []))
        attrs.setdefault('binding_vnic_type', 'normal')
        port = port_resource.Port(
            id=str(uuid.uuid4()), fixed_ips=fixed_ips, device_id='',
            mac_address='fa:16:3e:00:00:%02x' % (len(self.ports_by_id) + 1),
            **attrs)
        self.ports_by_id[port.id] = port
        return port

    def get_port(self, port_id):
        return found(self.ports_by_id, port_id, 'Port')

    def ports(self, name=None, device_id=None):
        return [port for port in self.ports_by_id.values()
                if (name is None or port.name == name) and
                (device_id is None or port.device_id == device_id)]

    def update_port(self, port, **attrs):
        _check_attrs(port_resource.Port, attrs)
        port = self.get_port(getattr(port, 'id', port))
        if 'fixed_ips' in attrs:
            attrs['fixed_ips'] = self._fixed_ips(attrs['fixed_ips'])
        for name, value in attrs.items():
            setattr(port, name, value)
        return port

    def delete_port(self, port, ignore_missing=True):
        self.ports_by_id.pop(getattr(port, 'id', port), None)

    def unbind(self, port_id):
        port = self.ports_by_id.get(port_id)
        if port is not None:
            port.device_id = ''

    def get_subnet(self, subnet_id):
        return self.subnets[subnet_id]

    def get_network(self, network_id):
        return self.networks[network_id]

    def create_security_group(self, **attrs):
        _check_attrs(sg_resource.SecurityGroup, attrs)
        group = sg_resource.SecurityGroup(id=str(uuid.uuid4()), **attrs)
        self.security_groups_by_id[group.id] = group
        # Neutron gives a new group egress rules for both families.
        for ether_type in ('IPv4', 'IPv6'):
            self.create_security_group_rule(
                security_group_id=group.id, direction='egress',
                ether_type=ether_type)
        return group

    def security_groups(self, name=None):
        return [group for group in self.security_groups_by_id.values()
                if name is None or group.name == name]

    def delete_security_group(self, group, ignore_missing=True):
        group_id = getattr(group, 'id', group)
        if any(group_id in (port.security_group_ids or ())
               for port in self.ports_by_id.values()):
            raise os_exceptions.ConflictException(
                f'Security Group {group_id} in use.')
        self.security_groups_by_id.pop(group_id, None)
        self.rules_by_id = {rule_id: rule for rule_id, rule
                            in self.rules_by_id.items()
                            if rule.security_group_id != group_id}

    def create_security_group_rule(self, **attrs):
        _check_attrs(rule_resource.SecurityGroupRule, attrs)
        rule = rule_resource.SecurityGroupRule(id=str(uuid.uuid4()),
                                               **attrs)
        if any(_rule_fields(rule) == _rule_fields(other)
               for other in self.rules_by_id.values()):
            raise os_exceptions.ConflictException('Security group rule '
                                                  'already exists.')
        self.rules_by_id[rule.id] = rule
        return rule

    def security_group_rules(self, security_group_id=None, direction=None):
        return [rule for rule in self.rules_by_id.values()
                if security_group_id in (None, rule.security_group_id) and
                direction in (None, rule.direction)]

    def delete_security_group_rule(self, rule, ignore_missing=True):
        self.rules_by_id.pop(getattr(rule, 'id', rule), None)


def _rule_fields(rule):
    return (rule.security_group_id, rule.direction, rule.ether_type,
            rule.protocol, rule.port_range_min, rule.port_range_max,
            rule.remote_ip_prefix, rule.remote_group_id)


class FakeImage:
    def __init__(self):
        self.images_list = [
            image_resource.Image(id='old-image', tags=[IMAGE_TAG],
                                 created_at='2026-01-01T00:00:00Z'),
            image_resource.Image(id='new-image', tags=[IMAGE_TAG],
                                 created_at='2026-06-01T00:00:00Z'),
            image_resource.Image(id='other-image', tags=['other'],
                                 created_at='2026-09-01T00:00:00Z'),
        ]

    def images(self, tag=None):
        return [image for image in self.images_list
                if tag is None or tag in image.tags]


class FakeCloud:
    """``connection()``'s stand-in: ``.compute``, ``.network``, ``.image``."""

    def __init__(self):
        self.network = FakeNetwork()
        self.compute = FakeCompute(self.network)
        self.image = FakeImage()
