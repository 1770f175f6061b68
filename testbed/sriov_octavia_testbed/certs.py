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
"""A small certificate authority for the testbed, the demo and the tests.

Every emulated amphora gets a server certificate, the controller a client
certificate, both issued here. The files follow upstream Octavia's layout:
a server or client PEM holds the certificate followed by its private key
(what ``[amphora_agent] agent_server_cert`` expects), and the CA certificate
is a PEM of its own (``[amphora_agent] agent_server_ca``).
"""

import datetime
import ipaddress
import os

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

# Certificates start a day in the past so that a clock slightly behind the
# one that issued them (a namespace shares the clock, a VM may not) still
# accepts them.
_BACKDATE = datetime.timedelta(days=1)
_SERVER_NEEDS_A_NAME = 'a server certificate needs a hostname or an IP'


def _new_key():
    # P-256 keys are generated in a millisecond; tests create many of them.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'sriov-octavia'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(path, data, private):
    """Write ``data`` to ``path``, readable by the owner only if private."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'wb') as out:
        out.write(data)
    # O_CREAT's mode does not apply to a file that already existed.
    os.chmod(path, mode)
    return path


def _key_usage(digital_signature=False, key_cert_sign=False, crl_sign=False):
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=key_cert_sign, crl_sign=crl_sign,
        encipher_only=False, decipher_only=False)


class CertificateAuthority:
    """A CA certificate and its key, able to issue leaf certificates."""

    def __init__(self, certificate, key, path):
        self.certificate = certificate
        self.key = key
        # The CA certificate alone: the file to trust.
        self.path = path

    @classmethod
    def create(cls, path, name='sriov-octavia test CA', days=3650,
               key_path=None):
        """Create a CA; write its certificate to ``path``.

        The key goes to ``key_path`` (default ``path`` + ``.key``), readable
        by the owner only, so that ``load`` can issue more certificates
        later (the testbed does, for every amphora it boots).
        """
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        public_key = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(_key_usage(digital_signature=True,
                                      key_cert_sign=True, crl_sign=True),
                           critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key),
                critical=False)
            .sign(key, hashes.SHA256()))
        _write(path, _cert_pem(certificate), private=False)
        _write(key_path or f'{path}.key', _key_pem(key), private=True)
        return cls(certificate, key, path)

    @classmethod
    def load(cls, path, key_path=None):
        """Load a CA written by ``create``."""
        with open(path, 'rb') as cert_file:
            certificate = x509.load_pem_x509_certificate(cert_file.read())
        with open(key_path or f'{path}.key', 'rb') as key_file:
            key = serialization.load_pem_private_key(key_file.read(), None)
        return cls(certificate, key, path)

    def issue_server(self, path, hostnames=(), ips=(), common_name=None,
                     days=365):
        """Write a server certificate + key PEM valid for the given names.

        ``hostnames`` and ``ips`` become subjectAltName entries, which is
        what TLS clients check; the common name defaults to the first one.
        """
        names = ([x509.DNSName(name) for name in hostnames] +
                 [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips])
        if not names:
            raise ValueError(_SERVER_NEEDS_A_NAME)
        common_name = common_name or str((list(hostnames) + list(ips))[0])
        return self._issue(path, common_name,
                           ExtendedKeyUsageOID.SERVER_AUTH, names, days)

    def issue_client(self, path, name, days=365):
        """Write a client certificate + key PEM for ``name``.

        ``name`` (a host-like name such as ``controller-1``) is the common
        name and a DNS subjectAltName: strict RFC 5280 verifiers want a
        subjectAltName in every end-entity certificate.
        """
        return self._issue(path, name, ExtendedKeyUsageOID.CLIENT_AUTH,
                           [x509.DNSName(name)], days)

    def _issue(self, path, common_name, usage, alt_names, days):
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()),
                critical=False))
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alt_names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        return _write(path, _cert_pem(certificate) + _key_pem(key),
                      private=True)
