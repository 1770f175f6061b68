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
"""The testbed's certificate authority, checked by an X.509 verifier."""

import ipaddress
import os
import stat

from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509 import verification
import pytest

from sriov_octavia_testbed import certs


def _load(path):
    with open(path, 'rb') as pem:
        data = pem.read()
    return (x509.load_pem_x509_certificate(data),
            serialization.load_pem_private_key(data, None))


@pytest.fixture
def ca(tmp_path):
    return certs.CertificateAuthority.create(str(tmp_path / 'ca.pem'),
                                             'unit CA')


def test_server_certificate_verifies_for_its_names(ca, tmp_path):
    path = ca.issue_server(str(tmp_path / 'server.pem'),
                           hostnames=['amphora-1'],
                           ips=['203.0.113.10', '2001:db8::10'])
    certificate, key = _load(path)
    store = verification.Store([ca.certificate])

    for name in (x509.DNSName('amphora-1'),
                 x509.IPAddress(ipaddress.ip_address('203.0.113.10')),
                 x509.IPAddress(ipaddress.ip_address('2001:db8::10'))):
        verifier = (verification.PolicyBuilder().store(store)
                    .build_server_verifier(name))
        verifier.verify(certificate, [])
    # The key in the PEM is the certificate's own.
    assert key.public_key() == certificate.public_key()


def test_server_certificate_does_not_verify_for_other_names(ca, tmp_path):
    path = ca.issue_server(str(tmp_path / 'server.pem'), ips=['203.0.113.10'])
    certificate, _ = _load(path)
    verifier = (verification.PolicyBuilder()
                .store(verification.Store([ca.certificate]))
                .build_server_verifier(
                    x509.IPAddress(ipaddress.ip_address('203.0.113.11'))))

    with pytest.raises(verification.VerificationError):
        verifier.verify(certificate, [])


def test_client_certificate_verifies_only_against_its_ca(ca, tmp_path):
    path = ca.issue_client(str(tmp_path / 'client.pem'), 'controller')
    certificate, _ = _load(path)
    other = certs.CertificateAuthority.create(str(tmp_path / 'other.pem'))

    (verification.PolicyBuilder()
     .store(verification.Store([ca.certificate]))
     .build_client_verifier().verify(certificate, []))
    with pytest.raises(verification.VerificationError):
        (verification.PolicyBuilder()
         .store(verification.Store([other.certificate]))
         .build_client_verifier().verify(certificate, []))


def test_private_files_are_owner_only_and_the_ca_reloads(ca, tmp_path):
    client = ca.issue_client(str(tmp_path / 'client.pem'), 'controller')

    for path in (client, ca.path + '.key'):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ca.path).st_mode) == 0o644
    reloaded = certs.CertificateAuthority.load(ca.path)
    assert reloaded.certificate == ca.certificate
    later = reloaded.issue_client(str(tmp_path / 'later.pem'), 'later')
    (verification.PolicyBuilder()
     .store(verification.Store([ca.certificate]))
     .build_client_verifier().verify(_load(later)[0], []))


def test_server_certificate_needs_a_name(ca, tmp_path):
    with pytest.raises(ValueError):
        ca.issue_server(str(tmp_path / 'server.pem'))
