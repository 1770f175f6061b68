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
"""Plug requests: validation and the port plans they become."""

import pytest

from amphora_agent.network import model

MAC = 'fa:16:3e:00:00:01'


def vip_body(**changes):
    body = {'mac_address': MAC, 'vrrp_ip': '192.0.2.5',
            'subnet_cidr': '192.0.2.0/24', 'gateway': '192.0.2.1',
            'host_routes': [], 'mtu': 1500, 'additional_vips': [],
            'vip_on_interface': True}
    body.update(changes)
    return body


def routes(plan):
    return {(route.table, str(route.destination),
             str(route.gateway) if route.gateway else None)
            for route in plan.routes}


def strings(items):
    return [str(item) for item in items]


def test_single_topology_vip_plan():
    plan = model.parse_plug_vip('192.0.2.10', vip_body(
        mac_address=MAC.upper(),
        host_routes=[{'destination': '198.51.100.0/24',
                      'nexthop': '192.0.2.254'}]))

    assert plan.mac_address == MAC
    assert plan.mtu == 1500
    assert strings(plan.addresses) == ['192.0.2.5/24', '192.0.2.10/32']
    assert plan.foreign_addresses == ()
    assert strings(plan.rule_sources) == ['192.0.2.5', '192.0.2.10']
    assert routes(plan) == {
        # The VRRP address gives the main table its subnet route.
        ('own', '192.0.2.0/24', None),
        ('main', '0.0.0.0/0', '192.0.2.1'),
        ('own', '0.0.0.0/0', '192.0.2.1'),
        ('main', '198.51.100.0/24', '192.0.2.254'),
        ('own', '198.51.100.0/24', '192.0.2.254'),
    }


def test_active_standby_leaves_the_vip_alone_but_routes_it():
    plan = model.parse_plug_vip('192.0.2.10',
                                vip_body(vip_on_interface=False))

    assert strings(plan.addresses) == ['192.0.2.5/24']
    assert strings(plan.foreign_addresses) == ['192.0.2.10/32']
    assert strings(plan.rule_sources) == ['192.0.2.5', '192.0.2.10']


def test_vip_on_interface_is_the_default():
    body = vip_body()
    del body['vip_on_interface']

    plan = model.parse_plug_vip('192.0.2.10', body)

    assert '192.0.2.10/32' in strings(plan.addresses)


def test_additional_vips_of_both_versions():
    plan = model.parse_plug_vip('192.0.2.10', vip_body(additional_vips=[
        {'ip_address': '2001:db8::10', 'subnet_cidr': '2001:db8::/64',
         'gateway': '2001:db8::1'},
        # A second IPv4 subnet: its gateway loses to the primary one.
        {'ip_address': '198.51.100.10', 'subnet_cidr': '198.51.100.0/24',
         'gateway': '198.51.100.1'},
    ]))

    assert strings(plan.addresses) == ['192.0.2.5/24', '192.0.2.10/32',
                                       '2001:db8::10/128',
                                       '198.51.100.10/32']
    assert routes(plan) == {
        ('own', '192.0.2.0/24', None),
        ('main', '2001:db8::/64', None), ('own', '2001:db8::/64', None),
        ('main', '198.51.100.0/24', None),
        ('own', '198.51.100.0/24', None),
        ('main', '0.0.0.0/0', '192.0.2.1'), ('own', '0.0.0.0/0', '192.0.2.1'),
        ('main', '::/0', '2001:db8::1'), ('own', '::/0', '2001:db8::1'),
    }


def test_ipv6_vip_plan():
    plan = model.parse_plug_vip('2001:db8::10', vip_body(
        vrrp_ip='2001:db8::5', subnet_cidr='2001:db8::/64',
        gateway='fe80::1', mtu=None))

    assert strings(plan.addresses) == ['2001:db8::5/64', '2001:db8::10/128']
    assert ('own', '::/0', 'fe80::1') in routes(plan)
    assert plan.mtu is None


def test_host_route_replaces_the_default_of_its_table():
    plan = model.parse_plug_vip('192.0.2.10', vip_body(host_routes=[
        {'destination': '0.0.0.0/0', 'nexthop': '192.0.2.254'}]))

    defaults = {(table, gateway) for table, destination, gateway
                in routes(plan) if destination == '0.0.0.0/0'}
    assert defaults == {('main', '192.0.2.254'), ('own', '192.0.2.254')}


def test_no_gateway_no_default_route():
    plan = model.parse_plug_vip('192.0.2.10', vip_body(gateway=None))

    assert routes(plan) == {('own', '192.0.2.0/24', None)}


def test_same_request_same_plan():
    assert (model.parse_plug_vip('192.0.2.10', vip_body()) ==
            model.parse_plug_vip('192.0.2.10', vip_body()))


@pytest.mark.parametrize('vip, changes, field', [
    ('192.0.2.300', {}, 'vip'),
    ('198.51.100.10', {}, 'vip'),
    ('192.0.2.10', {'vrrp_ip': '192.0.2.10'}, 'vrrp_ip'),
    ('192.0.2.10', {'vrrp_ip': '198.51.100.5'}, 'vrrp_ip'),
    ('192.0.2.10', {'vrrp_ip': 5}, 'vrrp_ip'),
    ('192.0.2.10', {'subnet_cidr': '192.0.2.0/33'}, 'subnet_cidr'),
    ('192.0.2.10', {'gateway': '2001:db8::1'}, 'gateway'),
    ('192.0.2.10', {'gateway': 'gw'}, 'gateway'),
    ('192.0.2.10', {'mtu': 67}, 'mtu'),
    ('192.0.2.10', {'mtu': '1500'}, 'mtu'),
    ('192.0.2.10', {'mac_address': 'fa:16:3e:00:00'}, 'mac_address'),
    ('192.0.2.10', {'colour': 'red'}, 'colour'),
    ('192.0.2.10', {'vip_on_interface': 'yes'}, 'vip_on_interface'),
    ('192.0.2.10', {'host_routes': [{'destination': '10.0.0.0/8'}]},
     'host_routes[0].nexthop'),
    ('192.0.2.10', {'host_routes': [{'destination': '10.0.0.0/8',
                                     'nexthop': '2001:db8::1'}]},
     'host_routes[0].nexthop'),
    ('192.0.2.10', {'host_routes': [{'destination': '10.0.0.0/x',
                                     'nexthop': '192.0.2.1'}]},
     'host_routes[0].destination'),
    ('192.0.2.10', {'additional_vips': [
        {'ip_address': '2001:db8::10', 'subnet_cidr': '2001:db9::/64'}]},
     'additional_vips[0].ip_address'),
    ('192.0.2.10', {'additional_vips': [
        {'ip_address': '2001:db8::10', 'subnet_cidr': '2001:db8::/64'}],
        'mtu': 1279}, 'mtu'),
    ('192.0.2.10', {'additional_vips': [
        {'ip_address': '2001:db8::10', 'subnet_cidr': '2001:db8::/64',
         'gateway': '192.0.2.1'}]}, 'additional_vips[0].gateway'),
])
def test_vip_errors_name_the_field(vip, changes, field):
    with pytest.raises(model.InvalidRequest) as raised:
        model.parse_plug_vip(vip, vip_body(**changes))

    assert raised.value.field == field


def test_missing_field_is_named():
    body = vip_body()
    del body['subnet_cidr']

    with pytest.raises(model.InvalidRequest) as raised:
        model.parse_plug_vip('192.0.2.10', body)

    assert raised.value.field == 'subnet_cidr'
    assert raised.value.reason == 'is a required field'


def test_body_must_be_an_object():
    with pytest.raises(model.InvalidRequest) as raised:
        model.parse_plug_network(['fa:16:3e:00:00:01'])

    assert raised.value.field == 'body'


def test_member_network_plan():
    plan = model.parse_plug_network({
        'mac_address': MAC, 'mtu': 9000,
        'fixed_ips': [
            {'ip_address': '203.0.113.5', 'subnet_cidr': '203.0.113.0/24',
             'gateway': '203.0.113.1',
             'host_routes': [{'destination': '10.0.0.0/8',
                              'nexthop': '203.0.113.254'}]},
            {'ip_address': '2001:db8:1::5', 'subnet_cidr': '2001:db8:1::/64',
             'gateway': None}]})

    assert plan.mtu == 9000
    assert strings(plan.addresses) == ['203.0.113.5/24', '2001:db8:1::5/64']
    assert strings(plan.rule_sources) == ['203.0.113.5', '2001:db8:1::5']
    assert routes(plan) == {
        ('own', '203.0.113.0/24', None), ('own', '2001:db8:1::/64', None),
        # The member gateway serves the member addresses only.
        ('own', '0.0.0.0/0', '203.0.113.1'),
        ('main', '10.0.0.0/8', '203.0.113.254'),
        ('own', '10.0.0.0/8', '203.0.113.254'),
    }


def test_member_network_without_addresses_just_comes_up():
    plan = model.parse_plug_network({'mac_address': MAC, 'fixed_ips': []})

    assert plan.addresses == () and plan.routes == ()
    assert plan.mtu is None


@pytest.mark.parametrize('fixed_ip, field', [
    ({'ip_address': '203.0.113.5', 'subnet_cidr': '192.0.2.0/24'},
     'fixed_ips[0].ip_address'),
    ({'ip_address': '203.0.113.5', 'subnet_cidr': '203.0.113.0/24',
      'gateway': 'fe80::1'}, 'fixed_ips[0].gateway'),
    ({'ip_address': '203.0.113.5'}, 'fixed_ips[0].subnet_cidr'),
    ({'ip_address': '203.0.113.5', 'subnet_cidr': '203.0.113.0/24',
      'host_routes': [{'destination': '10.0.0.0/8', 'nexthop': 'x'}]},
     'fixed_ips[0].host_routes[0].nexthop'),
])
def test_member_errors_name_the_field(fixed_ip, field):
    with pytest.raises(model.InvalidRequest) as raised:
        model.parse_plug_network({'mac_address': MAC,
                                  'fixed_ips': [fixed_ip]})

    assert raised.value.field == field


@pytest.mark.parametrize('text', ['FA:16:3E:00:00:01', 'fa:16:3e:00:00:01'])
def test_mac_from_url_is_lower_case(text):
    assert model.parse_mac(text) == MAC


@pytest.mark.parametrize('text', ['fa-16-3e-00-00-01', 'fa:16:3e:00:00',
                                  'zz:16:3e:00:00:01', ''])
def test_bad_mac_from_url(text):
    with pytest.raises(model.InvalidRequest) as raised:
        model.parse_mac(text)

    assert raised.value.field == 'mac_address'
