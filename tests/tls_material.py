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
"""Certificates, keys and CRLs, in memory, for the tests of TLS files.

A root CA signs an intermediate CA, which signs the listener certificates:
the shape of a real certificate bundle (certificate, key, intermediates),
with dates a test chooses. The controller's tests (what it reads from the
certificate manager) and the agent's (what it stores for haproxy) make
theirs here; certificates written to files for the agent's own mutual TLS
come from sriov_octavia_testbed.certs.
"""

import datetime

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """A CA: its certificate and key; ``issuer`` signs it (None: itself)."""

    def __init__(self, common_name, issuer=None, not_before=None,
                 not_after=None):
        self.key = new_key()
        signer = issuer or self
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name) if issuer is None
                         else issuer.certificate.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now() - DAY)
            .not_valid_after(not_after or now() + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True))
        self.certificate = builder.sign(signer.key, hashes.SHA256())

    @property
    def pem(self):
        return cert_pem(self.certificate)

    def issue(self, hostname, not_before=None, not_after=None, key=None):
        """``(certificate, key)`` of a server named ``hostname``."""
        key = key or new_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(hostname))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now() - DAY)
            .not_valid_after(not_after or now() + 30 * DAY)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .sign(self.key, hashes.SHA256()))
        return certificate, key

    def crl(self, revoked=()):
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(self.certificate.subject)
                   .last_update(now() - DAY)
                   .next_update(now() + 7 * DAY))
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now() - DAY).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM)


class Pki:
    """A root, an intermediate under it, and bundles issued by the latter."""

    def __init__(self):
        self.root = Authority('tls-files test root')
        self.intermediate = Authority('tls-files test intermediate',
                                      issuer=self.root)

    def bundle(self, hostname='www.example.test', **dates):
        """Octavia's order (cert_parser.build_pem): cert, key, chain."""
        certificate, key = self.intermediate.issue(hostname, **dates)
        return (cert_pem(certificate) + b'\n' + key_pem(key) + b'\n' +
                self.intermediate.pem)
