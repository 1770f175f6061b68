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
"""The plug and interfaces endpoints, driven through the WSGI app.

The data namespace is a fake recording what reaches it: these tests are
about what the API lets through and what it answers; the kernel side is
tested in tests/functional/amphora_agent/test_plug.py.
"""

import pytest

from amphora_agent.network import interfaces
from amphora_agent.network import model
from tests.unit.amphora_agent import fakes

MAC = 'fa:16:3e:00:00:01'
VIP_BODY = {'mac_address': MAC, 'vrrp_ip': '192.0.2.5',
            'subnet_cidr': '192.0.2.0/24', 'gateway': '192.0.2.1',
            'host_routes': [], 'mtu': 1500, 'additional_vips': [],
            'vip_on_interface': True}
NETWORK_BODY = {'mac_address': MAC, 'mtu': None, 'fixed_ips': [
    {'ip_address': '203.0.113.5', 'subnet_cidr': '203.0.113.0/24'}]}


def view(name='eth1', mac=MAC):
    return {'name': name, 'mac_address': mac, 'state': 'up',
            'operstate': 'up', 'mtu': 1500, 'addresses': [], 'index': 3,
            'vf': True, 'routing_table': 1003}


class FakeNetwork:
    """Records plans and unplugs; raises ``refuse_with`` if set."""

    instances = []

    def __init__(self, namespace, vf_link_kinds=(), before_link_up=None):
        self.namespace = namespace
        self.vf_link_kinds = vf_link_kinds
        self.before_link_up = before_link_up
        self.plans = []
        self.unplugged = []
        self.refuse_with = None
        FakeNetwork.instances.append(self)

    def _check(self):
        if self.refuse_with:
            raise self.refuse_with

    def plug(self, plan):
        self._check()
        self.plans.append(plan)
        return view()

    def unplug(self, mac_address):
        self._check()
        self.unplugged.append(mac_address)
        return view()

    def interfaces(self):
        self._check()
        return [view('eth1'), view('eth2', 'fa:16:3e:00:00:02')]


class RolesFirewall(fakes.FakeFirewall):
    def current(self):
        return dict(super().current(), interfaces={'eth1': 'vip'})


@pytest.fixture
def network(monkeypatch):
    FakeNetwork.instances = []
    monkeypatch.setattr(interfaces, 'DataNamespace', FakeNetwork)
    yield lambda: FakeNetwork.instances[-1]


@pytest.fixture
def firewall():
    return RolesFirewall()


@pytest.fixture
def app(network, firewall):
    return fakes.make_app(firewall=firewall,
                          network_namespace='amphora-haproxy',
                          vf_link_kinds=['veth'])


def test_the_network_works_on_the_configured_namespace(app, network,
                                                       firewall):
    assert network().namespace == 'amphora-haproxy'
    assert network().vf_link_kinds == ['veth']
    assert network().before_link_up == firewall.refresh


def test_plug_vip_hands_the_plan_over(app, network):
    response = fakes.request(app, 'POST', '/1.0/plug/vip/192.0.2.10',
                             VIP_BODY)

    assert response.status_int == 200, response.text
    assert network().plans == [model.parse_plug_vip('192.0.2.10', VIP_BODY)]
    assert response.json['message'] == 'OK'
    assert response.json['interface'] == dict(view(), firewall_role='vip')


def test_plug_ipv6_vip_in_the_path(app, network):
    body = dict(VIP_BODY, vrrp_ip='2001:db8::5', subnet_cidr='2001:db8::/64',
                gateway='2001:db8::1')

    response = fakes.request(app, 'POST', '/1.0/plug/vip/2001:db8::10',
                             body)

    assert response.status_int == 200, response.text
    assert network().plans[0].rule_sources[-1].compressed == '2001:db8::10'


@pytest.mark.parametrize('path, body, field', [
    ('/1.0/plug/vip/192.0.2.300', VIP_BODY, 'vip'),
    ('/1.0/plug/vip/192.0.2.10', dict(VIP_BODY, vrrp_ip='10.0.0.1'),
     'vrrp_ip'),
    ('/1.0/plug/vip/192.0.2.10', dict(VIP_BODY, mtu=True), 'mtu'),
    ('/1.0/plug/network', dict(NETWORK_BODY, fixed_ips=[{}]),
     'fixed_ips[0].ip_address'),
    ('/1.0/plug/network', dict(NETWORK_BODY, extra=1), 'extra'),
    ('/1.0/plug/network', {'fixed_ips': []}, 'mac_address'),
])
def test_invalid_plug_is_400_and_reaches_nothing(app, network, path, body,
                                                 field):
    response = fakes.request(app, 'POST', path, body)

    fakes.assert_error(response, 400, field)
    assert network().plans == []


def test_plug_needs_json(app, network):
    response = fakes.request(app, 'POST', '/1.0/plug/network',
                             raw=b'mac=1', content_type='text/plain')

    fakes.assert_error(response, 415, 'Content-Type')


def test_plug_network(app, network):
    response = fakes.request(app, 'POST', '/1.0/plug/network',
                             NETWORK_BODY)

    assert response.status_int == 200, response.text
    assert network().plans == [model.parse_plug_network(NETWORK_BODY)]


@pytest.mark.parametrize('error, status, field', [
    (interfaces.InterfaceNotFound(MAC), 404, 'mac_address'),
    (interfaces.RefusedToMove('eth0 has addresses'), 409, 'mac_address'),
    (interfaces.NamespaceUnavailable('no namespace'), 503,
     'network_namespace'),
    (interfaces.KernelRefused('the kernel refused a change: (17, ...)'),
     500, 'interface'),
])
def test_network_failures_are_named(app, network, error, status, field):
    network().refuse_with = error

    for method, path, body in (
            ('POST', '/1.0/plug/network', NETWORK_BODY),
            ('POST', '/1.0/plug/vip/192.0.2.10', VIP_BODY),
            ('DELETE', f'/1.0/plug/network/{MAC}', None)):
        fakes.assert_error(fakes.request(app, method, path, body),
                           status, field)


def test_unplug(app, network):
    response = fakes.request(app, 'DELETE',
                             '/1.0/plug/network/FA:16:3E:00:00:01')

    assert response.status_int == 200, response.text
    assert network().unplugged == [MAC]
    assert response.json['interface']['firewall_role'] == 'vip'


def test_unplug_bad_mac_is_400(app, network):
    fakes.assert_error(
        fakes.request(app, 'DELETE', '/1.0/plug/network/not-a-mac'), 400,
        'mac_address')
    assert network().unplugged == []


def test_interfaces_with_firewall_roles(app, network):
    response = fakes.request(app, 'GET', '/1.0/interfaces')

    assert response.status_int == 200
    assert [(item['name'], item['firewall_role'])
            for item in response.json['interfaces']] == [('eth1', 'vip'),
                                                         ('eth2', None)]


@pytest.mark.parametrize('method, path', [
    ('GET', '/1.0/plug/network'), ('PUT', '/1.0/plug/vip/192.0.2.10'),
    ('POST', f'/1.0/plug/network/{MAC}'), ('POST', '/1.0/interfaces')])
def test_wrong_method_is_405(app, method, path):
    fakes.assert_error(fakes.request(app, method, path, {}), 405,
                       'method')


@pytest.mark.parametrize('path', ['/1.0/plug', '/1.0/plug/vip',
                                  '/1.0/plug/vip/192.0.2.10/more',
                                  f'/1.0/plug/network/{MAC}/more'])
def test_unknown_plug_paths_are_404(app, path):
    fakes.assert_error(fakes.request(app, 'POST', path, {}), 404, 'path')
