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
"""``PUT /1.0/certificate``: checking a new server certificate, storing it.

The PEMs are real (testbed.certs and cryptography), the credentials real
files in the test's directory; the TLS serving of the replaced context is
tested against the real agent in
tests/functional/amphora_agent/test_agent_certificate_rotation.py.
"""

import datetime
import logging
import os
import stat

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import NameOID
import pytest

from amphora_agent import server
from amphora_agent import tls
from sriov_octavia_testbed import certs
from tests.unit.amphora_agent import fakes

DAY = datetime.timedelta(days=1)


@pytest.fixture(scope='module')
def ca(tmp_path_factory):
    path = tmp_path_factory.mktemp('cert-ca')
    return certs.CertificateAuthority.create(str(path / 'ca.pem'),
                                             'rotation test CA')


def read(path):
    with open(path, 'rb') as pem:
        return pem.read()


def issue(ca, path, **kwargs):
    """A server PEM (certificate, then key) as the testbed issues them."""
    return read(ca.issue_server(str(path), hostnames=['amphora-1'],
                                ips=['127.0.0.1'], **kwargs))


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def leaf(ca, not_before, not_after, key=None):
    """A server PEM valid from ``not_before`` to ``not_after``.

    testbed.certs only issues certificates valid from yesterday on.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'amphora-1')])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName('amphora-1')]), critical=False)
        .sign(ca.key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM) +
            key_pem(key))


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def split(pem):
    """``(certificate part, key part)`` of a testbed PEM."""
    marker = b'-----BEGIN PRIVATE KEY-----'
    index = pem.index(marker)
    return pem[:index], pem[index:]


# parse_server_pem ---------------------------------------------------------


def test_matching_key_and_certificate_are_accepted(ca, tmp_path):
    pem = issue(ca, tmp_path / 'new.pem')

    parsed = tls.parse_server_pem(pem)

    assert parsed.certificate == x509.load_pem_x509_certificate(pem)
    assert parsed.chain == []
    assert 'amphora-1' in parsed.describe()


def test_key_before_certificate_is_accepted(ca, tmp_path):
    certificate, key = split(issue(ca, tmp_path / 'new.pem'))

    assert tls.parse_server_pem(key + certificate).certificate


def test_rsa_key_is_accepted(ca):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    assert tls.parse_server_pem(leaf(ca, now() - DAY, now() + DAY, key))


def test_chain_after_the_certificate_is_accepted(ca, tmp_path):
    pem = issue(ca, tmp_path / 'new.pem') + read(ca.path)

    parsed = tls.parse_server_pem(pem)

    assert parsed.chain == [ca.certificate]


def refused(pem, field, words):
    with pytest.raises(tls.InvalidCertificate) as raised:
        tls.parse_server_pem(pem)
    assert raised.value.field == field
    assert words in raised.value.reason
    return raised.value


def test_mismatching_key_is_refused(ca, tmp_path):
    certificate, _ = split(issue(ca, tmp_path / 'one.pem'))
    _, other_key = split(issue(ca, tmp_path / 'two.pem'))

    refused(certificate + other_key, 'certificate',
            'does not match the private key')


def test_expired_certificate_is_refused(ca):
    refused(leaf(ca, now() - 10 * DAY, now() - DAY), 'certificate',
            'expired on')


def test_not_yet_valid_certificate_is_refused(ca):
    refused(leaf(ca, now() + DAY, now() + 10 * DAY), 'certificate',
            'not valid before')


def test_expired_chain_certificate_is_refused(ca, tmp_path):
    old_ca = leaf(ca, now() - 10 * DAY, now() - DAY)

    refused(issue(ca, tmp_path / 'new.pem') + split(old_ca)[0], 'chain[0]',
            'expired on')


def test_two_keys_are_refused(ca, tmp_path):
    pem = issue(ca, tmp_path / 'new.pem')
    extra = key_pem(ec.generate_private_key(ec.SECP256R1()))

    refused(pem + extra, 'private_key', '2 private keys')


def test_certificate_without_key_is_refused(ca, tmp_path):
    certificate, _ = split(issue(ca, tmp_path / 'new.pem'))

    refused(certificate, 'private_key', 'no private key')


def test_key_without_certificate_is_refused(ca, tmp_path):
    _, key = split(issue(ca, tmp_path / 'new.pem'))

    refused(key, 'certificate', 'no certificate')


def test_encrypted_key_is_refused(ca, tmp_path):
    certificate, key = split(issue(ca, tmp_path / 'new.pem'))
    loaded = serialization.load_pem_private_key(key, None)
    encrypted = loaded.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b'secret'))
    traditional = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b'secret'))

    refused(certificate + encrypted, 'private_key', 'encrypted')
    refused(certificate + traditional, 'private_key', 'encrypted')


def test_garbled_key_is_refused_without_quoting_it(ca, tmp_path):
    certificate, key = split(issue(ca, tmp_path / 'new.pem'))
    lines = key.splitlines(keepends=True)
    # Drop a line of the base64: the block frames a broken key.
    garbled = b''.join(lines[:1] + lines[2:])

    error = refused(certificate + garbled, 'private_key',
                    'not a private key the agent can read')
    for line in lines[1:-1]:
        assert line.strip().decode() not in str(error)


def test_garbled_certificate_is_refused(ca, tmp_path):
    certificate, key = split(issue(ca, tmp_path / 'new.pem'))
    lines = certificate.splitlines(keepends=True)
    garbled = b''.join(lines[:1] + lines[2:])

    refused(garbled + key, 'certificate', 'not a readable X.509')


@pytest.mark.parametrize('body, words', [
    (b'', 'is required'),
    (b'  \n', 'is required'),
    (b'hello, I am not a certificate\n', 'not a PEM file'),
    (b'-----BEGIN CERTIFICATE-----\nMIIB\n', 'not a PEM file'),
    (b'\x30\x82\x01\x0a\xff\xfe', 'not PEM text'),
], ids=['empty', 'blank', 'text', 'unterminated', 'binary'])
def test_garbage_is_refused(body, words):
    refused(body, 'body', words)


def test_oversized_pem_is_refused(ca, tmp_path):
    pem = issue(ca, tmp_path / 'new.pem')

    refused(pem + b'#' * tls.MAX_PEM_SIZE, 'body', 'larger than')


# The endpoint -------------------------------------------------------------


@pytest.fixture
def credentials(ca, tmp_path):
    directory = tmp_path / 'certs'
    directory.mkdir()
    client_ca = certs.CertificateAuthority.create(
        str(tmp_path / 'client_ca.pem'), 'client CA')
    server_pem = ca.issue_server(str(directory / 'server.pem'),
                                 hostnames=['amphora-1'])
    return tls.TLSCredentials(server_pem, client_ca.path)


@pytest.fixture
def app(credentials):
    return fakes.make_app(credentials=credentials)


def put(app, body, content_type='application/x-pem-file'):
    return fakes.request(app, 'PUT', '/1.0/certificate', raw=body,
                         content_type=content_type)


def files_beside(credentials):
    return sorted(os.listdir(os.path.dirname(credentials.cert_path)))


@pytest.mark.parametrize('content_type', [
    'application/x-pem-file', 'text/plain',
    # What curl --data-binary sends unless told otherwise.
    'application/x-www-form-urlencoded'])
def test_put_stores_and_serves_the_new_certificate(app, credentials, ca,
                                                   tmp_path, content_type):
    before = files_beside(credentials)
    old_context = credentials.context
    pem = issue(ca, tmp_path / 'new.pem', days=30)

    response = put(app, pem, content_type)

    assert response.status_int == 202, response.text
    # As upstream's agent answers.
    assert response.json == {'message': 'OK'}
    assert read(credentials.cert_path) == pem
    mode = os.stat(credentials.cert_path).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert credentials.context is not old_context
    assert credentials.certificate == x509.load_pem_x509_certificate(pem)
    # No temporary file left behind.
    assert files_beside(credentials) == before


def test_put_through_a_symbolic_link_replaces_its_target(ca, credentials,
                                                         tmp_path):
    link = tmp_path / 'certs' / 'current.pem'
    os.symlink(credentials.cert_path, link)
    credentials.cert_path = str(link)
    pem = issue(ca, tmp_path / 'new.pem')

    response = put(fakes.make_app(credentials=credentials), pem)

    assert response.status_int == 202, response.text
    assert os.path.islink(link)
    assert read(link) == pem


def assert_nothing_changed(credentials, before):
    files, content, context = before
    assert files_beside(credentials) == files
    assert read(credentials.cert_path) == content
    assert credentials.context is context


def snapshot(credentials):
    return (files_beside(credentials), read(credentials.cert_path),
            credentials.context)


@pytest.mark.parametrize('case, field', [
    ('mismatch', 'certificate'), ('expired', 'certificate'),
    ('not-yet-valid', 'certificate'), ('two-keys', 'private_key'),
    ('garbage', 'body'), ('empty', 'body')])
def test_put_refuses_and_changes_nothing(app, credentials, ca, tmp_path,
                                         case, field):
    pem = issue(ca, tmp_path / 'new.pem')
    certificate, key = split(pem)
    body = {
        'mismatch': certificate + split(issue(ca, tmp_path / 'b.pem'))[1],
        'expired': leaf(ca, now() - 10 * DAY, now() - DAY),
        'not-yet-valid': leaf(ca, now() + DAY, now() + 10 * DAY),
        'two-keys': pem + key_pem(ec.generate_private_key(ec.SECP256R1())),
        'garbage': b'this is no certificate',
        'empty': b'',
    }[case]
    before = snapshot(credentials)

    response = put(app, body)

    fakes.assert_error(response, 400, field)
    assert_nothing_changed(credentials, before)


def test_put_refused_by_openssl_changes_nothing(app, credentials, ca):
    # cryptography reads a 1024-bit RSA key; OpenSSL's default security
    # level refuses to serve it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    before = snapshot(credentials)

    response = put(app, leaf(ca, now() - DAY, now() + DAY, weak))

    fakes.assert_error(response, 400, 'certificate')
    assert 'OpenSSL refuses it' in response.json['reason']
    assert_nothing_changed(credentials, before)


def test_oversized_put_is_413(app, credentials, ca, tmp_path):
    before = snapshot(credentials)

    response = put(app, issue(ca, tmp_path / 'new.pem') +
                   b'#' * tls.MAX_PEM_SIZE)

    fakes.assert_error(response, 413, 'body')
    assert_nothing_changed(credentials, before)


def test_unwritable_directory_is_500_and_changes_nothing(app, credentials,
                                                         ca, tmp_path):
    context = credentials.context
    credentials.cert_path = str(tmp_path / 'missing' / 'server.pem')

    response = put(app, issue(ca, tmp_path / 'new.pem'))

    fakes.assert_error(response, 500, 'agent_server_cert')
    assert 'previous certificate stays' in response.json['reason']
    assert credentials.context is context


def test_unreadable_client_ca_is_500_and_changes_nothing(app, credentials,
                                                         ca, tmp_path):
    before = snapshot(credentials)
    os.unlink(credentials.ca_path)

    response = put(app, issue(ca, tmp_path / 'new.pem'))

    fakes.assert_error(response, 500, 'agent_server_cert')
    assert 'client CA' in response.json['reason']
    assert_nothing_changed(credentials, before)


def test_the_key_is_never_logged(app, ca, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    good = issue(ca, tmp_path / 'new.pem')
    mismatch = split(good)[0] + split(issue(ca, tmp_path / 'b.pem'))[1]

    assert put(app, good).status_int == 202
    assert put(app, mismatch).status_int == 400

    assert 'replaced' in caplog.text and 'refused' in caplog.text
    for pem in (good, mismatch):
        key_lines = split(pem)[1].splitlines()[1:-1]
        for line in key_lines:
            assert line.decode() not in caplog.text


def test_only_put(app):
    response = fakes.request(app, 'GET', '/1.0/certificate')

    fakes.assert_error(response, 405, 'method')
    assert response.headers['Allow'] == 'PUT'


def test_server_reads_the_context_from_the_credentials(app, credentials,
                                                       ca, tmp_path):
    httpd = server.AgentServer('127.0.0.1', 0, credentials, 30, app)
    try:
        assert httpd.ssl_context is credentials.context

        assert put(app, issue(ca, tmp_path / 'new.pem')).status_int == 202

        assert httpd.ssl_context is credentials.context
        # A plain context still does, as before there were credentials.
        plain = server.make_ssl_context(credentials.cert_path,
                                        credentials.ca_path)
        httpd.ssl_context = plain
        assert httpd.ssl_context is plain
    finally:
        httpd.server_close()
