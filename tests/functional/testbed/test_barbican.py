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
"""The testbed's Barbican, as a user and as Octavia use it.

A testbed instance of its own (ports 32xxx, prefix "tbb"). The user's side
is the real ``openstack`` client: a PKCS12 bundle (a self-signed server
certificate and its key, made here) stored as Octavia's TLS cookbook has
it, and read back. Octavia's side is Octavia's own code with the testbed's
configuration, in a process of its own (cert_manager_probe): its
configured certificate manager, and its API's validation of a listener's
``default_tls_container_ref`` with the user's token, which grants
Octavia's service user read access (a Barbican ACL) before it reads the
secret as that user. Last, the cookbook itself, against a load balancer.
"""

import ast
import base64
import datetime
import json
import os
import subprocess
import sys
import types
import uuid

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography import x509
from cryptography.x509.oid import NameOID
import pytest

from sriov_octavia_testbed import identity
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 15000
PREFIX = 'tbb'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SERVER_NAME = 'www.example.com'
OCTET_STREAM = 'application/octet-stream'
BARBICAN_CERT_MANAGER = (
    'octavia.certificates.manager.barbican.BarbicanCertManager')

# Barbican comes with test-requirements.txt: without it these fail, they
# are not skipped.
pytestmark = [pytest.mark.services, pytest.mark.netns,
              pytest.mark.timeout(900)]


@pytest.fixture(scope='module')
def server():
    """A self-signed server certificate, its key, and both as PKCS12."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    bundle = pkcs12.serialize_key_and_certificates(
        b'server', key, cert, None, serialization.NoEncryption())
    return types.SimpleNamespace(key=key, cert=cert, pkcs12=bundle)


def store(tb, bundle, name):
    """``openstack secret store`` of a PKCS12 bundle; the secret's href."""
    created = osc.cli_json(
        tb, 'secret', 'store', '--name', osc.unique(tb, name),
        '--payload-content-type', OCTET_STREAM,
        '--payload-content-encoding', 'base64',
        '--payload', base64.b64encode(bundle).decode())
    return created['Secret href']


def user_token(tb):
    return osc.cli(tb, 'token', 'issue', '-f', 'value',
                   '-c', 'id').stdout.strip()


def probe(tb, ref, token=None):
    """cert_manager_probe's report for ``ref``, with a token of the user."""
    if token is None:
        token = user_token(tb)
    files = [arg for path in tb.octavia_conf_files
             for arg in ('--config-file', path)]
    result = subprocess.run(
        [sys.executable, '-W', 'ignore', '-m',
         'tests.functional.testbed.cert_manager_probe', *files,
         '--user-token', token, '--project-id', identity.PROJECT['id'],
         ref], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def read_acl_users(tb, href):
    [read] = [acl for acl in osc.cli_json(tb, 'acl', 'get', href)
              if acl['Operation Type'] == 'read']
    return read['Users']


def octavia_user_id(tb):
    return osc.cli(tb, 'user', 'show', identity.OCTAVIA_USER, '-f', 'value',
                   '-c', 'id').stdout.strip()


def test_a_pkcs12_secret_is_stored_and_read_back(tb, server, tmp_path):
    href = store(tb, server.pkcs12, 'tls')
    assert href.startswith(tb.url('barbican') + '/v1/secrets/')

    shown = osc.cli_json(tb, 'secret', 'get', href)
    assert shown['Content types'] == {'default': OCTET_STREAM}
    assert shown['Status'] == 'ACTIVE'

    # The client asks for text/plain unless told: a binary secret is read
    # as what it is. It prints the payload as Python bytes.
    printed = osc.cli(tb, 'secret', 'get', href, '--payload',
                      '--payload_content_type', OCTET_STREAM,
                      '-f', 'value').stdout.strip()
    assert ast.literal_eval(printed) == server.pkcs12

    saved = tmp_path / 'server.p12'
    osc.cli(tb, 'secret', 'get', href, '--file', str(saved),
            '--payload_content_type', OCTET_STREAM)
    assert saved.read_bytes() == server.pkcs12
    assert [s['Secret href'] for s in osc.cli_json(
        tb, 'secret', 'list', '--name', shown['Name'])] == [href]


def test_octavia_reads_the_certificate_as_its_api_does(tb, server):
    href = store(tb, server.pkcs12, 'listener-tls')
    report = probe(tb, href)
    assert report['cert_manager'] == BARBICAN_CERT_MANAGER

    # The user's secret is the user's: Octavia's service user may not read
    # it until Octavia's API grants it access with the user's token.
    assert report['before']['status_code'] == 403, report['before']
    assert report['validation'] is None
    assert read_acl_users(tb, href) == [octavia_user_id(tb)]

    # Then it reads it, as a provider gets it: certificate and key of the
    # PKCS12 bundle.
    certificate = report['certificate']
    assert x509.load_pem_x509_certificate(
        certificate['certificate'].encode()) == server.cert
    key = serialization.load_pem_private_key(
        certificate['private_key'].encode(), None)
    assert key.private_numbers() == server.key.private_numbers()
    assert certificate['intermediates'] == []
    assert certificate['primary_cn'] == SERVER_NAME


def test_without_the_users_token_the_secret_is_refused(tb, server):
    # A request to Octavia's API without a token (a cloud entry without
    # credentials): the API cannot grant its service user access, and
    # answers as for a secret that is not there.
    href = store(tb, server.pkcs12, 'no-token')
    report = probe(tb, href, token='')
    assert report['validation']['class'] == 'CertificateRetrievalException'
    assert report['validation']['code'] == 400
    assert octavia_user_id(tb) not in read_acl_users(tb, href)


def test_a_secret_that_is_not_there_is_octavias_error(tb):
    missing = f"{tb.url('barbican')}/v1/secrets/{uuid.uuid4()}"
    report = probe(tb, missing)
    # What the API answers a listener naming it: HTTP 400.
    assert report['validation'] == {
        'class': 'CertificateRetrievalException',
        'message': f"Could not retrieve certificate: ['{missing}']",
        'code': 400, 'status_code': 400}
    assert 'certificate' not in report
    assert report['before']['status_code'] == 404


# The cookbook's commands ("Deploying a TLS-terminated HTTPS load
# balancer"), with the testbed's load balancer.
COOKBOOK = r"""
set -e
openstack secret store --name='tls_secret1' -t 'application/octet-stream' \
    -e 'base64' --payload="$(base64 < server.p12)"
openstack loadbalancer listener create --protocol-port 443 \
    --protocol TERMINATED_HTTPS --name listener1 \
    --default-tls-container=$(openstack secret list | \
        awk '/ tls_secret1 / {print $2}') "$LB"
"""


def test_the_tls_cookbook_as_written(tb, conn, server, tmp_path):
    (tmp_path / 'server.p12').write_bytes(server.pkcs12)
    flavor = osc.make_flavor(tb, conn)
    lb = osc.create_load_balancer(tb, osc.unique(tb, 'lb1'), flavor['id'])
    try:
        # A secret that is not there: the API refuses the listener.
        missing = f"{tb.url('barbican')}/v1/secrets/{uuid.uuid4()}"
        refused = osc.cli(
            tb, 'loadbalancer', 'listener', 'create', '--protocol-port',
            '443', '--protocol', 'TERMINATED_HTTPS', '--name', 'missing',
            f'--default-tls-container={missing}', lb['id'], check=False)
        assert refused.returncode != 0
        assert 'Could not retrieve certificate' in refused.stderr
        assert '(HTTP 400)' in refused.stderr

        env = tb.cli_env({'LB': lb['id'], 'PATH': os.pathsep.join(
            [os.path.dirname(sys.executable), os.environ.get('PATH', '')])})
        done = subprocess.run(['bash', '-c', COOKBOOK], cwd=tmp_path,
                              env=env, capture_output=True, text=True,
                              timeout=osc.TIMEOUT)
        print(done.stdout, done.stderr)
        # The API took the secret, whatever the provider then makes of the
        # listener: it granted Octavia's service user access to it.
        assert 'Could not retrieve certificate' not in done.stderr
        [secret] = osc.cli_json(tb, 'secret', 'list', '--name',
                                'tls_secret1')
        assert read_acl_users(tb, secret['Secret href']) == [
            octavia_user_id(tb)]
        if done.returncode == 0:
            listener = osc.cli_json(tb, 'loadbalancer', 'listener', 'show',
                                    'listener1')
            assert listener['default_tls_container_ref'] == (
                secret['Secret href'])
    finally:
        osc.wait_for_status(tb, lb['id'], ('ACTIVE', 'ERROR'))
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')
