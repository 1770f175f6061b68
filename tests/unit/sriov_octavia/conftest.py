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
"""The controller's configuration, overridable per test; a stub agent.

The stub agent (``stub``, reached by ``api``) records each request's
method, path, Content-Type and raw body and answers what the test tells
it, over the mutual TLS the real agent uses. test_agent_client has its
own, richer stub agent.
"""

import http.server
import json
import ssl
import types

from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import conf as sriov_conf
from sriov_octavia_testbed import certs
from tests.unit.sriov_octavia import http_stub


@pytest.fixture
def conf():
    """The global configuration; what a test sets is undone after it."""
    fixture = cfg_fixture.Config(sriov_conf.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def offline(conf):
    """Metadata checks that do not ask the cloud."""
    conf.config(check_cloud_resources=False, group='sriov_octavia')


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A CA, the stub agent's certificate and the controller's."""
    path = tmp_path_factory.mktemp('stub-agent-pki')
    ca = certs.CertificateAuthority.create(str(path / 'ca.pem'), 'test CA')
    return types.SimpleNamespace(
        ca=ca.path,
        server=ca.issue_server(str(path / 'server.pem'),
                               hostnames=['amphora-1'], ips=['127.0.0.1']),
        client=ca.issue_client(str(path / 'client.pem'), 'controller'))


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
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
    """The stub agent: set ``answers[(method, path)] = (status, body)``.

    What it received is in ``received``; any other request is answered
    404 for the path, as an agent without the endpoint does.
    """
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                             _RecordingHandler)
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
    """An AgentClient of the stub agent, without retries."""
    with agent_client.AgentClient(('127.0.0.1', stub.server_address[1]),
                                  pki.client, pki.ca, retries=0,
                                  timeout=(5, 10)) as client:
        yield client
