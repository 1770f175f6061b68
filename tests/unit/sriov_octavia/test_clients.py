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
"""The openstacksdk connection factory, configured as Octavia is."""

import http.server
import json
import os

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1.identity.generic import password
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import noauth
from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from tests.unit.sriov_octavia import http_stub

NEUTRON = 'http://127.0.0.1:49696/'
NOVA = 'http://127.0.0.1:49774/compute/v2.1'
GLANCE = 'http://127.0.0.1:49774/image'
OCTAVIA = 'http://127.0.0.1:49876'


@pytest.fixture
def conf(monkeypatch):
    monkeypatch.setattr(clients, '_connections', {})
    fixture = cfg_fixture.Config(cfg.CONF)
    fixture.setUp()
    sriov_conf.register_opts(cfg.CONF)
    fixture.config(auth_type='none', region_name='RegionTest',
                   group='service_auth')
    fixture.config(endpoint_override=NEUTRON, group='neutron')
    fixture.config(endpoint_override=NOVA, region_name='RegionNova',
                   group='nova')
    fixture.config(endpoint_override=GLANCE, valid_interfaces=['internal'],
                   group='glance')
    yield fixture
    fixture.cleanUp()


def _password(conf, **options):
    conf.register_opts(ks_loading.get_auth_plugin_conf_options('password'),
                       group='service_auth')
    conf.config(group='service_auth', **dict(
        dict(auth_type='password', auth_url='http://127.0.0.1:49500/v3',
             username='octavia', password='secret', project_name='service',
             user_domain_name='Default', project_domain_name='Default'),
        **options))


def test_endpoints_and_regions_come_from_the_service_sections(conf):
    config = clients.connection().config
    assert config.get_endpoint('network') == NEUTRON
    assert config.get_endpoint('compute') == NOVA
    assert config.get_endpoint('image') == GLANCE
    assert config.get_region_name('compute') == 'RegionNova'
    # [service_auth] gives the defaults.
    assert config.get_region_name('network') == 'RegionTest'
    assert config.get_region_name('image') == 'RegionTest'
    assert config.get_interface('image') == ['internal']
    assert config.get_interface('network') == 'public'


def test_service_type_and_interface_defaults(conf):
    conf.config(valid_interfaces=['admin'], group='service_auth')
    conf.config(service_type='compute-legacy', group='nova')
    config = clients.connection().config
    assert config.get_interface('network') == ['admin']
    # Not hidden by Octavia's default [nova] endpoint_type.
    assert config.get_interface('compute') == ['admin']
    assert config.get_interface('image') == ['internal']
    assert config.config['compute_service_type'] == 'compute-legacy'


def test_octavias_own_endpoint_options_are_honoured(conf):
    conf.config(endpoint_override=None, endpoint='http://nova.example/v2.1',
                endpoint_type='internalURL', group='nova')
    config = clients.connection().config
    assert config.get_endpoint('compute') == 'http://nova.example/v2.1'
    assert config.get_interface('compute') == 'internal'
    # endpoint_override wins over Octavia's endpoint.
    conf.config(endpoint='http://glance.example/', group='glance')
    assert clients.connection().config.get_endpoint('image') == GLANCE


def test_contradicting_adapter_options_are_a_config_error(conf):
    conf.config(version='2', min_version='2', group='glance')
    with pytest.raises(os_exceptions.ConfigException, match=r'\[glance\]'):
        clients.connection()


class _Neutron(http.server.BaseHTTPRequestHandler):
    """Enough of Neutron for version discovery and a network list."""

    def do_GET(self):
        self.server.paths.append(self.path)
        root = f'http://127.0.0.1:{self.server.server_port}/'
        if self.path == '/':
            body = {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                                  'links': [{'rel': 'self',
                                             'href': root + 'v2.0/'}]}]}
        else:
            body = {'networks': [{'id': 'n-1', 'name': 'vip-net'}]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def neutron():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Neutron)
    server.paths = []
    with http_stub.serving(server):
        yield server


def test_the_network_proxy_talks_to_the_override(conf, neutron):
    root = f'http://127.0.0.1:{neutron.server_port}/'
    conf.config(endpoint_override=root, group='neutron')
    conn = clients.connection()
    assert [net.name for net in conn.network.networks()] == ['vip-net']
    assert conn.network.get_endpoint() == root + 'v2.0/'
    assert neutron.paths[-1].startswith('/v2.0/networks')


def test_the_session_is_built_from_service_auth(conf, tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('')
    _password(conf, cafile=str(ca), timeout=300)
    conn = clients.connection()
    auth = conn.session.auth
    assert isinstance(auth, password.Password)
    assert auth.auth_url == 'http://127.0.0.1:49500/v3'
    assert auth._username == 'octavia'
    assert conn.session.verify == str(ca)
    # [sriov_octavia] api_timeout bounds every request, not Octavia's own
    # [service_auth] timeout.
    assert conn.session.timeout == 30.0
    # With Keystone, Octavia's own API is found in the catalog.
    conf.config(api_base_uri=OCTAVIA, group='api_settings')
    assert clients.connection().config.get_endpoint('load-balancer') is None


def test_without_keystone_octavias_api_is_its_base_uri(conf):
    conf.config(api_base_uri=OCTAVIA, group='api_settings')
    conn = clients.connection()
    assert isinstance(conn.session.auth, noauth.NoAuth)
    assert conn.config.get_endpoint('load-balancer') == OCTAVIA


def test_api_timeout_is_the_session_timeout(conf):
    conf.config(api_timeout=5, group='sriov_octavia')
    assert clients.connection().session.timeout == 5.0


def test_connection_is_reused_within_a_process(conf):
    assert clients.connection() is clients.connection()


def test_credentials_are_part_of_the_key(conf):
    _password(conf)
    first = clients.connection()
    assert first is clients.connection()
    conf.config(password='rotated', group='service_auth')
    assert clients.connection() is not first


def test_other_settings_give_another_connection(conf):
    first = clients.connection()
    conf.config(endpoint_override='http://127.0.0.1:49697/', group='neutron')
    second = clients.connection()
    assert second is not first
    assert second.config.get_endpoint('network') == 'http://127.0.0.1:49697/'
    conf.config(api_timeout=5, group='sriov_octavia')
    assert clients.connection() not in (first, second)


def test_a_forked_child_builds_its_own(conf):
    parent = clients.connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = clients.connection()
            os.write(write, b'same' if child is parent else b'new')
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b'new'


def test_no_auth_type_is_a_config_error(conf):
    conf.config(auth_type=None, group='service_auth')
    with pytest.raises(os_exceptions.ConfigException,
                       match=r'\[service_auth\] auth_type'):
        clients.connection()


def test_unknown_auth_plugin_is_a_keystoneauth_error(conf):
    conf.config(auth_type='tcl-no-such-plugin', group='service_auth')
    with pytest.raises(ks_exceptions.ClientException):
        clients.connection()


def test_octavias_registrations_are_reused():
    sriov_conf.register_opts(cfg.CONF)
    # Octavia's own [nova] options stay, keystoneauth's adapter options
    # are added beside them.
    for name in ('enable_anti_affinity', 'region_name', 'service_name',
                 'endpoint_override', 'valid_interfaces', 'service_type'):
        assert name in cfg.CONF.nova
    for name in ('ca_certificates_file', 'insecure', 'endpoint_override'):
        assert name in cfg.CONF.glance
    # [service_auth] and [neutron] are Octavia's, complete.
    for group in ('service_auth', 'neutron'):
        for name in ('auth_type', 'cafile', 'timeout', 'endpoint_override'):
            assert name in cfg.CONF[group]


def test_a_private_configuration_works_too(tmp_path):
    path = tmp_path / 'octavia.conf'
    path.write_text('[service_auth]\nauth_type = none\n'
                    f'[nova]\nendpoint_override = {NOVA}\n')
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='octavia')
    conn = clients.connection(conf)
    assert conn.config.get_endpoint('compute') == NOVA
    assert conn is clients.connection(conf)
