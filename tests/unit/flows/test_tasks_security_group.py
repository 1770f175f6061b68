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
"""The load balancer's Neutron security group without sriov_vip."""

from unittest import mock

import pytest

from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import flavor as sriov_flavor
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
SINGLE = sriov_flavor.TOPOLOGY_SINGLE
ACTIVE_STANDBY = sriov_flavor.TOPOLOGY_ACTIVE_STANDBY
EXTRA_VIP = {'subnet_id': fake_cloud.EXTRA_SUBNET,
             'ip_address': '2001:db8:1::5'}


def _listener(listener_id, protocol, port, cidrs=()):
    return {'listener_id': listener_id, 'protocol': protocol,
            'protocol_port': port, 'allowed_cidrs': list(cidrs)}


def _lb(*listeners, **fields):
    return dict(conftest.make_loadbalancer(**fields),
                listeners=list(listeners), pools=[])


def _rules(cloud, group_id):
    return sorted((rule.ether_type, rule.protocol, rule.port_range_min,
                   rule.port_range_max, rule.remote_ip_prefix,
                   rule.remote_group_id)
                  for rule in cloud.network.security_group_rules(
                      security_group_id=group_id, direction='ingress'))


def _store(loadbalancer, topology=SINGLE, sriov_vip=False, **objects):
    return dict(objects, loadbalancer=loadbalancer, loadbalancer_id=LB_ID,
                flavor=conftest.make_flavor(topology, sriov_vip=sriov_vip),
                availability_zone={})


def test_rules_per_listener_cidr_and_vip_family():
    loadbalancer = _lb(
        _listener('l-1', 'HTTP', 80, ['198.51.100.7/24', '2001:db8:9::/48']),
        _listener('l-2', 'UDP', 53),
        additional_vips=[EXTRA_VIP])
    assert security_group.desired_rules(
        loadbalancer, conftest.make_flavor(ACTIVE_STANDBY), 'sg-1') == {
        ('IPv4', 'tcp', 80, '198.51.100.0/24', None),
        ('IPv6', 'tcp', 80, '2001:db8:9::/48', None),
        ('IPv4', 'udp', 53, None, None),
        ('IPv6', 'udp', 53, None, None),
        ('IPv4', '112', None, None, 'sg-1'),
    }


def test_vip_security_groups_take_over_the_listener_rules():
    loadbalancer = dict(_lb(_listener('l-1', 'TCP', 80)),
                        vip_sg_ids=['user-sg'])
    assert security_group.desired_rules(
        loadbalancer, conftest.make_flavor(SINGLE), 'sg-1') == set()


def test_create_and_delete_flows_own_the_group(cloud, reporter, agents):
    loadbalancer = _lb(_listener('l-1', 'TCP', 80, ['198.51.100.0/24']))
    conftest.run_flow('loadbalancer.create',
                      store=_store(loadbalancer, ACTIVE_STANDBY))
    [group] = security_group.find_security_groups(cloud, LB_ID)
    assert group.name == f'octavia-lb-{LB_ID}'
    assert _rules(cloud, group.id) == [
        ('IPv4', '112', None, None, None, group.id),
        ('IPv4', 'tcp', 80, 80, '198.51.100.0/24', None)]
    vrrp_ports = network.find_vrrp_ports(cloud, LB_ID)
    assert len(vrrp_ports) == 2
    assert all(port.security_group_ids == [group.id] for port in vrrp_ports)

    with mock.patch('sriov_octavia.vip.delete_vip_port'):
        conftest.run_flow('loadbalancer.delete',
                          store=_store(loadbalancer, ACTIVE_STANDBY))
    assert cloud.network.security_groups_by_id == {}
    assert cloud.network.rules_by_id == {}


def test_sriov_vip_makes_no_security_group(cloud, reporter, agents):
    with mock.patch.object(cloud.network, 'security_groups') as look_up:
        conftest.run_flow('loadbalancer.create',
                          store=_store(_lb(_listener('l-1', 'TCP', 80)),
                                       sriov_vip=True))
        with mock.patch('sriov_octavia.vip.delete_vip_port'):
            conftest.run_flow('loadbalancer.delete',
                              store=_store(_lb(), sriov_vip=True))
    look_up.assert_not_called()
    assert cloud.network.security_groups_by_id == {}


def test_failed_create_deletes_the_group(cloud, reporter, worker_conf):
    agent = mock.MagicMock()
    agent.__enter__.return_value = agent
    agent.plug_vip.side_effect = agent_client.AgentUnreachable(
        'https://198.18.0.10:9443', 'timed out')
    with mock.patch.object(agent_client.AgentClient, 'from_conf',
                           return_value=agent):
        with pytest.raises(agent_client.AgentUnreachable):
            conftest.run_flow('loadbalancer.create',
                              store=_store(_lb()))
    # The ports that held it are deleted first, then the group.
    assert cloud.network.ports_by_id == {}
    assert cloud.network.security_groups_by_id == {}


def test_listener_changes_sync_the_rules(cloud, reporter, agents):
    conftest.run_flow('loadbalancer.create', store=_store(_lb()))
    [group] = security_group.find_security_groups(cloud, LB_ID)
    assert _rules(cloud, group.id) == []
    old = _listener('l-1', 'TCP', 80, ['198.51.100.0/24'])
    reporter.get_loadbalancer.return_value = _lb()
    conftest.run_flow('listener.create',
                      store=_store(_lb(), listener=dict(
                          old, loadbalancer_id=LB_ID)))
    [before] = _rules(cloud, group.id)
    assert before == ('IPv4', 'tcp', 80, 80, '198.51.100.0/24', None)

    reporter.get_loadbalancer.return_value = _lb(old)
    conftest.run_flow('listener.update', store=_store(
        _lb(), listener={'listener_id': 'l-1',
                         'allowed_cidrs': ['203.0.113.0/25']},
        original_listener=dict(old, loadbalancer_id=LB_ID)))
    assert _rules(cloud, group.id) == [
        ('IPv4', 'tcp', 80, 80, '203.0.113.0/25', None)]

    conftest.run_flow('listener.delete',
                      store=_store(_lb(), listener=dict(
                          old, loadbalancer_id=LB_ID)))
    assert _rules(cloud, group.id) == []
    # Neutron's egress rules of the new group are left alone.
    assert len(cloud.network.security_group_rules(
        security_group_id=group.id, direction='egress')) == 2


def test_failover_gives_the_new_port_the_group(cloud, reporter, agents):
    conftest.run_flow('loadbalancer.create', store=_store(_lb()))
    [group] = security_group.find_security_groups(cloud, LB_ID)
    reporter.get_loadbalancer.return_value = _lb()
    conftest.run_flow('loadbalancer.failover', store=_store(_lb()))
    [port] = network.find_vrrp_ports(cloud, LB_ID)
    assert port.security_group_ids == [group.id]
    assert port.binding_vnic_type == 'normal'
