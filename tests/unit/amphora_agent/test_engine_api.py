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
"""The engine endpoints, driven through the WSGI app.

The engine is a fake that records what reaches it and raises what a test
tells it to: these tests are about routing, bodies and answers.
"""

import os

from oslo_config import cfg
import pytest
import webob

from amphora_agent import config
from amphora_agent.engine import errors
from amphora_agent.engine import service
from tests.unit.amphora_agent import fakes

CONFIG = 'global\n    maxconn 100\n'


@pytest.fixture
def engine():
    return fakes.FakeEngine()


@pytest.fixture
def app(engine):
    return fakes.make_app(engine=engine, network_namespace='amphora-haproxy')


def request(app, method, path, body=None, content_type=None):
    req = webob.Request.blank(path, method=method)
    if body is not None:
        req.body = body if isinstance(body, bytes) else body.encode()
        if content_type:
            req.content_type = content_type
    return req.get_response(app)


def test_info_names_the_engine(app):
    info = request(app, 'GET', '/1.0/info').json

    assert info['haproxy_version'] == '2.6.12'
    assert info['haproxy_base_path'] == '/run/engine'
    assert info['vrrp_check_script'] == '/run/engine/vrrp/check-haproxy'
    assert info['network_namespace'] == 'amphora-haproxy'


@pytest.mark.parametrize('content_type', [
    None, 'text/plain', 'application/octet-stream',
    'application/x-www-form-urlencoded', 'application/json'])
def test_upload_takes_the_body_as_it_is(app, engine, content_type):
    response = request(app, 'PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy',
                       CONFIG, content_type)

    assert response.status_int == 202
    assert response.json == {'message': 'OK', 'details': 'store done'}
    assert engine.haproxy.calls == [('store', 'lb-1', CONFIG)]


def test_rejected_config_is_400_with_haproxy_words(app, engine):
    engine.haproxy.failures['store'] = errors.ConfigRejected(
        'haproxy refused the configuration',
        output="[ALERT] unknown keyword 'bogus'")

    response = request(app, 'PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy',
                       CONFIG)

    assert response.status_int == 400
    assert response.json['field'] == 'config'
    assert response.json['message'] == (
        'config: haproxy refused the configuration')
    assert response.json['details'] == "[ALERT] unknown keyword 'bogus'"


@pytest.mark.parametrize('body, reason', [
    (b'', 'required'), (b'  \n', 'required'), (b'\xff\xfe', 'UTF-8')])
def test_unreadable_config_is_400(app, engine, body, reason):
    response = request(app, 'PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy',
                       body)

    assert response.status_int == 400
    assert response.json['field'] == 'body'
    assert reason in response.json['reason']
    assert engine.haproxy.calls == []


@pytest.mark.parametrize('action', ['start', 'stop', 'reload'])
def test_actions(app, engine, action):
    response = request(app, 'PUT', f'/1.0/loadbalancer/lb-1/{action}')

    assert response.status_int == 202
    assert response.json == {'message': 'OK', 'details': 'act done'}
    assert engine.haproxy.calls == [('act', 'lb-1', action)]


def test_bad_action_is_400(app, engine):
    response = request(app, 'PUT', '/1.0/loadbalancer/lb-1/restart')

    assert response.status_int == 400
    assert response.json['field'] == 'action'
    assert engine.haproxy.calls == []


@pytest.mark.parametrize('failure, status, field', [
    (errors.UnknownLoadBalancer('lb-1'), 404, 'loadbalancer_id'),
    (errors.InvalidName('bad name'), 400, 'loadbalancer_id'),
    (errors.CommandFailed('haproxy did not start', output='[ALERT] bind'),
     500, 'haproxy'),
])
def test_action_failures(app, engine, failure, status, field):
    engine.haproxy.failures['act'] = failure

    response = request(app, 'PUT', '/1.0/loadbalancer/lb-1/start')

    assert response.status_int == status
    assert response.json['field'] == field
    assert response.json['details'] == failure.output


def test_delete(app, engine):
    response = request(app, 'DELETE', '/1.0/loadbalancer/lb-1')

    assert response.status_int == 200
    assert engine.haproxy.calls == [('delete', 'lb-1')]
    # Its TLS files go too.
    assert engine.certificates.deleted == ['lb-1']


def test_status(app, engine):
    response = request(app, 'GET', '/1.0/loadbalancer/lb-1/status')

    assert response.status_int == 200
    assert response.json == {'frontends': {}, 'backends': {}}


def test_status_of_a_stopped_load_balancer_is_404(app, engine):
    engine.haproxy.failures['status'] = errors.NotRunning('not running')

    response = request(app, 'GET', '/1.0/loadbalancer/lb-1/status')

    assert response.status_int == 404
    assert response.json['field'] == 'loadbalancer_id'


@pytest.mark.parametrize('method, path, status', [
    ('GET', '/1.0/loadbalancer/lb-1/start', 405),
    ('PUT', '/1.0/loadbalancer/lb-1/status', 405),
    ('GET', '/1.0/loadbalancer/lb-1', 405),
    ('PUT', '/1.0/loadbalancer/amp-1/lb-1/keepalived', 404),
    ('PUT', '/1.0/loadbalancer/a/b/c/d', 404),
    ('PUT', '/1.0/vrrp/upload/more', 404),
])
def test_paths_that_are_not_served(app, method, path, status):
    assert request(app, method, path).status_int == status


def test_vrrp_upload_and_actions(app, engine):
    upload = request(app, 'PUT', '/1.0/vrrp/upload', 'vrrp_instance x {}\n')
    start = request(app, 'PUT', '/1.0/vrrp/start')

    assert (upload.status_int, start.status_int) == (202, 202)
    assert engine.keepalived.calls == [('store', 'vrrp_instance x {}\n'),
                                       ('act', 'start')]
    assert request(app, 'PUT', '/1.0/vrrp/restart').status_int == 400


def test_vrrp_start_without_config_is_409(app, engine):
    engine.keepalived.failures['act'] = errors.NoConfiguration(
        'no keepalived configuration uploaded yet')

    response = request(app, 'PUT', '/1.0/vrrp/start')

    assert response.status_int == 409
    assert response.json['field'] == 'config'


def test_engine_from_configuration(tmp_path):
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], project='test')
    conf.set_override('firewall_state_file', str(tmp_path / 'fw.json'),
                      group='amphora_agent')
    conf.set_override('base_path', str(tmp_path / 'engine'),
                      group='haproxy_amphora')
    conf.set_override('network_namespace', '', group='amphora_agent')
    conf.set_override('base_cert_dir', str(tmp_path / 'certs'),
                      group='haproxy_amphora')
    conf.set_override('ping_wrapper_path', str(tmp_path / 'ping.sh'),
                      group='amphora_agent')

    engine = service.Engine.from_conf(conf)

    assert engine.layout.base_path == str(tmp_path / 'engine')
    assert engine.haproxy.namespace is None
    info = engine.info()
    assert info['vrrp_check_script'] == str(
        tmp_path / 'engine' / 'vrrp' / 'check-haproxy')
    assert info['haproxy_base_cert_dir'] == str(tmp_path / 'certs')
    assert info['ping_wrapper'] == str(tmp_path / 'ping.sh')
    assert os.access(tmp_path / 'ping.sh', os.X_OK)
    # The certificate directory is made by the first upload only.
    assert not (tmp_path / 'certs').exists()


def test_engine_defaults_are_upstream_paths():
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], project='test')

    assert conf.haproxy_amphora.base_cert_dir == '/var/lib/octavia/certs'
    assert conf.amphora_agent.ping_wrapper_path == (
        '/var/lib/octavia/ping-wrapper.sh')
    assert conf.amphora_agent.prometheus_proxy_port == 9102
