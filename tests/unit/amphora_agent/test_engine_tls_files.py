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
"""Checking a load balancer's TLS file before it is stored.

Real certificates, keys and CRLs (cryptography); every refusal names the
field at fault, and no refusal quotes a key.
"""

import os

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
import pytest

from amphora_agent.engine import tls_files
from amphora_agent import pem
from tests import tls_material as tm


@pytest.fixture(scope='module')
def pki():
    return tm.Pki()


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / 'certs' / 'lb-1'
    path.mkdir(parents=True)
    return str(path)


def check(data, directory='/nowhere/lb-1', filename='x.pem'):
    return tls_files.check(data, directory, filename)


def refusal(data, **kwargs):
    with pytest.raises(pem.InvalidCertificate) as raised:
        check(data, **kwargs)
    return raised.value


def split(bundle):
    """The blocks of a bundle: certificate, key, intermediate."""
    return [block.encode() for _, block in pem.blocks(bundle.decode())]


def test_a_listener_bundle_is_accepted(pki):
    checked = check(pki.bundle())

    assert checked.holds_key
    assert 'www.example.test' in checked.description
    assert '1 intermediate' in checked.description


def test_the_key_may_come_first_and_text_may_surround_the_blocks(pki):
    certificate, key, intermediate = split(pki.bundle())
    bundle = (b'Bag Attributes\n' + key + b'\nsubject=CN = www\n' +
              certificate + b'\n' + intermediate)

    assert check(bundle).holds_key


@pytest.mark.parametrize('content', ['ca', 'ca+crl', 'crl', 'chain'])
def test_ca_and_crl_files_are_accepted(pki, content):
    data = {'ca': pki.root.pem,
            'ca+crl': pki.root.pem + pki.root.crl(),
            'crl': pki.intermediate.crl(),
            'chain': pki.intermediate.pem + pki.root.pem}[content]

    checked = check(data)

    assert not checked.holds_key


def test_two_keys_are_refused(pki):
    certificate, key, intermediate = split(pki.bundle())

    error = refusal(certificate + key + tm.key_pem(tm.new_key()))

    assert error.field == 'private_key'
    assert '2 private keys' in error.reason


def test_a_key_that_is_not_the_certificate_s_is_refused(pki):
    certificate, key, intermediate = split(pki.bundle())

    error = refusal(certificate + tm.key_pem(tm.new_key()) + intermediate)

    assert error.field == 'certificate'
    assert 'does not match the private key' in error.reason


def test_the_first_certificate_is_the_one_for_the_key(pki):
    certificate, key, intermediate = split(pki.bundle())

    assert refusal(intermediate + certificate + key).field == 'certificate'


def test_a_key_without_certificate_is_refused():
    error = refusal(tm.key_pem(tm.new_key()))

    assert error.field == 'certificate'


@pytest.mark.parametrize('dates, words', [
    ({'not_before': tm.now() - 30 * tm.DAY,
      'not_after': tm.now() - tm.DAY}, 'expired on'),
    ({'not_before': tm.now() + tm.DAY,
      'not_after': tm.now() + 30 * tm.DAY}, 'not valid before'),
])
def test_a_certificate_not_valid_now_is_refused(pki, dates, words):
    error = refusal(pki.bundle(**dates))

    assert error.field == 'certificate'
    assert words in error.reason
    assert "amphora's clock says" in error.reason


def old_authority(name, issuer=None):
    return tm.Authority(name, issuer=issuer,
                        not_before=tm.now() - 30 * tm.DAY,
                        not_after=tm.now() - tm.DAY)


def test_an_expired_intermediate_is_only_a_warning(pki):
    # Real chains carry expired cross-signatures that clients skip.
    cross_signed = old_authority('old cross-sign', issuer=pki.root)
    certificate, key = pki.intermediate.issue('www.example.test')

    checked = check(tm.cert_pem(certificate) + tm.key_pem(key) +
                    pki.intermediate.pem + cross_signed.pem)

    assert checked.holds_key
    [warning] = checked.warnings
    assert warning.startswith('intermediates[1]: expired on')
    assert 'old cross-sign' in warning


def test_an_unreadable_intermediate_is_refused(pki):
    certificate, key, intermediate = split(pki.bundle())
    broken = intermediate.replace(b'\nM', b'\n*', 1)

    error = refusal(certificate + key + broken)

    assert error.field == 'intermediates[0]'


def test_an_expired_ca_beside_valid_ones_is_only_a_warning(pki):
    checked = check(pki.root.pem + old_authority('old root').pem)

    assert [warning.split(':')[0] for warning in checked.warnings] == [
        'certificates[1]']


def test_a_ca_bundle_with_no_valid_certificate_is_refused():
    error = refusal(old_authority('old root').pem +
                    old_authority('older root').pem)

    assert error.field == 'certificates[0]'
    assert 'expired on' in error.reason


def test_an_encrypted_key_is_refused(pki):
    certificate, key, intermediate = split(pki.bundle())
    encrypted = tm.new_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b'secret'))

    error = refusal(certificate + encrypted)

    assert error.field == 'private_key'
    assert 'encrypted' in error.reason


def test_a_broken_key_is_refused_without_quoting_it(pki):
    certificate, key, intermediate = split(pki.bundle())
    lines = key.decode().splitlines()
    secret = lines[2]
    broken = '\n'.join(lines[:2] + [secret[::-1]] + lines[3:]) + '\n'

    error = refusal(certificate + broken.encode())

    assert error.field == 'private_key'
    assert secret not in str(error) and secret[::-1] not in str(error)


def test_an_rsa_bundle_is_accepted(pki):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate, _ = pki.intermediate.issue('rsa.example.test', key=key)

    assert check(tm.cert_pem(certificate) + tm.key_pem(key)).holds_key


@pytest.mark.parametrize('data, field, words', [
    (b'', 'body', 'required'),
    (b'  \n', 'body', 'required'),
    (b'\xff\xfe\x00', 'body', 'not PEM text'),
    (b'hello world\n', 'body', 'neither PEM'),
    (b'-----BEGIN CERTIFICATE-----\nMIIB\n', 'body', 'no matching'),
    (b'-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n',
     'certificates[0]', 'not a readable X.509 certificate'),
    (b'-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n',
     'crls[0]', 'not a readable X.509 CRL'),
    (b'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
     'body', 'not something haproxy reads'),
    (b'# only a comment\n', 'body', 'neither PEM'),
])
def test_unreadable_files_are_refused(data, field, words):
    error = refusal(data)

    assert error.field == field
    assert words in error.reason


@pytest.mark.parametrize('filename', [
    'a0000000-0000-4000-8000-000000000001.pem',
    '0123456789abcdef0123456789abcdef01234567.pem', 'server_2.crt.pem'])
def test_octavia_file_names_are_accepted(filename):
    assert tls_files.check_filename(filename) == filename


@pytest.mark.parametrize('filename', [
    '../x.pem', 'a/b.pem', '..pem', 'x..pem', '.hidden.pem', 'x.key',
    'x.pem.new', '', 'x y.pem', 'x\n.pem', 'a' * 300 + '.pem'])
def test_unsafe_file_names_are_refused(filename):
    with pytest.raises(pem.InvalidCertificate) as raised:
        tls_files.check_filename(filename)

    assert raised.value.field == 'filename'


# crt-lists ---------------------------------------------------------------

def store(directory, name, data=b'stored\n'):
    path = os.path.join(directory, name)
    with open(path, 'wb') as stream:
        stream.write(data)
    return path


def test_a_crt_list_of_stored_files_is_accepted(directory):
    default = store(directory, 'default.pem')
    sni = store(directory, 'sni.pem')
    text = f'{default}\n\n# SNI\n{sni} www.example.test !*.test\n'

    checked = check(text.encode(), directory=directory,
                    filename='listener.pem')

    assert not checked.holds_key
    assert 'crt-list of 2' in checked.description


@pytest.mark.parametrize('line, words', [
    ('/elsewhere/default.pem', 'is not a file of this load balancer'),
    ('{directory}/../lb-2/default.pem', 'is not a file of this'),
    ('{directory}/missing.pem', 'missing.pem was not uploaded'),
    ('{directory}/listener.pem', 'cannot name itself'),
    ('{directory}/default.pem [ssl-min-ver TLSv1.2]', 'SSL options'),
    ('{directory}/default.pem bad"filter', 'not an SNI filter'),
    ('{directory}/bad..pem', 'not a certificate file name'),
])
def test_a_crt_list_naming_what_cannot_be_used_is_refused(directory, line,
                                                          words):
    store(directory, 'default.pem')
    store(directory, 'bad..pem')
    text = f'{directory}/default.pem\n' + line.format(directory=directory)

    error = refusal(text.encode(), directory=directory,
                    filename='listener.pem')

    assert error.field == 'crt_list'
    assert error.reason.startswith('line 2: ')
    assert words in error.reason
