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

from unittest import mock

from flows.tasks import network
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
ROLES = naming.ALL_ROLES
AMPHORAE = [{'id': 'server-m', 'role': 'MASTER'},
            {'id': 'server-b', 'role': 'BACKUP'}]
EXTRA_VIP = {'subnet_id': fake_cloud.EXTRA_SUBNET,
             'ip_address': '2001:db8:1::5'}


def test_vip_plug_reads_subnets_and_mtu(cloud):
    loadbalancer = conftest.make_loadbalancer(additional_vips=[EXTRA_VIP])
    assert network.GetVipPlug().execute(loadbalancer) == {
        'subnet_cidr': '203.0.113.0/24', 'gateway': '203.0.113.1',
        'host_routes': [{'destination': '198.51.100.0/24',
                         'nexthop': '203.0.113.254'}],
        'mtu': 9000,
        'additional_vips': [{'ip_address': '2001:db8:1::5',
                             'subnet_cidr': '2001:db8:1::/64',
                             'gateway': '2001:db8:1::1'}]}


def test_sriov_vrrp_ports_are_direct_without_security_groups(cloud):
    loadbalancer = conftest.make_loadbalancer(additional_vips=[EXTRA_VIP])
    flavor = conftest.make_flavor(sriov_flavor.TOPOLOGY_ACTIVE_STANDBY)
    ports = network.CreateVrrpPorts(ROLES).execute(loadbalancer, flavor,
                                                   AMPHORAE)
    assert [p['amphora_id'] for p in ports] == ['server-m', 'server-b']
    for port, role in zip(ports, ('master', 'backup')):
        created = cloud.network.get_port(port['id'])
        assert created.name == f'octavia-lb-vrrp-{LB_ID}-{role}'
        assert created.network_id == fake_cloud.VIP_NET
        assert created.binding_vnic_type == 'direct'
        assert created.security_group_ids == []
        assert created.is_port_security_enabled is True
        assert created.allowed_address_pairs == [
            {'ip_address': '203.0.113.5'}, {'ip_address': '2001:db8:1::5'}]
        assert port == {'id': created.id,
                        'mac_address': created.mac_address,
                        'ip_address': created.fixed_ips[0]['ip_address'],
                        'subnet_id': fake_cloud.VIP_SUBNET,
                        'vnic_type': 'direct', 'amphora_id': port[
                            'amphora_id']}


def test_macvtap_vnic_type_comes_from_the_flavor(cloud):
    flavor = dict(conftest.make_flavor(), **{
        sriov_flavor.SRIOV_VNIC_TYPE: sriov_flavor.VNIC_TYPE_MACVTAP})
    [port] = network.CreateVrrpPorts(ROLES).execute(
        conftest.make_loadbalancer(), flavor, AMPHORAE[:1])
    assert port['vnic_type'] == 'macvtap'


def test_normal_vrrp_port_keeps_the_vip_security_groups(cloud):
    loadbalancer = dict(conftest.make_loadbalancer(), vip_sg_ids=['sg-1'],
                        vip_qos_policy_id='qos-1')
    [port] = network.CreateVrrpPorts(ROLES).execute(
        loadbalancer, conftest.make_flavor(sriov_vip=False), AMPHORAE[:1])
    created = cloud.network.get_port(port['id'])
    assert created.binding_vnic_type == 'normal'
    assert created.security_group_ids == ['sg-1']
    assert created.qos_policy_id == 'qos-1'


def test_vrrp_port_revert_finds_ports_by_name(cloud):
    flavor = conftest.make_flavor(sriov_flavor.TOPOLOGY_ACTIVE_STANDBY)
    loadbalancer = conftest.make_loadbalancer()
    task = network.CreateVrrpPorts(ROLES)
    task.execute(loadbalancer, flavor, AMPHORAE)
    bystander = cloud.network.create_port(network_id=fake_cloud.VIP_NET,
                                          name='octavia-lb-vrrp-other-master')
    task.revert(loadbalancer, result=None)
    assert list(cloud.network.ports_by_id) == [bystander.id]


def test_delete_vrrp_ports_of_any_role(cloud):
    network.CreateVrrpPorts(ROLES).execute(
        conftest.make_loadbalancer(), conftest.make_flavor(),
        [{'id': 'server-s', 'role': 'STANDALONE'}])
    network.CreateVrrpPorts(ROLES).execute(
        conftest.make_loadbalancer(),
        conftest.make_flavor(sriov_flavor.TOPOLOGY_ACTIVE_STANDBY), AMPHORAE)
    assert len(cloud.network.ports_by_id) == 3
    network.DeleteVrrpPorts().execute(LB_ID)
    assert cloud.network.ports_by_id == {}


def test_delete_vip_port_goes_through_the_driver_rule(cloud):
    loadbalancer = conftest.make_loadbalancer()
    with mock.patch('sriov_octavia.vip.delete_vip_port') as delete:
        network.DeleteVipPort().execute(loadbalancer)
    delete.assert_called_once_with(cloud, LB_ID, 'vip-port')


def test_delete_vip_port_without_port(cloud):
    loadbalancer = dict(conftest.make_loadbalancer(), vip_port_id=None)
    with mock.patch('sriov_octavia.vip.delete_vip_port') as delete:
        network.DeleteVipPort().execute(loadbalancer)
    delete.assert_not_called()


def test_resumed_create_reuses_the_ports(cloud):
    flavor = conftest.make_flavor(sriov_flavor.TOPOLOGY_ACTIVE_STANDBY)
    loadbalancer = conftest.make_loadbalancer()
    task = network.CreateVrrpPorts(ROLES)
    first = task.execute(loadbalancer, flavor, AMPHORAE)
    again = task.execute(loadbalancer, flavor, AMPHORAE)
    assert again == first
    assert len(cloud.network.ports_by_id) == 2
