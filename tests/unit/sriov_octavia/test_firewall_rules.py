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
"""The amphora firewall body from octavia-lib provider objects.

The objects are built as octavia-lib builds them for a provider driver
and turned into dicts as the driver puts them into jobs
(``to_dict(recurse=True, render_unsets=False)``).
"""

from octavia_lib.api.drivers import data_models
import pytest

from sriov_octavia.amphora import firewall_rules

LB_ID = 'a3f1c2d4-0000-4000-8000-000000000001'
VRRP_A = '192.0.2.5'
VRRP_B = '192.0.2.6'


def member(number, address, port=8080, **kwargs):
    return data_models.Member(
        member_id=f'm{number}', pool_id='p', address=address,
        protocol_port=port, subnet_id='s', weight=1, backup=False,
        vnic_type='direct', **kwargs)


def pool(pool_id, protocol, members=(), monitor=None, **kwargs):
    return data_models.Pool(
        pool_id=pool_id, loadbalancer_id=LB_ID, protocol=protocol,
        lb_algorithm='ROUND_ROBIN', members=list(members),
        healthmonitor=monitor, **kwargs)


def monitor(monitor_type, **kwargs):
    return data_models.HealthMonitor(
        healthmonitor_id=f'hm-{monitor_type}', type=monitor_type, delay=5,
        timeout=3, max_retries=3, **kwargs)


def listener(listener_id, protocol, port, allowed_cidrs=None,
             default_pool=None, **kwargs):
    return data_models.Listener(
        listener_id=listener_id, loadbalancer_id=LB_ID, protocol=protocol,
        protocol_port=port, allowed_cidrs=allowed_cidrs,
        default_pool=default_pool,
        default_pool_id=default_pool.pool_id if default_pool else None,
        connection_limit=-1, **kwargs)


def loadbalancer(listeners=(), pools=()):
    return data_models.LoadBalancer(
        loadbalancer_id=LB_ID, vip_address='192.0.2.10', vip_port_id='vp',
        vip_subnet_id='vs', vip_network_id='vn', project_id='project',
        flavor={'sriov_vip': True, 'loadbalancer_topology': 'ACTIVE_STANDBY'},
        listeners=list(listeners), pools=list(pools)).to_dict(
            recurse=True, render_unsets=False)


def job_dict(obj):
    return obj.to_dict(recurse=True, render_unsets=False)


def single_amphora_members(lb):
    """The member entries of a SINGLE load balancer's security group."""
    return firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)[
        'members']


def test_the_whole_load_balancer():
    web = pool('p-web', 'HTTP', [member(1, '203.0.113.21'),
                                 member(2, '203.0.113.22',
                                        monitor_address='203.0.113.122',
                                        monitor_port=9000)],
               monitor('HTTP'))
    dns = pool('p-dns', 'UDP', [member(3, '2001:db8:2::53', port=53)],
               monitor('UDP-CONNECT'))
    lb = loadbalancer(
        listeners=[
            listener('l-http', 'HTTP', 80, ['198.51.100.0/24'], web),
            listener('l-tls', 'TERMINATED_HTTPS', 443, None, web),
            listener('l-dns', 'UDP', 53, ['2001:db8:9::/48'], dns),
            listener('l-metrics', 'PROMETHEUS', 9100, ['10.0.0.0/8']),
        ],
        pools=[web, dns])

    body = firewall_rules.security_group_body(lb, [VRRP_A, VRRP_B], VRRP_A)

    assert body == {
        'vip_interfaces': [VRRP_A],
        'listeners': [
            {'protocol': 'TCP', 'port': 80,
             'allowed_cidrs': ['198.51.100.0/24']},
            {'protocol': 'TCP', 'port': 443, 'allowed_cidrs': []},
            {'protocol': 'TCP', 'port': 9100, 'allowed_cidrs': ['10.0.0.0/8']},
            {'protocol': 'UDP', 'port': 53,
             'allowed_cidrs': ['2001:db8:9::/48']},
        ],
        'vrrp_peers': [VRRP_B],
        'members': [
            {'address': '2001:db8:2::53', 'protocol': 'UDP', 'port': 53},
            {'address': '203.0.113.122', 'protocol': 'TCP', 'port': 9000},
            {'address': '203.0.113.21', 'protocol': 'TCP', 'port': 8080},
            {'address': '203.0.113.22', 'protocol': 'TCP', 'port': 8080},
        ],
    }


def test_single_topology_has_no_peers():
    lb = loadbalancer(listeners=[listener('l', 'TCP', 22)])

    body = firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert body['vrrp_peers'] == []
    assert body['vip_interfaces'] == [VRRP_A]


def test_the_other_amphora_sees_the_first_as_peer():
    lb = loadbalancer()

    body = firewall_rules.security_group_body(lb, [VRRP_A, VRRP_B], VRRP_B)

    assert body['vip_interfaces'] == [VRRP_B]
    assert body['vrrp_peers'] == [VRRP_A]


@pytest.mark.parametrize('protocol, transport', [
    ('HTTP', 'TCP'), ('HTTPS', 'TCP'), ('TERMINATED_HTTPS', 'TCP'),
    ('PROMETHEUS', 'TCP'), ('TCP', 'TCP'), ('UDP', 'UDP'), ('SCTP', 'SCTP'),
])
def test_listener_protocols(protocol, transport):
    lb = loadbalancer(listeners=[listener('l', protocol, 1234)])

    body = firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert body['listeners'] == [{'protocol': transport, 'port': 1234,
                                  'allowed_cidrs': []}]


def test_disabled_listener_opens_nothing():
    lb = loadbalancer(listeners=[
        listener('on', 'TCP', 80),
        listener('off', 'TCP', 81, admin_state_up=False),
        listener('unset', 'TCP', 82)])

    body = firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert [entry['port'] for entry in body['listeners']] == [80, 82]


@pytest.mark.parametrize('monitor_type, entry', [
    ('PING', {'address': '203.0.113.99', 'protocol': 'ICMP'}),
    ('TCP', {'address': '203.0.113.99', 'protocol': 'TCP', 'port': 9999}),
    ('HTTP', {'address': '203.0.113.99', 'protocol': 'TCP', 'port': 9999}),
    ('HTTPS', {'address': '203.0.113.99', 'protocol': 'TCP', 'port': 9999}),
    ('TLS-HELLO', {'address': '203.0.113.99', 'protocol': 'TCP',
                   'port': 9999}),
    ('UDP-CONNECT', {'address': '203.0.113.99', 'protocol': 'UDP',
                     'port': 9999}),
    ('SCTP', {'address': '203.0.113.99', 'protocol': 'SCTP', 'port': 9999}),
])
def test_monitor_types_open_the_monitor_target(monitor_type, entry):
    target = member(1, '203.0.113.21', monitor_address='203.0.113.99',
                    monitor_port=9999)
    lb = loadbalancer(pools=[pool('p', 'TCP', [target],
                                  monitor(monitor_type))])

    members = single_amphora_members(lb)

    assert entry in members
    assert {'address': '203.0.113.21', 'protocol': 'TCP',
            'port': 8080} in members
    assert len(members) == 2


def test_monitor_without_monitor_address_checks_the_member():
    lb = loadbalancer(pools=[pool('p', 'UDP', [member(1, '203.0.113.21',
                                                      port=53)],
                                  monitor('PING'))])

    members = single_amphora_members(lb)

    assert members == [
        {'address': '203.0.113.21', 'protocol': 'ICMP'},
        {'address': '203.0.113.21', 'protocol': 'UDP', 'port': 53}]


def test_members_on_the_vip_subnet_are_members_too():
    lb = loadbalancer(pools=[pool('p', 'TCP', [member(1, '192.0.2.50')])])

    members = single_amphora_members(lb)

    assert members == [{'address': '192.0.2.50', 'protocol': 'TCP',
                        'port': 8080}]


def test_disabled_things_open_nothing():
    lb = loadbalancer(pools=[
        pool('p1', 'TCP', [member(1, '203.0.113.21'),
                           member(2, '203.0.113.22', admin_state_up=False)],
             monitor('PING', admin_state_up=False)),
        pool('p2', 'TCP', [member(3, '203.0.113.23')],
             admin_state_up=False)])

    members = single_amphora_members(lb)

    assert members == [{'address': '203.0.113.21', 'protocol': 'TCP',
                        'port': 8080}]


def test_pools_only_known_through_listeners_count():
    web = pool('p-web', 'PROXY', [member(1, '203.0.113.21')])
    lb = loadbalancer(listeners=[listener('l', 'TCP', 80, None, web)])

    members = single_amphora_members(lb)

    assert members == [{'address': '203.0.113.21', 'protocol': 'TCP',
                        'port': 8080}]


def test_given_listeners_and_pools_replace_the_load_balancers():
    old = pool('p-old', 'TCP', [member(1, '203.0.113.21')])
    lb = loadbalancer(listeners=[listener('l-old', 'TCP', 80)], pools=[old])
    # What a flow has after "listener delete" + "pool create".
    new_pool = job_dict(pool('p-new', 'SCTP', [member(2, '203.0.113.22',
                                                      port=3868)]))
    new_listener = job_dict(listener('l-new', 'SCTP', 3868, ['10.0.0.0/8']))

    body = firewall_rules.security_group_body(
        lb, [VRRP_A], VRRP_A, listeners=[new_listener], pools=[new_pool])

    assert body['listeners'] == [{'protocol': 'SCTP', 'port': 3868,
                                  'allowed_cidrs': ['10.0.0.0/8']}]
    assert body['members'] == [{'address': '203.0.113.22',
                                'protocol': 'SCTP', 'port': 3868}]


def test_a_pool_reached_twice_counts_once():
    web = pool('p-web', 'HTTP', [member(1, '203.0.113.21')])
    lb = loadbalancer(listeners=[listener('a', 'HTTP', 80, None, web),
                                 listener('b', 'HTTP', 81, None, web)],
                      pools=[web])

    members = single_amphora_members(lb)

    assert len(members) == 1


def test_same_port_twice_takes_the_wider_sources():
    lb = loadbalancer(listeners=[
        listener('a', 'TCP', 80, ['10.0.0.0/8']),
        listener('b', 'HTTP', 80, ['192.168.0.0/16'])])

    body = firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert body['listeners'] == [{'protocol': 'TCP', 'port': 80,
                                  'allowed_cidrs': ['10.0.0.0/8',
                                                    '192.168.0.0/16']}]


def test_empty_load_balancer_is_the_base():
    lb = data_models.LoadBalancer(loadbalancer_id=LB_ID).to_dict(
        recurse=True, render_unsets=False)

    assert firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A) == {
        'vip_interfaces': [VRRP_A], 'listeners': [], 'vrrp_peers': [],
        'members': []}


def test_unknown_protocol_is_named():
    lb = loadbalancer(listeners=[listener('l-x', 'QUIC', 443)])

    with pytest.raises(firewall_rules.UnsupportedObject) as raised:
        firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert raised.value.field == 'listener l-x: protocol'


def test_unknown_monitor_type_is_named():
    lb = loadbalancer(pools=[pool('p', 'TCP', [member(1, '203.0.113.21')],
                                  monitor('DNS'))])

    with pytest.raises(firewall_rules.UnsupportedObject) as raised:
        firewall_rules.security_group_body(lb, [VRRP_A], VRRP_A)

    assert raised.value.field == 'health monitor hm-DNS: type'


def test_this_amphora_must_be_one_of_them():
    with pytest.raises(firewall_rules.UnsupportedObject) as raised:
        firewall_rules.security_group_body(loadbalancer(), [VRRP_B], VRRP_A)

    assert raised.value.field == 'this_vrrp_ip'


def test_the_agent_accepts_the_body():
    # The controller never imports the agent; a test may, to hold both
    # sides to one contract.
    from amphora_agent.firewall import model

    web = pool('p-web', 'HTTP', [member(1, '203.0.113.21',
                                        monitor_address='2001:db8::21')],
               monitor('PING'))
    lb = loadbalancer(listeners=[
        listener('l', 'HTTP', 80, ['198.51.100.0/24', '2001:db8:9::/48'],
                 web)], pools=[web])
    body = firewall_rules.security_group_body(lb, [VRRP_A, VRRP_B], VRRP_A)

    parsed = model.parse_security_group(body)

    assert parsed.to_dict()['members'] == [
        {'address': '203.0.113.21', 'protocol': 'TCP', 'port': 8080},
        {'address': '2001:db8::21', 'protocol': 'ICMP'}]
    assert parsed.to_dict()['vrrp_peers'] == [f'{VRRP_B}/32']
