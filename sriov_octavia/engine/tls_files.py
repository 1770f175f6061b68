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
"""The TLS files a load balancer's haproxy reads, fetched at push time.

Certificates are Barbican secrets that Octavia's API checked and granted
the controller access to; they are read with Octavia's own certificate
manager (``[certificates] cert_manager``) as Octavia's amphora driver reads
them, only when a push needs them, and live in memory until the amphora
agent has them: never in a flow's store, a job or a log.

Each file is checked before anything is pushed, so that a secret the API
accepted but haproxy could not use (a key that is not its certificate's,
an expired certificate, a payload that is no certificate) fails the flow
with its reason and leaves the running configuration alone.

The names and paths are those Octavia's templater writes into haproxy.cfg
(``<base_cert_dir>/<lb id>/<name>``): a listener's certificates as
``<sha1 of the certificate>.pem`` with a crt-list ``<listener id>.pem``
naming them (the default first, then the SNI ones), CA and CRL secrets as
``<sha256 of the content>.pem``.
"""

import dataclasses
import datetime
import hashlib
import os

from cryptography.hazmat.primitives import serialization
from cryptography import x509
from octavia.common import data_models
from octavia.common.tls_utils import cert_parser
from oslo_config import cfg
from oslo_context import context as oslo_context
from stevedore import driver as stevedore_driver

CONF = cfg.CONF


class UnusableSecret(Exception):
    """A TLS secret of a listener or pool that haproxy cannot use."""

    def __init__(self, kind, obj_id, field, ref, reason):
        self.kind = kind
        self.obj_id = obj_id
        self.field = field
        self.ref = ref
        self.reason = reason
        super(UnusableSecret, self).__init__(
            f'{kind} {obj_id}: {field} {ref}: {reason}')


@dataclasses.dataclass
class TlsFiles:
    """The files to upload, and what the templater is told of them.

    ``files`` maps names to contents, each file after those it names (a
    crt-list after its certificates); ``tls_certs`` is the templater's
    view.
    """
    files: dict
    tls_certs: dict


def cert_manager(conf=CONF):
    """Octavia's configured certificate manager, loaded as Octavia does."""
    return stevedore_driver.DriverManager(
        namespace='octavia.cert_manager', name=conf.certificates.cert_manager,
        invoke_on_load=True).driver


def _as_bytes(value):
    return value.encode('utf-8') if isinstance(value, str) else value


def _check_certificate(certificate, private_key, intermediates):
    """The reason haproxy could not serve this certificate, or None."""
    try:
        cert = x509.load_pem_x509_certificate(certificate)
    except ValueError:
        return 'the certificate is not a PEM X.509 certificate'
    try:
        key = serialization.load_pem_private_key(private_key, None)
    except (TypeError, ValueError):
        return 'the private key is not an unencrypted PEM private key'
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if (key.public_key().public_bytes(encoding, public) !=
            cert.public_key().public_bytes(encoding, public)):
        return 'the private key does not belong to the certificate'
    now = datetime.datetime.now(datetime.timezone.utc)
    if now < cert.not_valid_before_utc:
        return (f'the certificate is not valid before '
                f'{cert.not_valid_before_utc.isoformat()}')
    if now > cert.not_valid_after_utc:
        return (f'the certificate expired on '
                f'{cert.not_valid_after_utc.isoformat()}')
    for number, intermediate in enumerate(intermediates):
        try:
            x509.load_pem_x509_certificate(intermediate)
        except ValueError:
            return f'intermediate {number} is not a PEM X.509 certificate'
    return None


class _Gatherer:

    def __init__(self, loadbalancer, manager, base_cert_dir):
        self.loadbalancer = loadbalancer
        self.manager = manager
        self.base_cert_dir = base_cert_dir
        self.files = {}
        self.tls_certs = {}

    def path(self, name):
        return os.path.join(self.base_cert_dir, self.loadbalancer.id, name)

    def context(self, obj):
        return oslo_context.RequestContext(
            project_id=obj.project_id or self.loadbalancer.project_id)

    def certificate(self, kind, obj, field, ref):
        """A key and certificate (PKCS12 or container) as a PEM file."""
        try:
            cert = self.manager.get_cert(self.context(obj), ref,
                                         check_only=True)
            certificate = _as_bytes(cert.get_certificate())
            private_key = cert_parser.prepare_private_key(
                _as_bytes(cert.get_private_key()),
                _as_bytes(cert.get_private_key_passphrase()))
            intermediates = [_as_bytes(i)
                             for i in cert.get_intermediates() or ()]
        except Exception as error:  # noqa: B902 - any manager's failure
            raise UnusableSecret(kind, obj.id, field, ref,
                                 f'cannot be read: {error}') from error
        reason = _check_certificate(certificate, private_key, intermediates)
        if reason:
            raise UnusableSecret(kind, obj.id, field, ref, reason)
        container = data_models.TLSContainer(
            # Octavia's naming of the file, so an amphora moved between the
            # two providers keeps its names.
            id=hashlib.sha1(certificate).hexdigest(),  # nosec - a name
            primary_cn=cert_parser.get_primary_cn(certificate),
            certificate=certificate, private_key=private_key,
            intermediates=intermediates)
        name = f'{container.id}.pem'
        self.files[name] = _as_bytes(cert_parser.build_pem(container))
        return name

    def secret(self, kind, obj, field, ref, check):
        """A CA bundle or a CRL, as it is stored."""
        try:
            data = _as_bytes(self.manager.get_secret(self.context(obj), ref))
        except Exception as error:  # noqa: B902 - any manager's failure
            raise UnusableSecret(kind, obj.id, field, ref,
                                 f'cannot be read: {error}') from error
        reason = check(data)
        if reason:
            raise UnusableSecret(kind, obj.id, field, ref, reason)
        name = f'{hashlib.sha256(data).hexdigest()}.pem'
        self.files[name] = data
        return name

    def listener(self, listener):
        refs = ([('default_tls_container_ref', listener.tls_certificate_id)]
                if listener.tls_certificate_id else [])
        refs += [('sni_container_refs', sni.tls_container_id)
                 for sni in listener.sni_containers]
        if refs:
            names = [self.certificate('listener', listener, field, ref)
                     for field, ref in refs]
            # haproxy's crt-list: the first certificate is the default.
            self.files[f'{listener.id}.pem'] = ''.join(
                f'{self.path(name)}\n' for name in names).encode()
        if listener.client_ca_tls_certificate_id:
            self.tls_certs[listener.client_ca_tls_certificate_id] = (
                self.secret('listener', listener,
                            'client_ca_tls_container_ref',
                            listener.client_ca_tls_certificate_id,
                            _check_ca_bundle))
        if listener.client_crl_container_id:
            self.tls_certs[listener.client_crl_container_id] = self.secret(
                'listener', listener, 'client_crl_container_ref',
                listener.client_crl_container_id, _check_crl)
        for pool in listener.pools:
            if pool.id not in self.tls_certs:
                self.tls_certs[pool.id] = self.pool(pool)

    def pool(self, pool):
        result = {}
        if pool.tls_certificate_id:
            result['client_cert'] = self.path(self.certificate(
                'pool', pool, 'tls_container_ref', pool.tls_certificate_id))
        if pool.ca_tls_certificate_id:
            result['ca_cert'] = self.path(self.secret(
                'pool', pool, 'ca_tls_container_ref',
                pool.ca_tls_certificate_id, _check_ca_bundle))
        if pool.crl_container_id:
            result['crl'] = self.path(self.secret(
                'pool', pool, 'crl_container_ref', pool.crl_container_id,
                _check_crl))
        return result


def _check_ca_bundle(data):
    try:
        if x509.load_pem_x509_certificates(data):
            return None
    except ValueError:
        pass
    return 'not a bundle of PEM X.509 certificates'


def _check_crl(data):
    try:
        x509.load_pem_x509_crl(data)
    except ValueError:
        return 'not a PEM certificate revocation list'
    return None


def needs_files(loadbalancer):
    """Whether any listener or pool of the load balancer has TLS secrets."""
    return any(
        listener.tls_certificate_id or listener.sni_containers or
        listener.client_ca_tls_certificate_id or
        listener.client_crl_container_id
        for listener in loadbalancer.listeners) or any(
        pool.tls_certificate_id or pool.ca_tls_certificate_id or
        pool.crl_container_id for pool in loadbalancer.pools)


def gather(loadbalancer, manager=None, base_cert_dir=None):
    """The TLS files of ``loadbalancer`` (an Octavia data model graph).

    :param manager: a certificate manager; Octavia's configured one if
        None (only loaded when a secret is to be read).
    :raises UnusableSecret: naming the listener or pool, the field, the
        secret and why haproxy could not use it.
    """
    if not needs_files(loadbalancer):
        return TlsFiles(files={}, tls_certs={})
    gatherer = _Gatherer(loadbalancer, manager or cert_manager(),
                         base_cert_dir or
                         CONF.haproxy_amphora.base_cert_dir)
    for listener in loadbalancer.listeners:
        gatherer.listener(listener)
    return TlsFiles(files=gatherer.files, tls_certs=gatherer.tls_certs)
