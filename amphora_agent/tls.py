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
"""The agent's server certificate: loaded at start, replaceable live.

TLSCredentials owns ``[amphora_agent] agent_server_cert`` (the server
certificate followed by its private key), ``agent_server_ca`` (the CA of
the callers' client certificates) and the ssl.SSLContext built from them.
The server reads ``context`` for every connection it accepts, so
``replace()`` changes the certificate the next handshake presents while
connections already established finish on the one they began with.

A replacement is checked completely before anything changes (one private
key, a certificate for that key, valid now, accepted by OpenSSL), then
written atomically, so that the file, the certificate served and the one
the amphora serves after a reboot stay the same.
"""

import contextlib
import os
import ssl
import tempfile
import threading

from cryptography import x509
from oslo_log import log as logging

from amphora_agent import pem
from amphora_agent import server

LOG = logging.getLogger(__name__)

# A certificate, its key and a few intermediates fit in far less; the
# general request body limit is for configurations, much larger.
MAX_PEM_SIZE = 64 * 1024

# Named here for the callers of parse_server_pem().
InvalidCertificate = pem.InvalidCertificate
describe = pem.describe


class CertificateFileError(Exception):
    """The new certificate could not be stored; the old one stays."""


class ServerCertificate:
    """A parsed server PEM: the certificate (and its chain) and the key."""

    def __init__(self, certificate, chain, key):
        self.certificate = certificate
        self.chain = chain
        self.key = key

    def describe(self):
        """Who the certificate is, for logs: never the key."""
        return describe(self.certificate)


def parse_server_pem(data, now=None):
    """Check a server PEM (bytes); a ServerCertificate or InvalidCertificate.

    It must hold exactly one private key, unencrypted, and at least one
    certificate: the first is the server's own and must be for that key;
    any others are its chain. Every certificate must be valid at ``now``
    (default: the current time).
    """
    if not data or not data.strip():
        raise InvalidCertificate(
            'body', 'a PEM file with the server certificate and its '
            'private key is required')
    if len(data) > MAX_PEM_SIZE:
        raise InvalidCertificate(
            'body', f'{len(data)} bytes is larger than the {MAX_PEM_SIZE} '
            'bytes a certificate file may have')
    try:
        text = data.decode('ascii')
    except UnicodeDecodeError:
        raise InvalidCertificate(
            'body', 'not PEM text (PEM is ASCII; a DER or PKCS#12 file '
            'must be converted first)') from None
    blocks = pem.blocks(text)
    if not blocks:
        raise InvalidCertificate(
            'body', 'not a PEM file: no "-----BEGIN ...-----" block '
            'ended by its "-----END ...-----" line')
    keys = [(label, block) for label, block in blocks
            if pem.is_private_key(label)]
    certificates = [block for label, block in blocks
                    if label == pem.CERTIFICATE]
    if not keys:
        raise InvalidCertificate(
            'private_key', 'no private key in the PEM; the certificate '
            'must be followed by its key')
    if len(keys) > 1:
        raise InvalidCertificate(
            'private_key', f'{len(keys)} private keys in the PEM; exactly '
            'one is required')
    if not certificates:
        raise InvalidCertificate('certificate',
                                 'no certificate in the PEM')
    key = pem.load_private_key(keys[0][1], keys[0][0])
    now = now or pem.now()
    leaf = pem.load_certificate(certificates[0], 'certificate')
    pem.check_key_matches(leaf, key, 'certificate')
    pem.check_dates(leaf, 'certificate', now)
    chain = []
    for index, block in enumerate(certificates[1:]):
        field = f'chain[{index}]'
        certificate = pem.load_certificate(block, field)
        pem.check_dates(certificate, field, now)
        chain.append(certificate)
    return ServerCertificate(leaf, chain, key)


def _read_certificate(path):
    """The first certificate of ``path``, or None (for logs only)."""
    try:
        with open(path, 'rb') as pem:
            return x509.load_pem_x509_certificate(pem.read())
    except (OSError, ValueError):
        return None


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TLSCredentials:
    """The server certificate file, the client CA and their SSLContext.

    Building one reads both files (OSError, ssl.SSLError included, when
    either is unusable). ``context`` is always a complete context;
    ``replace()`` swaps it for one with a new certificate.
    """

    def __init__(self, cert_path, ca_path):
        self.cert_path = cert_path
        self.ca_path = ca_path
        self._lock = threading.Lock()
        self.context = server.make_ssl_context(cert_path, ca_path)
        self.certificate = _read_certificate(cert_path)

    def replace(self, data, requested_by='unknown'):
        """Serve ``data`` (PEM bytes) from now on, and after a reboot.

        Raises InvalidCertificate (nothing changed) or
        CertificateFileError (it could not be stored; nothing changed).
        Returns the ServerCertificate now served. ``requested_by`` says
        who asked, for the log.
        """
        parsed = parse_server_pem(data)
        # Two replacements at once must not leave one in the file and the
        # other served.
        with self._lock:
            context = self._store(data)
            previous = self.certificate
            self.context = context
            self.certificate = parsed.certificate
        LOG.info('Server certificate replaced for %s: now %s%s',
                 requested_by, parsed.describe(),
                 f' (was {describe(previous)})' if previous else '')
        return parsed

    def _store(self, data):
        """Write ``data`` beside the file, load it, then rename it over."""
        # A symbolic link stays one: its target is what is replaced.
        path = os.path.realpath(self.cert_path)
        directory = os.path.dirname(path)
        try:
            # mkstemp creates the file 0600, whatever the umask.
            fd, temporary = tempfile.mkstemp(
                dir=directory, prefix=f'.{os.path.basename(path)}.',
                suffix='.new')
        except OSError as error:
            raise CertificateFileError(
                f'cannot write in {directory}: {error.strerror}') from None
        try:
            try:
                with os.fdopen(fd, 'wb') as out:
                    os.fchmod(out.fileno(), 0o600)
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as error:
                raise CertificateFileError(
                    f'cannot write {temporary}: {error.strerror}') from None
            context = self._context_from(temporary)
            try:
                os.replace(temporary, path)
            except OSError as error:
                raise CertificateFileError(
                    f'cannot rename {temporary} to {path}: '
                    f'{error.strerror}') from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        try:
            _fsync_directory(directory)
        except OSError as error:
            # The file is in place; only its survival of a power cut
            # before the next journal commit is in doubt.
            LOG.warning('Cannot sync %s: %s', directory, error)
        return context

    def _context_from(self, path):
        # OpenSSL has the last word: a key too weak for its security level
        # or a signature algorithm it does not take is refused here, before
        # the file in use is touched.
        try:
            return server.make_ssl_context(path, self.ca_path)
        except ssl.SSLError as error:
            raise InvalidCertificate(
                'certificate', f'OpenSSL refuses it: {error.reason or error}'
            ) from None
        except OSError as error:
            # The new file was just written: it is the client CA that is
            # unreadable.
            raise CertificateFileError(
                f'cannot read the client CA {self.ca_path}: '
                f'{error.strerror}') from None
