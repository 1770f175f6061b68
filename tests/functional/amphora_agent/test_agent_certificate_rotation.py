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
"""Replacing the real agent's server certificate while it serves.

The agent is the console script over real mutual TLS; the controller's
side is AgentClient: upload_certificate() sends the new PEM,
served_certificate() opens a connection of its own and reads what the
agent presents.
"""

import datetime
import json
import os
import socket
import ssl
import stat
import types

from cryptography import x509
import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs
from tests.functional.amphora_agent import test_agent_process
from tests.unit.amphora_agent import test_api_certificate

NAMES = {'hostnames': ['localhost'], 'ips': ['127.0.0.1', '::1']}


def read(path):
    with open(path, 'rb') as pem:
        return pem.read()


@pytest.fixture
def rotation(agent_factory, pki, tmp_path):
    """An agent serving a certificate file of its own.

    The session's server certificate is shared by every agent test: the
    one this agent may replace is a copy, issued by the same CA.
    """
    ca = certs.CertificateAuthority.load(pki.ca)
    cert_path = ca.issue_server(str(tmp_path / 'rotated-server.pem'),
                                days=365, **NAMES)
    agent = agent_factory(start=False)
    with open(agent.config_file) as conf:
        text = conf.read()
    with open(agent.config_file, 'w') as conf:
        conf.write(text.replace(f'agent_server_cert = {pki.server}\n',
                                f'agent_server_cert = {cert_path}\n'))
    agent.start()
    client = agent_client.AgentClient((agent.host, agent.port), pki.client,
                                      pki.ca, timeout=(10, 30), retries=0)
    yield types.SimpleNamespace(agent=agent, ca=ca, cert_path=cert_path,
                                client=client, tmp_path=tmp_path)
    client.close()


def new_pem(rotation, name, days):
    with open(rotation.ca.issue_server(str(rotation.tmp_path / name),
                                       days=days, **NAMES)) as pem:
        return pem.read()


def open_tls(pki, agent):
    """A mutual TLS connection to the agent, handshake done."""
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client)
    plain = socket.create_connection((agent.host, agent.port), 30)
    return context.wrap_socket(plain, server_hostname=agent.host)


def read_answer(tls):
    """Status and JSON body of the answer on ``tls``, read to its end."""
    answer = b''
    while True:
        data = tls.recv(65536)
        if not data:
            break
        answer += data
    head, _, body = answer.partition(b'\r\n\r\n')
    return int(head.split()[1]), json.loads(body)


def key_lines(pem_text):
    key = pem_text[pem_text.index('-----BEGIN PRIVATE KEY-----'):]
    return key.splitlines()[1:-1]


def test_new_certificate_serves_new_connections_and_survives_restart(
        rotation, pki, amphora):
    agent, client = rotation.agent, rotation.client
    old = client.served_certificate()
    assert old.serial_number == x509.load_pem_x509_certificate(
        read(rotation.cert_path)).serial_number
    body = json.dumps(test_agent_process.native_body(amphora)).encode()

    with open_tls(pki, agent) as in_flight:
        # A request in flight on the old certificate: its headers and half
        # its body are sent, the rest comes after the switch.
        held = x509.load_der_x509_certificate(
            in_flight.getpeercert(binary_form=True))
        assert held.serial_number == old.serial_number
        half = len(body) // 2
        in_flight.sendall(
            b'POST /1.0/security-group HTTP/1.1\r\nHost: agent\r\n'
            b'Connection: close\r\nContent-Type: application/json\r\n'
            b'Content-Length: %d\r\n\r\n' % len(body) + body[:half])

        pem = new_pem(rotation, 'new.pem', days=30)
        assert client.upload_certificate(pem) == {'message': 'OK'}

        served = client.served_certificate()
        assert served.serial_number != old.serial_number
        assert served.not_valid_after_utc != old.not_valid_after_utc
        assert served.not_valid_after_utc - datetime.datetime.now(
            datetime.timezone.utc) < datetime.timedelta(days=31)
        assert served == x509.load_pem_x509_certificate(pem.encode())

        in_flight.sendall(body[half:])
        status, answer = read_answer(in_flight)

    assert status == 200, answer
    assert answer['security_group']['vip_interfaces'] == [
        amphora.vip, amphora.vip6]
    # Stored for the next start, readable by the agent's user only.
    assert read(rotation.cert_path) == pem.encode()
    assert stat.S_IMODE(os.stat(rotation.cert_path).st_mode) == 0o600
    # No temporary file left beside it.
    assert [name for name in os.listdir(rotation.tmp_path)
            if name.endswith('.new')] == []
    # requests, as the rest of the controller talks, trusts it too.
    assert agent.request('GET', '/1.0/info').status_code == 200

    assert agent.stop() == 0
    agent.start()

    assert client.served_certificate() == served
    log = agent.log()
    assert 'Server certificate replaced' in log
    assert 'Traceback' not in log
    for line in key_lines(pem):
        assert line not in log


@pytest.mark.parametrize('case', ['mismatch', 'expired'])
def test_invalid_certificate_is_refused_and_the_old_one_served(rotation,
                                                               case):
    client = rotation.client
    before = read(rotation.cert_path)
    old = client.served_certificate()
    good = new_pem(rotation, 'good.pem', days=30)
    if case == 'mismatch':
        other = new_pem(rotation, 'other.pem', days=30)
        pem = (good[:good.index('-----BEGIN PRIVATE KEY-----')] +
               other[other.index('-----BEGIN PRIVATE KEY-----'):])
    else:
        now = datetime.datetime.now(datetime.timezone.utc)
        pem = test_api_certificate.leaf(
            rotation.ca, now - datetime.timedelta(days=10),
            now - datetime.timedelta(days=1)).decode()

    with pytest.raises(agent_client.AgentRejected) as raised:
        client.upload_certificate(pem)

    assert raised.value.status == 400
    assert raised.value.field == 'certificate'
    assert client.served_certificate() == old
    assert read(rotation.cert_path) == before
    assert 'refused' in rotation.agent.log()
    for line in key_lines(pem):
        assert line not in rotation.agent.log()
