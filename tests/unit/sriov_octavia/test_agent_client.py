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
"""AgentClient against a stub agent speaking HTTPS with client certs.

The stub answers what a test tells it and records what it received, so
these tests see the requests the client sends and how it reads answers,
over the same mutual TLS the real agent uses (tested against the real
agent in tests/functional/amphora_agent/test_plug.py).
"""

import contextlib
import http.server
import json
import ssl
import time
import types

from cryptography import x509
from oslo_config import cfg
from oslo_utils import uuidutils
import pytest
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence import models
from taskflow.types import failure

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import conf as sriov_conf
from sriov_octavia_testbed import certs
from tests.unit.sriov_octavia import http_stub
from tests.unreachable import backlog_full
from tests.unreachable import closed_port

MAC = 'fa:16:3e:00:00:01'
INTERFACE = {'name': 'eth1', 'mac_address': MAC, 'state': 'up'}


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    path = tmp_path_factory.mktemp('client-pki')
    ca = certs.CertificateAuthority.create(str(path / 'ca.pem'), 'test CA')
    foreign = certs.CertificateAuthority.create(str(path / 'foreign.pem'),
                                                'foreign CA')
    return types.SimpleNamespace(
        ca=ca.path, foreign_ca=foreign.path,
        server=ca.issue_server(str(path / 'server.pem'),
                               hostnames=['amphora-1'], ips=['127.0.0.1']),
        # As upstream issues them: a name, no address.
        named_server=ca.issue_server(str(path / 'named.pem'),
                                     hostnames=['amphora-1']),
        client=ca.issue_client(str(path / 'client.pem'), 'controller'),
        foreign_client=foreign.issue_client(str(path / 'intruder.pem'),
                                            'intruder'),
        ca_authority=ca)


class StubAgent(http.server.ThreadingHTTPServer):
    """Answers ``answers[(method, path)]`` = (status, body or text)."""

    daemon_threads = True

    def __init__(self, pki, server_cert):
        super().__init__(('127.0.0.1', 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server_cert)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.answers = {}
        self.received = []
        self.content_types = []
        # Seconds to stall the first request (a read timeout).
        self.stall_first = 0

    @property
    def address(self):
        return ('127.0.0.1', self.server_address[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        self.server.content_types.append(self.headers.get('Content-Type'))
        self.server.received.append(
            (self.command, self.path, _decoded(body)))
        if self.server.stall_first and len(self.server.received) == 1:
            time.sleep(self.server.stall_first)
        status, answer = self.server.answers.get(
            (self.command, self.path),
            (404, {'field': 'path', 'reason': 'no resource'}))
        data = (answer.encode() if isinstance(answer, str)
                else json.dumps(answer).encode())
        try:
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up on a stalled request

    do_GET = do_POST = do_PUT = do_DELETE = _answer


def _decoded(body):
    """A JSON body decoded, a file (text) as it is, None for none."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode()


@pytest.fixture
def stub(pki):
    with http_stub.serving(StubAgent(pki, pki.server)) as server:
        yield server


@pytest.fixture
def named_stub(pki):
    with http_stub.serving(StubAgent(pki, pki.named_server)) as server:
        yield server


def make_client(stub, pki, **kwargs):
    kwargs.setdefault('retries', 0)
    kwargs.setdefault('timeout', (5, 10))
    return agent_client.AgentClient(stub.address, pki.client, pki.ca,
                                    **kwargs)


def test_base_url_from_address_or_url(pki):
    assert agent_client.AgentClient(
        ('192.0.2.5', 9443), pki.client, pki.ca).base_url == (
        'https://192.0.2.5:9443')
    assert agent_client.AgentClient(
        ('2001:db8::5', 9443), pki.client, pki.ca).base_url == (
        'https://[2001:db8::5]:9443')
    assert agent_client.AgentClient(
        'https://192.0.2.5:9443/', pki.client, pki.ca).base_url == (
        'https://192.0.2.5:9443')


def test_plug_vip_sends_the_agent_body(stub, pki):
    stub.answers[('POST', '/1.0/plug/vip/192.0.2.10')] = (
        200, {'message': 'OK', 'interface': INTERFACE})

    interface = make_client(stub, pki).plug_vip(
        '192.0.2.10', MAC, '192.0.2.5', '192.0.2.0/24', gateway='192.0.2.1',
        host_routes=({'destination': '10.0.0.0/8',
                      'nexthop': '192.0.2.254'},),
        mtu=1500, vip_on_interface=False)

    assert interface == INTERFACE
    assert stub.received == [('POST', '/1.0/plug/vip/192.0.2.10', {
        'mac_address': MAC, 'vrrp_ip': '192.0.2.5',
        'subnet_cidr': '192.0.2.0/24', 'gateway': '192.0.2.1',
        'host_routes': [{'destination': '10.0.0.0/8',
                         'nexthop': '192.0.2.254'}],
        'mtu': 1500, 'additional_vips': [], 'vip_on_interface': False})]


def test_plug_and_unplug_network(stub, pki):
    fixed_ips = [{'ip_address': '203.0.113.5',
                  'subnet_cidr': '203.0.113.0/24'}]
    stub.answers[('POST', '/1.0/plug/network')] = (
        200, {'message': 'OK', 'interface': INTERFACE})
    stub.answers[('DELETE', f'/1.0/plug/network/{MAC}')] = (
        200, {'message': 'OK', 'interface': INTERFACE})
    client = make_client(stub, pki)

    assert client.plug_network(MAC, fixed_ips, mtu=9000) == INTERFACE
    assert client.unplug_network(MAC) == INTERFACE
    assert stub.received == [
        ('POST', '/1.0/plug/network',
         {'mac_address': MAC, 'fixed_ips': fixed_ips, 'mtu': 9000}),
        ('DELETE', f'/1.0/plug/network/{MAC}', None)]


def test_firewall_calls(stub, pki):
    body = {'vip_interfaces': ['192.0.2.5'], 'listeners': []}
    stub.answers[('POST', '/1.0/security-group')] = (200, {'generation': 1})
    stub.answers[('GET', '/1.0/security-group')] = (200, {'generation': 1})
    stub.answers[('GET', '/1.0/security-group/counters')] = (
        200, {'listeners': {}})
    client = make_client(stub, pki)

    assert client.set_security_group(body) == {'generation': 1}
    assert client.get_security_group() == {'generation': 1}
    assert client.get_counters() == {'listeners': {}}
    assert stub.received[0] == ('POST', '/1.0/security-group', body)


def test_agent_error_becomes_agent_rejected(stub, pki):
    stub.answers[('POST', '/1.0/plug/network')] = (400, {
        'faultstring': 'fixed_ips[0].gateway: bad', 'field':
        'fixed_ips[0].gateway', 'reason': 'bad', 'code': 400})

    with pytest.raises(agent_client.AgentRejected) as raised:
        make_client(stub, pki, retries=3).plug_network(MAC, [])

    error = raised.value
    assert (error.status, error.field, error.reason) == (
        400, 'fixed_ips[0].gateway', 'bad')
    assert 'fixed_ips[0].gateway: bad' in str(error)
    # An answer is final: not retried.
    assert len(stub.received) == 1


def test_foreign_error_answer_is_still_readable(stub, pki):
    stub.answers[('GET', '/1.0/info')] = (502, 'bad gateway from a proxy')

    with pytest.raises(agent_client.AgentRejected) as raised:
        make_client(stub, pki).get_info()

    assert raised.value.status == 502
    assert raised.value.field == 'request'
    assert 'bad gateway' in raised.value.reason


def test_unplug_missing_ok(stub, pki):
    stub.answers[('DELETE', f'/1.0/plug/network/{MAC}')] = (
        404, {'field': 'mac_address', 'reason': 'no interface'})
    client = make_client(stub, pki)

    assert client.unplug_network(MAC, missing_ok=True) is None
    with pytest.raises(agent_client.AgentRejected):
        client.unplug_network(MAC)


def test_read_timeout_is_retried(stub, pki):
    stub.answers[('GET', '/1.0/interfaces')] = (
        200, {'interfaces': [INTERFACE]})
    stub.stall_first = 3

    interfaces = make_client(stub, pki, timeout=(5, 1), retries=2,
                             retry_interval=0).get_interfaces()

    assert interfaces == [INTERFACE]
    assert len(stub.received) == 2


def test_nobody_listening_is_unreachable(pki):
    client = agent_client.AgentClient(('127.0.0.1', closed_port()),
                                      pki.client, pki.ca, retries=1,
                                      retry_interval=0)

    with pytest.raises(agent_client.AgentUnreachable) as raised:
        client.get_info()

    assert not isinstance(raised.value, agent_client.AgentTLSError)
    assert 'management' in str(raised.value)


def test_server_certificate_from_another_ca_is_a_tls_error(stub, pki):
    client = agent_client.AgentClient(stub.address, pki.client,
                                      pki.foreign_ca, retries=3)

    with pytest.raises(agent_client.AgentTLSError) as raised:
        client.get_info()

    assert 'server_ca' in str(raised.value)
    # A certificate problem is not retried.
    assert stub.received == []


def test_certificate_must_name_the_address_by_default(named_stub, pki):
    named_stub.answers[('GET', '/1.0/info')] = (200, {'api_version': '1.0'})

    with pytest.raises(agent_client.AgentTLSError):
        make_client(named_stub, pki).get_info()
    assert make_client(named_stub, pki,
                       server_name='amphora-1').get_info() == {
        'api_version': '1.0'}
    assert make_client(named_stub, pki, server_name=False).get_info() == {
        'api_version': '1.0'}
    with pytest.raises(agent_client.AgentTLSError):
        make_client(named_stub, pki, server_name='amphora-2').get_info()


def test_environment_ca_bundle_does_not_replace_the_agent_ca(
        stub, pki, monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', pki.foreign_ca)
    stub.answers[('GET', '/1.0/info')] = (200, {'api_version': '1.0'})

    assert make_client(stub, pki).get_info() == {'api_version': '1.0'}


def test_wait_until_up_returns_info(stub, pki):
    stub.answers[('GET', '/1.0/info')] = (200, {'api_version': '1.0'})

    assert make_client(stub, pki).wait_until_up(timeout=30) == {
        'api_version': '1.0'}


def test_wait_until_up_gives_up(pki):
    client = agent_client.AgentClient(('127.0.0.1', closed_port()),
                                      pki.client, pki.ca)

    with pytest.raises(agent_client.AgentUnreachable):
        client.wait_until_up(timeout=2)


def test_wait_for_interface(stub, pki):
    stub.answers[('GET', '/1.0/interfaces')] = (
        200, {'interfaces': [INTERFACE]})
    client = make_client(stub, pki)

    assert client.wait_for_interface(MAC.upper(), timeout=5) == INTERFACE
    with pytest.raises(agent_client.InterfaceMissing) as raised:
        client.wait_for_interface('fa:16:3e:00:00:99', timeout=2)
    assert raised.value.mac_address == 'fa:16:3e:00:00:99'
    assert 'Nova attached the port' in str(raised.value)


def test_from_conf(stub, pki):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([])
    client = agent_client.AgentClient.from_conf('127.0.0.1', conf=conf)
    assert client.base_url == 'https://127.0.0.1:9443'
    conf.set_override('client_cert', pki.client, group='haproxy_amphora')
    conf.set_override('server_ca', pki.ca, group='haproxy_amphora')
    conf.set_override('agent_port', stub.address[1], group='sriov_amphora')
    conf.set_override('request_timeout', 7, group='sriov_amphora')
    stub.answers[('GET', '/1.0/info')] = (200, {'api_version': '1.0'})

    client = agent_client.AgentClient.from_conf('127.0.0.1', conf=conf)

    assert client.timeout == (10.0, 7.0)
    assert client.get_info() == {'api_version': '1.0'}


def test_from_conf_without_name_check(named_stub, pki):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([])
    agent_client.AgentClient.from_conf('127.0.0.1', conf=conf)
    conf.set_override('client_cert', pki.client, group='haproxy_amphora')
    conf.set_override('server_ca', pki.ca, group='haproxy_amphora')
    conf.set_override('agent_port', named_stub.address[1],
                      group='sriov_amphora')
    named_stub.answers[('GET', '/1.0/info')] = (200, {'api_version': '1.0'})

    with pytest.raises(agent_client.AgentTLSError):
        agent_client.AgentClient.from_conf('127.0.0.1', conf=conf).get_info()
    conf.set_override('server_name_check', 'none', group='sriov_amphora')
    assert agent_client.AgentClient.from_conf(
        '127.0.0.1', conf=conf).get_info() == {'api_version': '1.0'}


@pytest.mark.parametrize('cause', ['refused', 'connect timeout', 'tls'])
def test_agent_errors_can_be_stored_with_the_flow(stub, pki, tmp_path,
                                                  cause):
    # A task failure goes into the flow's SQL storage. Chained to requests'
    # exceptions it would drag urllib3's connection objects along, which
    # taskflow cannot store: the worker would hand the job back and run the
    # flow again instead of reverting it.
    with contextlib.ExitStack() as stack:
        if cause == 'connect timeout':
            address = stack.enter_context(backlog_full())
        elif cause == 'refused':
            address = ('127.0.0.1', closed_port())
        else:
            address = stub.address
        client = agent_client.AgentClient(
            address, pki.client,
            pki.foreign_ca if cause == 'tls' else pki.ca,
            timeout=(0.5, 1), retries=0)
        try:
            client.get_info()
        except agent_client.AgentUnreachable:
            failed = failure.Failure()
    backend = impl_sqlalchemy.SQLAlchemyBackend(
        {'connection': f'sqlite:///{tmp_path}/flows.db'})
    with contextlib.closing(backend.get_connection()) as connection:
        connection.upgrade()
        book = models.LogBook('job')
        flow = models.FlowDetail('create', uuidutils.generate_uuid())
        task = models.TaskDetail('WaitForAgents', uuidutils.generate_uuid())
        flow.add(task)
        book.add(flow)
        connection.save_logbook(book)
        # As the engine records a task that failed.
        task.failure = failed
        connection.update_atom_details(task)

        stored = connection.get_atom_details(task.uuid).failure

    assert stored.check(agent_client.AgentUnreachable)
    assert str(address[1]) in stored.exception_str
    if cause == 'connect timeout':
        assert 'timed out' in stored.exception_str


# The agent's server certificate -------------------------------------------

def _certificate(path):
    with open(path, 'rb') as pem:
        return x509.load_pem_x509_certificate(pem.read())


def test_upload_certificate_sends_the_pem_as_it_is(stub, pki):
    with open(pki.server) as pem:
        text = pem.read()
    stub.answers[('PUT', '/1.0/certificate')] = (202, {'message': 'OK'})

    assert make_client(stub, pki).upload_certificate(text) == {
        'message': 'OK'}
    assert stub.received == [('PUT', '/1.0/certificate', text)]
    assert stub.content_types == ['text/plain; charset=utf-8']


def test_refused_certificate_is_agent_rejected(stub, pki):
    stub.answers[('PUT', '/1.0/certificate')] = (400, {
        'faultstring': 'certificate: expired on 2020-01-01T00:00:00+00:00',
        'field': 'certificate',
        'reason': 'expired on 2020-01-01T00:00:00+00:00', 'code': 400})

    with pytest.raises(agent_client.AgentRejected) as raised:
        make_client(stub, pki, retries=3).upload_certificate('PEM')

    assert (raised.value.status, raised.value.field) == (400, 'certificate')
    assert 'expired' in raised.value.reason
    assert len(stub.received) == 1


def test_served_certificate_is_the_one_presented(stub, pki):
    served = make_client(stub, pki).served_certificate()

    assert isinstance(served, x509.Certificate)
    assert served == _certificate(pki.server)
    assert served.serial_number == _certificate(pki.server).serial_number
    # One connection, asking for version discovery.
    assert stub.received == [('GET', '/', None)]


def test_served_certificate_from_an_address_or_a_url(stub, pki):
    expected = _certificate(pki.server)
    host, port = stub.address

    assert agent_client.served_certificate(
        (host, port), pki.client, pki.ca) == expected
    assert agent_client.served_certificate(
        f'https://{host}:{port}/', pki.client, pki.ca) == expected


def test_served_certificate_checks_the_name_as_requests_do(named_stub, pki):
    expected = _certificate(pki.named_server)

    with pytest.raises(agent_client.AgentTLSError):
        make_client(named_stub, pki).served_certificate()
    assert make_client(named_stub, pki,
                       server_name='amphora-1').served_certificate() == (
        expected)
    assert make_client(named_stub, pki,
                       server_name=False).served_certificate() == expected
    with pytest.raises(agent_client.AgentTLSError):
        make_client(named_stub, pki,
                    server_name='amphora-2').served_certificate()


def test_served_certificate_from_another_ca_is_a_tls_error(stub, pki):
    with pytest.raises(agent_client.AgentTLSError) as raised:
        agent_client.served_certificate(stub.address, pki.client,
                                        pki.foreign_ca, server_name=False)

    assert 'server_ca' in str(raised.value)


def test_served_certificate_when_the_agent_refuses_us(stub, pki):
    # With TLS 1.3 the server judges the client certificate after the
    # client has finished its handshake: the refusal comes after.
    with pytest.raises(agent_client.AgentTLSError):
        agent_client.served_certificate(stub.address, pki.foreign_client,
                                        pki.ca)


def test_served_certificate_nobody_listening_is_unreachable(pki):
    with pytest.raises(agent_client.AgentUnreachable) as raised:
        agent_client.served_certificate(('127.0.0.1', closed_port()),
                                        pki.client, pki.ca, timeout=5)

    assert not isinstance(raised.value, agent_client.AgentTLSError)
