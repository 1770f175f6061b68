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
"""TLS termination: haproxy serves the files the agent stored.

The controller's part is played as Octavia's amphora driver plays it:
certificate files named after the certificate's SHA-1 (certificate, key,
intermediates), the listener's crt-list ``<listener id>.pem`` naming them
(default first, then SNI), uploaded through AgentClient before the
configuration that names them, which Octavia's own template renders
(sriov_octavia.engine.haproxy_config) with ``[haproxy_amphora]
base_cert_dir`` set to the agent's. Clients connect from their own
namespace over a veth the firewall leaves alone.
"""

import hashlib
import os
import stat
import sys
import types

import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia.engine import haproxy_config
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import engine_lab
from tests import tls_material as tm

MEMBER = '198.51.100.5'
HTTP_PORT = 45570
TLS_PORT = 45571
LB, LISTENER, POOL, AMPHORA = engine_lab.loadbalancer_ids('t1')
WWW = 'www.example.test'
API = 'api.example.test'

# Connects with TLS, verifying against a CA file; prints the serial of the
# certificate served for the name asked, or the error.
_PEER_SERIAL = '''
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
if len(sys.argv) > 5:
    context.load_cert_chain(sys.argv[5])
with socket.create_connection((sys.argv[2], int(sys.argv[3])), 10) as raw:
    with context.wrap_socket(raw, server_hostname=sys.argv[4]) as tls:
        print(int(tls.getpeercert()["serialNumber"], 16))
        tls.sendall(b"GET /hello.txt HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        print(tls.recv(100).split(b"\\r\\n")[0].decode())
'''


@pytest.fixture(scope='module')
def lab(tmp_path_factory, pki):
    with engine_lab.amphora_lab(tmp_path_factory, pki, 't',
                                members=(f'{MEMBER}/24',)) as lab:
        content = tmp_path_factory.mktemp('tls-www')
        (content / 'hello.txt').write_text('hello over TLS\n')
        server = engine_lab.HttpServer(lab.member, MEMBER, HTTP_PORT,
                                       str(content))
        lab.files = tmp_path_factory.mktemp('tls-client')
        lab.directory = os.path.join(lab.agent.base_cert_dir, LB)
        try:
            yield lab
        finally:
            server.stop()


@pytest.fixture(scope='module')
def tls_pki():
    return tm.Pki()


@pytest.fixture
def controller_conf(lab):
    """The controller renders paths under the agent's base_cert_dir."""
    conf = haproxy_config.CONF
    conf.set_override('base_cert_dir', lab.agent.base_cert_dir,
                      group='haproxy_amphora')
    yield conf
    conf.clear_override('base_cert_dir', group='haproxy_amphora')


class Certificate:
    """A listener certificate as Octavia's driver uploads it."""

    def __init__(self, tls_pki, hostname):
        certificate, key = tls_pki.intermediate.issue(hostname)
        self.serial = certificate.serial_number
        cert_pem = tm.cert_pem(certificate)
        self.name = f'{hashlib.sha1(cert_pem).hexdigest()}.pem'
        self.pem = (cert_pem + b'\n' + tm.key_pem(key) + b'\n' +
                    tls_pki.intermediate.pem)


def state():
    return {
        'loadbalancer_id': LB, 'project_id': 'project-tls',
        'vip_address': engine_lab.VIP,
        'listeners': [{
            'listener_id': LISTENER, 'protocol': 'TERMINATED_HTTPS',
            'protocol_port': TLS_PORT, 'default_pool_id': POOL,
            'connection_limit': 1000,
            'default_tls_container_ref': 'ref-www',
            'sni_container_refs': ['ref-api']}],
        'pools': [{'pool_id': POOL, 'protocol': 'HTTP',
                   'listener_id': LISTENER, 'lb_algorithm': 'ROUND_ROBIN',
                   'members': [{'member_id': 'member-1', 'pool_id': POOL,
                                'address': MEMBER,
                                'protocol_port': HTTP_PORT}]}]}


@pytest.fixture
def terminated(lab, api, tls_pki, controller_conf):
    """A TERMINATED_HTTPS listener with a default and an SNI certificate."""
    www, sni = Certificate(tls_pki, WWW), Certificate(tls_pki, API)
    for certificate in (www, sni):
        api.upload_certificate_file(AMPHORA['id'], LB, certificate.name,
                                    certificate.pem)
    crt_list = ''.join(f'{os.path.join(lab.directory, certificate.name)}\n'
                       for certificate in (www, sni))
    api.upload_certificate_file(AMPHORA['id'], LB, f'{LISTENER}.pem',
                                crt_list)
    text = haproxy_config.render(state(), AMPHORA, api.get_info())
    api.upload_haproxy_config(AMPHORA['id'], LB, text)
    api.loadbalancer_action(LB, 'start')
    yield types.SimpleNamespace(www=www, api=sni, config=text)
    api.delete_loadbalancer(LB)


def ca_file(lab, tls_pki):
    path = lab.files / 'root.pem'
    path.write_bytes(tls_pki.root.pem)
    return str(path)


def connect(lab, tls_pki, hostname, client_pem=None):
    """``(serial served, HTTP status line)``, or None if TLS failed."""
    argv = [sys.executable, '-c', _PEER_SERIAL, ca_file(lab, tls_pki),
            engine_lab.VIP, str(TLS_PORT), hostname]
    if client_pem:
        argv.append(client_pem)
    result = netlab.run(lab.client, argv, check=False, timeout=60)
    if result.returncode != 0:
        return None
    serial, status = result.stdout.split('\n')[:2]
    return int(serial), status


def test_the_template_names_the_crt_list_the_agent_stores(lab, terminated):
    assert (f'ssl crt-list {lab.directory}/{LISTENER}.pem'
            in terminated.config)


def test_default_and_sni_certificates_are_served(lab, tls_pki, terminated):
    assert engine_lab.wait_until(
        lambda: connect(lab, tls_pki, WWW)) == (
        terminated.www.serial, 'HTTP/1.0 200 OK')
    assert connect(lab, tls_pki, API) == (terminated.api.serial,
                                          'HTTP/1.0 200 OK')


def test_files_are_root_s_only_and_answer_their_md5sum(lab, api,
                                                       terminated):
    name = terminated.www.name
    path = os.path.join(lab.directory, name)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert api.certificate_file_md5(AMPHORA['id'], LB, name) == (
        hashlib.md5(terminated.www.pem).hexdigest())
    assert api.certificate_file_md5(AMPHORA['id'], LB, 'missing.pem') is None


def test_a_replaced_certificate_is_served_after_a_reload(lab, api, tls_pki,
                                                         terminated):
    assert engine_lab.wait_until(lambda: connect(lab, tls_pki, WWW))
    renewed = Certificate(tls_pki, WWW)

    api.upload_certificate_file(AMPHORA['id'], LB, terminated.www.name,
                                renewed.pem)
    api.loadbalancer_action(LB, 'reload')

    assert engine_lab.wait_until(
        lambda: (connect(lab, tls_pki, WWW) or (None,))[0] ==
        renewed.serial)


def test_client_certificates_checked_against_the_stored_ca_and_crl(
        lab, api, tls_pki, terminated):
    good, good_key = tls_pki.intermediate.issue('client-1')
    revoked, revoked_key = tls_pki.intermediate.issue('client-2')
    files = {}
    for name, certificate, key in (('good', good, good_key),
                                   ('revoked', revoked, revoked_key)):
        files[name] = str(lab.files / f'{name}.pem')
        with open(files[name], 'wb') as stream:
            stream.write(tm.cert_pem(certificate) + tm.key_pem(key))
    api.upload_certificate_file(AMPHORA['id'], LB, 'client-ca.pem',
                                tls_pki.intermediate.pem + tls_pki.root.pem)
    # haproxy checks every CA of the chain: one CRL each.
    api.upload_certificate_file(
        AMPHORA['id'], LB, 'client-crl.pem',
        tls_pki.root.crl() + tls_pki.intermediate.crl(revoked=[revoked]))
    crt_list = f'{lab.directory}/{LISTENER}.pem'
    api.upload_haproxy_config(AMPHORA['id'], LB, terminated.config.replace(
        f'crt-list {crt_list}',
        f'crt-list {crt_list} ca-file {lab.directory}/client-ca.pem '
        f'verify required crl-file {lab.directory}/client-crl.pem'))
    api.loadbalancer_action(LB, 'reload')

    assert engine_lab.wait_until(
        lambda: connect(lab, tls_pki, WWW, files['good']))
    assert connect(lab, tls_pki, WWW) is None
    assert connect(lab, tls_pki, WWW, files['revoked']) is None


def test_files_haproxy_could_not_use_are_refused(lab, api, tls_pki):
    certificate, _ = tls_pki.intermediate.issue(WWW)
    expired = tls_pki.bundle(not_before=tm.now() - 30 * tm.DAY,
                             not_after=tm.now() - tm.DAY)
    refused = {
        'not its key': (tm.cert_pem(certificate) +
                        tm.key_pem(tm.new_key())),
        'expired': expired,
        'crt-list of nothing': f'{lab.directory}/absent.pem\n',
    }
    fields = {}
    for what, data in refused.items():
        with pytest.raises(agent_client.AgentRejected) as raised:
            api.upload_certificate_file(AMPHORA['id'], LB, 'x.pem', data)
        assert raised.value.status == 400
        fields[what] = raised.value.field

    assert fields == {'not its key': 'certificate', 'expired': 'certificate',
                      'crt-list of nothing': 'crt_list'}
    assert not os.path.exists(os.path.join(lab.directory, 'x.pem'))


def test_deleting_the_load_balancer_deletes_its_files(lab, api, tls_pki,
                                                      controller_conf):
    api.upload_certificate_file(AMPHORA['id'], LB, 'ca.pem',
                                tls_pki.root.pem)
    assert os.path.isdir(lab.directory)

    api.delete_loadbalancer(LB)

    assert not os.path.exists(lab.directory)
    assert api.delete_certificate_file(AMPHORA['id'], LB, 'ca.pem',
                                       missing_ok=True) is None
