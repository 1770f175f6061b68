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
"""AgentClient's engine calls against a stub agent over mutual TLS.

The stub records each request's method, path, Content-Type and raw body,
and answers what the test tells it; the real agent answers these calls in
tests/functional/amphora_agent/test_engine_haproxy.py.
"""

import http.server
import json
import ssl
import types

import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs
from tests.unit.sriov_octavia import http_stub

CONFIG = 'global\n    maxconn 100\n# \u00e9t\u00e9\n'


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    path = tmp_path_factory.mktemp('engine-client-pki')
    ca = certs.CertificateAuthority.create(str(path / 'ca.pem'), 'test CA')
    return types.SimpleNamespace(
        ca=ca.path,
        server=ca.issue_server(str(path / 'server.pem'),
                               hostnames=['amphora-1'], ips=['127.0.0.1']),
        client=ca.issue_client(str(path / 'client.pem'), 'controller'))


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.server.received.append(types.SimpleNamespace(
            method=self.command, path=self.path,
            content_type=self.headers.get('Content-Type'),
            body=self.rfile.read(length) if length else b''))
        status, answer = self.server.answers.get(
            (self.command, self.path),
            (404, {'field': 'path', 'reason': 'no resource'}))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = _answer


@pytest.fixture
def stub(pki):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pki.ca)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.answers = {}
    server.received = []
    with http_stub.serving(server):
        yield server


@pytest.fixture
def api(stub, pki):
    with agent_client.AgentClient(('127.0.0.1', stub.server_address[1]),
                                  pki.client, pki.ca, retries=0,
                                  timeout=(5, 10)) as client:
        yield client


OK = (202, {'message': 'OK', 'details': 'done'})


def test_upload_haproxy_config_sends_the_file_as_it_is(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy')] = OK

    assert api.upload_haproxy_config('amp-1', 'lb-1', CONFIG) == OK[1]

    [sent] = stub.received
    assert sent.body == CONFIG.encode('utf-8')
    assert sent.content_type.startswith('text/plain')


def test_rejected_config_carries_haproxy_words(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy')] = (400, {
        'field': 'config', 'reason': 'haproxy refused the configuration',
        'details': "[ALERT] parsing [haproxy.cfg:3] : unknown keyword "
                   "'bogus'"})

    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_haproxy_config('amp-1', 'lb-1', CONFIG)

    assert raised.value.status == 400
    assert raised.value.field == 'config'
    assert "unknown keyword 'bogus'" in raised.value.reason


@pytest.mark.parametrize('action', ['start', 'stop', 'reload'])
def test_loadbalancer_action(stub, api, action):
    stub.answers[('PUT', f'/1.0/loadbalancer/lb-1/{action}')] = OK

    assert api.loadbalancer_action('lb-1', action) == OK[1]
    assert stub.received[0].body == b''


def test_delete_loadbalancer(stub, api):
    stub.answers[('DELETE', '/1.0/loadbalancer/lb-1')] = (
        200, {'message': 'OK', 'details': 'haproxy was not running'})

    assert api.delete_loadbalancer('lb-1')['message'] == 'OK'


def test_get_loadbalancer_status(stub, api):
    status = {'frontends': {'listener-1': {'status': 'OPEN'}},
              'backends': {}}
    stub.answers[('GET', '/1.0/loadbalancer/lb-1/status')] = (200, status)
    stub.answers[('GET', '/1.0/loadbalancer/lb-2/status')] = (404, {
        'field': 'loadbalancer_id', 'reason': 'no running haproxy'})

    assert api.get_loadbalancer_status('lb-1') == status
    assert api.get_loadbalancer_status('lb-2') is None


def test_status_of_an_agent_without_the_endpoint_is_an_error(stub, api):
    # A 404 for the path itself (an older agent) is not "not running".
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.get_loadbalancer_status('lb-1')

    assert raised.value.field == 'path'


def test_keepalived_calls(stub, api):
    stub.answers[('PUT', '/1.0/vrrp/upload')] = OK
    stub.answers[('PUT', '/1.0/vrrp/start')] = OK

    assert api.upload_keepalived_config('vrrp_instance x {}\n') == OK[1]
    assert api.vrrp_action('start') == OK[1]
    assert [(sent.method, sent.path, sent.body)
            for sent in stub.received] == [
        ('PUT', '/1.0/vrrp/upload', b'vrrp_instance x {}\n'),
        ('PUT', '/1.0/vrrp/start', b'')]
