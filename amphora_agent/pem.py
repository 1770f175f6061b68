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
"""Reading PEM text the controller sends, without ever quoting a key.

Both the agent's own server certificate (amphora_agent.tls) and the
certificate files of the load balancers (amphora_agent.engine.tls_files)
are checked with these before anything is written: a refusal names the
field at fault and says why in words an operator can act on. A private
key's bytes never reach an exception message or a log: cryptography's
errors are not chained, since they may carry them.
"""

import datetime
import re

from cryptography import exceptions as crypto_exceptions
from cryptography.hazmat.primitives import serialization
from cryptography import x509

_BLOCK = re.compile(
    r'-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----', re.S)
CERTIFICATE = 'CERTIFICATE'
CRL = 'X509 CRL'
ENCRYPTED_KEY = 'ENCRYPTED PRIVATE KEY'
_SPKI = (serialization.Encoding.DER,
         serialization.PublicFormat.SubjectPublicKeyInfo)


class InvalidCertificate(ValueError):
    """PEM text refused: ``field`` is what is wrong with it.

    ``reason`` never quotes a private key.
    """

    def __init__(self, field, reason):
        super().__init__(f'{field}: {reason}')
        self.field = field
        self.reason = reason


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def describe(certificate):
    """Who a certificate is, for logs and answers: never a key."""
    return (f'{certificate.subject.rfc4514_string()} serial '
            f'{certificate.serial_number:x}, valid until '
            f'{certificate.not_valid_after_utc.isoformat()}')


def blocks(text):
    """``(label, whole block)`` for every PEM block, in order."""
    return [(match.group(1), match.group(0))
            for match in _BLOCK.finditer(text)]


def unterminated(text, found):
    """Whether ``text`` has more BEGIN lines than the ``found`` blocks.

    A block whose END line is missing or misspelt is not found at all;
    haproxy would stop reading at it, so it is refused rather than
    silently skipped.
    """
    return text.count('-----BEGIN ') > len(found)


def is_private_key(label):
    return label.endswith('PRIVATE KEY')


def load_private_key(block, label):
    if label == ENCRYPTED_KEY:
        raise InvalidCertificate(
            'private_key', 'is encrypted; the agent has no passphrase, '
            'send it unencrypted')
    try:
        return serialization.load_pem_private_key(block.encode('ascii'),
                                                  password=None)
    except TypeError:
        # The traditional format says "encrypted" in a header line.
        raise InvalidCertificate(
            'private_key', 'is encrypted; the agent has no passphrase, '
            'send it unencrypted') from None
    except (ValueError, UnicodeEncodeError,
            crypto_exceptions.UnsupportedAlgorithm):
        # Not chained, not quoted: the exception may carry key bytes.
        raise InvalidCertificate(
            'private_key', f'the {label} block is not a private key the '
            'agent can read') from None


def load_certificate(block, field):
    try:
        return x509.load_pem_x509_certificate(block.encode('ascii'))
    except (ValueError, UnicodeEncodeError) as error:
        raise InvalidCertificate(
            field, f'not a readable X.509 certificate ({error})') from None


def load_crl(block, field):
    try:
        return x509.load_pem_x509_crl(block.encode('ascii'))
    except (ValueError, UnicodeEncodeError) as error:
        raise InvalidCertificate(
            field, f'not a readable X.509 CRL ({error})') from None


def check_key_matches(certificate, key, field):
    """Refuse ``certificate`` unless it is the certificate of ``key``."""
    try:
        certificate_key = certificate.public_key().public_bytes(*_SPKI)
    except (ValueError, crypto_exceptions.UnsupportedAlgorithm):
        raise InvalidCertificate(
            field, 'its public key is of a kind the agent cannot '
            'read') from None
    if certificate_key != key.public_key().public_bytes(*_SPKI):
        raise InvalidCertificate(
            field, 'its public key does not match the private key in the '
            'PEM')


def check_dates(certificate, field, at):
    """Refuse a certificate that is not valid at ``at`` (an aware time)."""
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    clock = at.replace(microsecond=0).isoformat()
    if at < not_before:
        raise InvalidCertificate(
            field, f'not valid before {not_before.isoformat()} (the '
            f'amphora\'s clock says {clock})')
    if at > not_after:
        raise InvalidCertificate(
            field, f'expired on {not_after.isoformat()} (the amphora\'s '
            f'clock says {clock})')
