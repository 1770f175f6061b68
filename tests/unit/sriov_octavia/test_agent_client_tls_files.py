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
"""AgentClient's calls for a load balancer's TLS files, over mutual TLS.

A stub agent records each request's method, path, Content-Type and raw
body and answers what the test tells it; the real agent answers these
calls in tests/functional/amphora_agent/test_engine_tls.py.
"""

import http.server
import json
import ssl
import types

import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs
from tests.unit.sriov_octavia import http_stub

PATH = '/1.0/loadbalancer/amp-1/lb-1/certificates/cert-1.pem'
PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
MISSING = (404, {'field': 'filename', 'reason': 'no file cert-1.pem',
                 'details': ''})


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    path = tmp_path_factory.mktemp('tls-files-client-pki')
    ca = certs.CertificateAuthority.create(str(path / 'ca.pem'), 'test CA')
    return types.SimpleNamespace(
        ca=ca.path,
        server=ca.issue_server(str(path / 'server.pem'), ips=['127.0.0.1']),
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


@pytest.mark.parametrize('pem_text', [PEM, PEM.encode()])
def test_upload_sends_the_file_as_it_is(stub, api, pem_text):
    stub.answers[('PUT', PATH)] = (200, {'message': 'OK', 'md5sum': 'ab'})

    answer = api.upload_certificate_file('amp-1', 'lb-1', 'cert-1.pem',
                                         pem_text)

    assert answer == {'message': 'OK', 'md5sum': 'ab'}
    [sent] = stub.received
    assert sent.body == PEM.encode()
    assert sent.content_type.startswith('text/plain')


def test_a_refused_file_names_the_field(stub, api):
    stub.answers[('PUT', PATH)] = (400, {
        'field': 'certificate', 'details': '',
        'reason': 'its public key does not match the private key in the '
                  'PEM'})

    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_certificate_file('amp-1', 'lb-1', 'cert-1.pem', PEM)

    assert (raised.value.status, raised.value.field) == (400, 'certificate')
    assert 'does not match' in raised.value.reason


def test_md5_of_a_stored_and_of_a_missing_file(stub, api):
    stub.answers[('GET', PATH)] = (200, {'md5sum': '0123abcd'})

    assert api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem') == (
        '0123abcd')

    stub.answers[('GET', PATH)] = MISSING
    assert api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem') is None


def test_md5_from_an_agent_without_the_endpoint_is_an_error(stub, api):
    # A 404 for the path itself (an older agent) is not "no such file".
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem')

    assert raised.value.field == 'path'


def test_delete(stub, api):
    stub.answers[('DELETE', PATH)] = (200, {'message': 'OK'})

    assert api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem') == {
        'message': 'OK'}
    assert stub.received[0].method == 'DELETE'


def test_delete_of_a_missing_file(stub, api):
    stub.answers[('DELETE', PATH)] = MISSING

    assert api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem',
                                       missing_ok=True) is None
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem')
    assert (raised.value.status, raised.value.field) == (404, 'filename')
