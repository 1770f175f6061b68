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
"""Upstream Octavia's PUT /1.0/interface/<ip>/rules on this agent."""

import pytest

from amphora_agent.firewall import model
from tests.unit.amphora_agent import fakes

# What upstream's controller sends for a TCP listener limited to one CIDR,
# a UDP listener open to all, and VRRP from its peer.
UPSTREAM_RULES = [
    {'protocol': 'TCP', 'cidr': '198.51.100.0/24', 'port': 443},
    {'protocol': 'UDP', 'cidr': None, 'port': 53},
    {'protocol': 'VRRP', 'cidr': '203.0.113.11/32', 'port': 112},
]


@pytest.mark.parametrize('address', ['203.0.113.10', '2001:db8::10'])
def test_put_rules_applies_the_translated_rules(app, firewall, address):
    response = fakes.request(app, 'PUT', f'/1.0/interface/{address}/rules',
                             UPSTREAM_RULES)

    assert response.status_int == 200, response.text
    assert response.json['message'] == 'OK'
    expected = model.from_upstream_rules(address, UPSTREAM_RULES)
    assert firewall.applied == [expected]
    applied = response.json['rules']['security_group']
    assert applied['vip_interfaces'] == [address]
    assert {(listener['protocol'], listener['port'])
            for listener in applied['listeners']} == {('TCP', 443),
                                                      ('UDP', 53)}
    assert applied['vrrp_peers'] == ['203.0.113.11/32']


def test_put_empty_list_keeps_only_the_base_rules(app, firewall):
    response = fakes.request(app, 'PUT', '/1.0/interface/203.0.113.10/rules',
                             [])

    assert response.status_int == 200
    assert firewall.applied[0].listeners == ()


def test_invalid_address_is_400(app, firewall):
    response = fakes.request(app, 'PUT', '/1.0/interface/203.0.113/rules',
                             UPSTREAM_RULES)

    fakes.assert_error(response, 400, 'ip')
    assert firewall.applied == []


@pytest.mark.parametrize('body, field', [
    ({'protocol': 'TCP', 'cidr': None, 'port': 80}, 'body'),
    ([{'protocol': 'ICMP', 'cidr': None, 'port': 1}], '[0].protocol'),
    ([{'protocol': 'TCP', 'cidr': 'x', 'port': 80}], '[0].cidr'),
    ([{'protocol': 'TCP', 'cidr': None, 'port': 0}], '[0].port'),
    ([{'protocol': 'TCP', 'port': 80}], '[0].cidr'),
    ([{'protocol': 'TCP', 'cidr': None, 'port': 80, 'x': 1}], '[0].x'),
], ids=['object', 'protocol', 'cidr', 'port', 'missing-cidr',
        'unknown-field'])
def test_invalid_rules_are_400_naming_the_field(app, firewall, body, field):
    response = fakes.request(app, 'PUT', '/1.0/interface/203.0.113.10/rules',
                             body)

    fakes.assert_error(response, 400, field)
    assert firewall.applied == []


def test_malformed_json_is_400(app, firewall):
    response = fakes.request(app, 'PUT', '/1.0/interface/203.0.113.10/rules',
                             raw=b'[{"protocol": "TCP",')

    fakes.assert_error(response, 400, 'body')
    assert firewall.applied == []


def test_get_rules_is_405_allowing_put(app):
    response = fakes.request(app, 'GET', '/1.0/interface/203.0.113.10/rules')

    fakes.assert_error(response, 405, 'method')
    assert response.headers['Allow'] == 'PUT'


@pytest.mark.parametrize('path', ['/1.0/interface/203.0.113.10',
                                  '/1.0/interface/203.0.113.10/routes',
                                  '/1.0/interface/203.0.113.10/rules/x',
                                  '/1.0/interface'])
def test_other_interface_paths_are_404(app, firewall, path):
    response = fakes.request(app, 'PUT', path, UPSTREAM_RULES)

    fakes.assert_error(response, 404, 'path')
    assert firewall.applied == []


def test_address_on_no_interface_is_404(app, firewall):
    firewall.refuse_with = model.InvalidRequest(
        'vip_interfaces[0]', '203.0.113.99 is on no interface')

    response = fakes.request(app, 'PUT', '/1.0/interface/203.0.113.99/rules',
                             UPSTREAM_RULES)

    fakes.assert_error(response, 404, 'ip')
    assert response.json['reason'] == '203.0.113.99 is on no interface'
