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
"""create_vip_port against a fake Neutron proxy that behaves like Neutron."""

import ipaddress
import uuid

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
from openstack.network.v2 import port as port_resource
from openstack.network.v2 import subnet as subnet_resource
import pytest

from sriov_octavia import vip
from tests.unit.flows import fake_cloud

NET = str(uuid.uuid4())
SUBNET4 = str(uuid.uuid4())
SUBNET6 = str(uuid.uuid4())
LB = str(uuid.uuid4())
PROJECT = 'p' * 32


class FakeNeutron:
    """The few port and subnet calls of openstacksdk's network proxy."""

    def __init__(self):
        self.subnets = {
            SUBNET4: subnet_resource.Subnet(
                id=SUBNET4, network_id=NET, cidr='198.51.100.0/24'),
            SUBNET6: subnet_resource.Subnet(
                id=SUBNET6, network_id=NET, cidr='2001:db8::/64'),
        }
        self.ports = {}
        self.created = []

    def get_subnet(self, subnet_id):
        return fake_cloud.found(self.subnets, subnet_id, 'Subnet')

    def _used(self, pending=()):
        return {ip['ip_address'] for port in self.ports.values()
                for ip in port.fixed_ips} | {ip['ip_address']
                                             for ip in pending}

    def _allocate(self, subnet_id, address, pending):
        subnet = self.subnets[subnet_id]
        if address:
            if address in self._used(pending):
                raise os_exceptions.ConflictException(
                    f'IP address {address} already allocated in subnet '
                    f'{subnet_id}', details=f'IP address {address} already '
                    f'allocated in subnet {subnet_id}')
            return address
        for host in ipaddress.ip_network(subnet.cidr).hosts():
            if str(host) not in self._used(pending):
                return str(host)

    def create_port(self, **attrs):
        if attrs['network_id'] != NET:
            raise os_exceptions.NotFoundException(
                f"Network {attrs['network_id']} could not be found.",
                details=f"Network {attrs['network_id']} could not be found.")
        fixed_ips = []
        for request in attrs.get('fixed_ips') or [{'subnet_id': SUBNET4}]:
            subnet_id = request.get('subnet_id')
            if subnet_id is None:
                subnet_id = next(
                    sid for sid, subnet in self.subnets.items()
                    if ipaddress.ip_address(request['ip_address']) in
                    ipaddress.ip_network(subnet.cidr))
            fixed_ips.append({'subnet_id': subnet_id,
                              'ip_address': self._allocate(
                                  subnet_id, request.get('ip_address'),
                                  fixed_ips)})
        port = port_resource.Port(id=str(uuid.uuid4()),
                                  **dict(attrs, fixed_ips=fixed_ips))
        self.ports[port.id] = port
        self.created.append(attrs)
        return port

    def get_port(self, port_id):
        return fake_cloud.found(self.ports, port_id, 'Port')

    def delete_port(self, port, ignore_missing=True):
        self.ports.pop(port.id, None)


class FakeConnection:
    def __init__(self):
        self.network = FakeNeutron()


@pytest.fixture
def conn():
    return FakeConnection()


def create(conn, vip_dict, additional=()):
    return vip.create_vip_port(conn, LB, PROJECT, vip_dict, list(additional))


def test_port_is_made_like_octavia_makes_vip_ports(conn):
    vip_dict, additional = create(
        conn, {'vip_subnet_id': SUBNET4, 'vip_network_id': 'ignored'})
    attrs = conn.network.created[0]
    assert attrs == {
        'name': f'octavia-lb-{LB}', 'network_id': NET,
        'admin_state_up': False, 'device_id': f'lb-{LB}',
        'device_owner': 'Octavia', 'project_id': PROJECT,
        'fixed_ips': [{'subnet_id': SUBNET4}]}
    port_id = vip_dict.pop('vip_port_id')
    assert uuid.UUID(port_id)
    assert vip_dict == {'vip_network_id': NET, 'vip_subnet_id': SUBNET4,
                        'vip_address': '198.51.100.1', 'octavia_owned': True}
    assert additional == []


def test_requested_address_and_qos_are_returned(conn):
    qos = str(uuid.uuid4())
    vip_dict, _ = create(conn, {'vip_subnet_id': SUBNET4,
                                'vip_address': '198.51.100.77',
                                'vip_qos_policy_id': qos})
    assert vip_dict['vip_address'] == '198.51.100.77'
    assert vip_dict['vip_qos_policy_id'] == qos
    assert conn.network.created[0]['fixed_ips'] == [
        {'subnet_id': SUBNET4, 'ip_address': '198.51.100.77'}]


def test_additional_vips_become_fixed_ips_of_the_same_port(conn):
    vip_dict, additional = create(
        conn, {'vip_subnet_id': SUBNET4},
        [{'subnet_id': SUBNET6, 'ip_address': '2001:db8::50'},
         {'subnet_id': SUBNET4}])
    port_id = vip_dict['vip_port_id']
    assert vip_dict['vip_address'] == '198.51.100.1'
    assert additional == [
        {'port_id': port_id, 'network_id': NET, 'subnet_id': SUBNET6,
         'ip_address': '2001:db8::50'},
        {'port_id': port_id, 'network_id': NET, 'subnet_id': SUBNET4,
         'ip_address': '198.51.100.2'}]
    assert len(conn.network.ports[port_id].fixed_ips) == 3


def test_network_only_takes_what_neutron_allocates(conn):
    vip_dict, _ = create(conn, {'vip_network_id': NET})
    assert 'fixed_ips' not in conn.network.created[0]
    assert vip_dict['vip_subnet_id'] == SUBNET4
    assert vip_dict['vip_address'] == '198.51.100.1'


def test_security_groups_are_set_when_requested(conn):
    sg = str(uuid.uuid4())
    vip_dict, _ = create(conn, {'vip_subnet_id': SUBNET4,
                                'vip_sg_ids': [sg]})
    assert conn.network.created[0]['security_group_ids'] == [sg]
    assert vip_dict['vip_sg_ids'] == [sg]


def test_user_port_is_adopted_not_created(conn):
    user_port = conn.network.create_port(
        network_id=NET, name='mine',
        fixed_ips=[{'subnet_id': SUBNET6}, {'subnet_id': SUBNET4}])
    conn.network.created.clear()
    vip_dict, additional = create(conn, {'vip_port_id': user_port.id,
                                         'vip_subnet_id': SUBNET4})
    assert conn.network.created == []
    assert vip_dict == {'vip_port_id': user_port.id, 'vip_network_id': NET,
                        'vip_subnet_id': SUBNET4,
                        'vip_address': '198.51.100.1',
                        'octavia_owned': False}
    assert additional == []


def test_user_port_without_the_subnet_is_refused(conn):
    user_port = conn.network.create_port(
        network_id=NET, fixed_ips=[{'subnet_id': SUBNET6}])
    with pytest.raises(lib_exceptions.DriverError) as info:
        create(conn, {'vip_port_id': user_port.id,
                      'vip_subnet_id': SUBNET4})
    assert (f'VIP: port {user_port.id} has no free fixed IP with subnet '
            f'{SUBNET4}') in info.value.user_fault_string
    assert user_port.id in conn.network.ports


@pytest.mark.parametrize('key, message', [
    ('vip_port_id', 'vip_port_id {}: no such port in Neutron'),
    ('vip_subnet_id', 'vip_subnet_id {}: no such subnet in Neutron'),
    ('vip_network_id',
     'Neutron refused the VIP port: Network {} could not be found.'),
])
def test_missing_resource_is_named(conn, key, message):
    missing = str(uuid.uuid4())
    with pytest.raises(lib_exceptions.DriverError) as info:
        create(conn, {key: missing})
    assert info.value.user_fault_string == message.format(missing)
    assert conn.network.ports == {}


def test_address_in_use_is_a_conflict(conn):
    create(conn, {'vip_subnet_id': SUBNET4, 'vip_address': '198.51.100.9'})
    with pytest.raises(lib_exceptions.Conflict) as info:
        create(conn, {'vip_subnet_id': SUBNET4,
                      'vip_address': '198.51.100.9'})
    assert '198.51.100.9 already allocated' in info.value.user_fault_string


def test_unreachable_neutron_is_a_driver_error(conn, monkeypatch):
    def refuse(**attrs):
        raise ks_exceptions.ConnectFailure('Connection refused')

    monkeypatch.setattr(conn.network, 'create_port', refuse)
    with pytest.raises(lib_exceptions.DriverError) as info:
        create(conn, {'vip_network_id': NET})
    assert 'Neutron failed while preparing the VIP port' in (
        info.value.user_fault_string)
    assert 'Connection refused' in info.value.operator_fault_string


def test_delete_removes_only_ports_made_for_that_load_balancer(conn):
    ours, _ = create(conn, {'vip_subnet_id': SUBNET4})
    user_port = conn.network.create_port(network_id=NET, device_id='vm')
    assert not vip.delete_vip_port(conn, str(uuid.uuid4()),
                                   ours['vip_port_id'])
    assert ours['vip_port_id'] in conn.network.ports
    assert not vip.delete_vip_port(conn, LB, user_port.id)
    assert user_port.id in conn.network.ports
    assert vip.delete_vip_port(conn, LB, ours['vip_port_id'])
    assert ours['vip_port_id'] not in conn.network.ports
    assert vip.delete_vip_port(conn, LB, ours['vip_port_id'])


def test_delete_failure_is_logged_not_raised(conn, monkeypatch):
    ours, _ = create(conn, {'vip_subnet_id': SUBNET4})

    def refuse(port, ignore_missing=True):
        raise ks_exceptions.ConnectFailure('Connection refused')

    monkeypatch.setattr(conn.network, 'delete_port', refuse)
    assert not vip.delete_vip_port(conn, LB, ours['vip_port_id'])
