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
"""TLS, PING and PROMETHEUS through an SR-IOV VIP, as a user builds them.

Octavia's TLS cookbook, run as written against the testbed's real Barbican:
``openstack secret store`` with a PKCS12 payload, then a TERMINATED_HTTPS
listener naming it. Each feature is judged by real traffic from a client
namespace: the served certificate checked against the CA, SNI picking the
right one, a client certificate demanded, re-encryption to a member that
checks the amphora's own client certificate, a PING-monitored member that
stops answering echo requests, and a Prometheus scrape through the VIP.
"""

import base64
import datetime
import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography import x509
from cryptography.x509.oid import NameOID
import pytest

from sriov_octavia_testbed import certs
from tests.functional.sriov_octavia import http_service
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 13000
PREFIX = 'ttl'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX

HTTPS_PORT = 443
MEMBER_TLS_PORT = 8443

# A TLS client run in a host's namespace: the server's certificate checked
# against ``ca``, ``name`` sent as SNI, an optional client certificate.
# Prints the served certificate's common name and the body, or the error.
TLS_CLIENT = '''
import json, socket, ssl, sys
address, port, name, ca, client = sys.argv[1:6]
context = ssl.create_default_context(cafile=ca)
if client != '-':
    context.load_cert_chain(client)
try:
    with socket.create_connection((address, int(port)), timeout=5) as plain:
        with context.wrap_socket(plain, server_hostname=name) as tls:
            subject = dict(item[0] for item in tls.getpeercert()['subject'])
            tls.sendall(b'GET / HTTP/1.0\\r\\nHost: ' + name.encode() +
                        b'\\r\\n\\r\\n')
            answer = b''
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    head, _, body = answer.decode().partition('\\r\\n\\r\\n')
    print(json.dumps({'cn': subject['commonName'], 'body': body,
                      'status': head.split()[1] if head else None}))
except (OSError, ssl.SSLError) as error:
    print(json.dumps({'error': f'{type(error).__name__}: {error}'}))
'''

# An HTTPS member that demands a client certificate signed by ``ca``.
TLS_MEMBER = '''
import http.server, ssl, sys
name, port, cert, ca = sys.argv[1:5]
body = name.encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        peer = dict(item[0] for item in
                    self.connection.getpeercert()['subject'])
        answer = body + b'<-' + peer['commonName'].encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(('', int(port)), Handler)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
context.verify_mode = ssl.CERT_REQUIRED
context.load_cert_chain(cert)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
'''


class Pki:
    """A CA and the certificates the tests store in Barbican."""

    def __init__(self, path):
        self.path = path
        self.ca = certs.CertificateAuthority.create(
            os.path.join(path, 'ca.pem'), 'ttl test CA')

    def file(self, name):
        return os.path.join(self.path, name)

    def server(self, hostname):
        return self.ca.issue_server(self.file(f'{hostname}.pem'),
                                    hostnames=[hostname])

    def client(self, name):
        return self.ca.issue_client(self.file(f'{name}.pem'), name)

    def expired(self, hostname):
        """A certificate for ``hostname`` that expired yesterday."""
        key = serialization.load_pem_private_key(
            open(self.server(hostname), 'rb').read(), None)
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                hostname)])
        certificate = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(self.ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(hostname)]), critical=False)
            .sign(self.ca.key, hashes.SHA256()))
        path = self.file(f'{hostname}-expired.pem')
        with open(path, 'wb') as out:
            out.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            out.write(certificate.public_bytes(serialization.Encoding.PEM))
        return path


def pkcs12_of(pem_path):
    """The PKCS12 of a key + certificate PEM, as the cookbook makes it."""
    data = open(pem_path, 'rb').read()
    key = serialization.load_pem_private_key(data, None)
    certificate = x509.load_pem_x509_certificate(data)
    return pkcs12.serialize_key_and_certificates(
        None, key, certificate, None, serialization.NoEncryption())


def store_pkcs12(tb, name, pem_path):
    """``openstack secret store`` of a PKCS12; the secret's href."""
    payload = base64.b64encode(pkcs12_of(pem_path)).decode()
    return osc.cli_json(
        tb, 'secret', 'store', '--name', osc.unique(tb, name),
        '--payload-content-type', 'application/octet-stream',
        '--payload-content-encoding', 'base64',
        '--payload', payload)['Secret href']


def store_pem(tb, name, pem_path):
    """``openstack secret store`` of a PEM bundle (a CA or a CRL)."""
    return osc.cli_json(
        tb, 'secret', 'store', '--name', osc.unique(tb, name),
        '--payload-content-type', 'text/plain',
        '--payload', open(pem_path).read())['Secret href']


def tls_get(host, address, port, name, ca, client=None):
    result = subprocess.run(
        ['ip', 'netns', 'exec', host.namespace, sys.executable, '-c',
         TLS_CLIENT, address, str(port), name, ca, client or '-'],
        capture_output=True, text=True, check=True, timeout=30)
    return json.loads(result.stdout)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp('ttl-pki')))


@pytest.fixture(scope='module')
def lb(tb, conn):
    flavor = osc.make_flavor(tb, conn)
    with http_service.load_balancer(tb, flavor) as created:
        yield created


def listener_create(tb, lb, protocol, port, *options):
    return osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, f'{protocol.lower()}-{port}'), '--protocol', protocol,
        '--protocol-port', str(port), *options, '--wait', lb['id'])


def pool_with(tb, listener, members, *options, port=None, protocol='HTTP',
              monitor=None):
    pool = osc.cli_json(
        tb, 'loadbalancer', 'pool', 'create', '--name',
        osc.unique(tb, 'pool'), '--listener', listener['id'], '--protocol',
        protocol, '--lb-algorithm', 'ROUND_ROBIN', *options, '--wait')
    member_ids = {}
    for member in members:
        member_ids[member.name] = osc.cli_json(
            tb, 'loadbalancer', 'member', 'create', '--name', member.name,
            '--subnet-id', member.subnet_id, '--address', member.address,
            '--protocol-port', str(port or http_service.MEMBER_PORT),
            '--wait', pool['id'])['id']
    if monitor:
        osc.cli(tb, 'loadbalancer', 'healthmonitor', 'create', '--name',
                osc.unique(tb, 'monitor'), '--type', monitor, '--delay', '1',
                '--timeout', '1', '--max-retries', '1',
                '--max-retries-down', '1', '--wait', pool['id'])
    return pool, member_ids


def served(check):
    return http_service.wait_for('an answer', check)


def test_https_through_the_vip_with_sni(tb, lb, pki, hosts):
    client, member = hosts('client'), hosts('member')
    member.serve()
    www = store_pkcs12(tb, 'www', pki.server('www.example.com'))
    api = store_pkcs12(tb, 'api', pki.server('api.example.com'))
    listener = listener_create(
        tb, lb, 'TERMINATED_HTTPS', HTTPS_PORT,
        '--default-tls-container-ref', www, '--sni-container-refs', api,
        '--allowed-cidr', f'{client.address}/32')
    pool_with(tb, listener, [member])
    vip = lb['vip_address']

    answer = served(lambda: (lambda a: a if 'body' in a else None)(
        tls_get(client, vip, HTTPS_PORT, 'www.example.com', pki.ca.path)))

    assert answer == {'cn': 'www.example.com', 'body': 'member',
                      'status': '200'}
    assert tls_get(client, vip, HTTPS_PORT, 'api.example.com',
                   pki.ca.path)['cn'] == 'api.example.com'
    # A name no certificate holds gets the default one, which the client
    # (checking names) refuses.
    assert 'CERTIFICATE_VERIFY_FAILED' in tls_get(
        client, vip, HTTPS_PORT, 'other.example.com',
        pki.ca.path)['error']


def test_a_client_certificate_is_demanded_and_checked(tb, lb, pki, hosts):
    client, member = hosts('client'), hosts('member')
    member.serve()
    www = store_pkcs12(tb, 'www-auth', pki.server('www.example.com'))
    client_ca = store_pem(tb, 'client-ca', pki.ca.path)
    listener = listener_create(
        tb, lb, 'TERMINATED_HTTPS', HTTPS_PORT + 1,
        '--default-tls-container-ref', www,
        '--client-ca-tls-container-ref', client_ca,
        '--client-authentication', 'MANDATORY',
        '--allowed-cidr', f'{client.address}/32')
    pool_with(tb, listener, [member])
    vip, port = lb['vip_address'], HTTPS_PORT + 1
    certificate = pki.client('client-1')

    answer = served(lambda: (lambda a: a if 'body' in a else None)(
        tls_get(client, vip, port, 'www.example.com', pki.ca.path,
                certificate)))

    assert answer['body'] == 'member'
    # Without a certificate haproxy ends the handshake (TLS 1.3 says so
    # at the first read, which the client sees as an error or no answer).
    refused = tls_get(client, vip, port, 'www.example.com', pki.ca.path)
    assert 'body' not in refused or refused['status'] is None
    # One from another CA is refused too.
    foreign = certs.CertificateAuthority.create(
        pki.file('foreign-ca.pem'), 'foreign CA').issue_client(
        pki.file('foreign-client.pem'), 'intruder')
    refused = tls_get(client, vip, port, 'www.example.com', pki.ca.path,
                      foreign)
    assert 'body' not in refused or refused['status'] is None


def test_re_encryption_to_a_member_that_checks_the_amphora(
        tb, lb, pki, hosts):
    client, member = hosts('client'), hosts('tls-member')
    member_cert = pki.ca.issue_server(pki.file('member.pem'),
                                      ips=[member.address])
    member.server = subprocess.Popen(
        ['ip', 'netns', 'exec', member.namespace, sys.executable, '-c',
         TLS_MEMBER, 'tls-member', str(MEMBER_TLS_PORT), member_cert,
         pki.ca.path], stderr=subprocess.DEVNULL)
    amphora_cert = store_pkcs12(tb, 'amphora-client',
                                pki.client('amphora-client'))
    member_ca = store_pem(tb, 'member-ca', pki.ca.path)
    listener = listener_create(tb, lb, 'HTTP', 80,
                               '--allowed-cidr', f'{client.address}/32')
    pool_with(tb, listener, [member], '--enable-tls',
              '--tls-container-ref', amphora_cert,
              '--ca-tls-container-ref', member_ca, port=MEMBER_TLS_PORT)
    vip = lb['vip_address']

    answers = served(lambda: (lambda a: a if a[0] else None)(
        client.get(vip, 1)))

    # The member saw the amphora's client certificate, and the amphora
    # checked the member's against the CA (or nothing would come back).
    assert answers == ['tls-member<-amphora-client']


def test_a_ping_monitored_member_that_ignores_echo_goes_error(
        tb, lb, pki, hosts):
    client, member = hosts('client'), hosts('pinged')
    member.serve()
    listener = listener_create(tb, lb, 'HTTP', 8080,
                               '--allowed-cidr', f'{client.address}/32')
    pool, member_ids = pool_with(tb, listener, [member], monitor='PING')
    member_id = member_ids['pinged']
    http_service.wait_for('the member ONLINE', lambda: http_service.
                          member_status(tb, pool, member_id) == 'ONLINE')

    subprocess.run(['ip', 'netns', 'exec', member.namespace, 'sysctl',
                    '-qw', 'net.ipv4.icmp_echo_ignore_all=1'], check=True)

    http_service.wait_for('the member ERROR', lambda: http_service.
                          member_status(tb, pool, member_id) == 'ERROR')
    subprocess.run(['ip', 'netns', 'exec', member.namespace, 'sysctl',
                    '-qw', 'net.ipv4.icmp_echo_ignore_all=0'], check=True)
    http_service.wait_for('the member ONLINE again', lambda: http_service.
                          member_status(tb, pool, member_id) == 'ONLINE')


def test_a_prometheus_scrape_through_the_vip_has_the_firewall_counters(
        tb, lb, hosts):
    client = hosts('scraper')
    listener_create(tb, lb, 'PROMETHEUS', 9100,
                    '--allowed-cidr', f'{client.address}/32')
    script = ('import sys, urllib.request\n'
              'print(urllib.request.urlopen(\n'
              '    f"http://{sys.argv[1]}:9100/metrics", timeout=5\n'
              ').read().decode())\n')

    def scrape():
        result = subprocess.run(
            ['ip', 'netns', 'exec', client.namespace, sys.executable, '-c',
             script, lb['vip_address']], capture_output=True, text=True,
            check=False, timeout=30)
        return result.stdout if result.returncode == 0 else None

    metrics = served(scrape)

    # haproxy's own, named as upstream's proxy names them...
    assert 'octavia_loadbalancer_' in metrics
    # ...and the SR-IOV firewall's, which the host cannot see otherwise.
    assert ('octavia_sriov_firewall_listener_accepted_packets_total'
            '{protocol="TCP",port="9100"}') in metrics
    assert 'octavia_sriov_firewall_interface_dropped_packets_total' in (
        metrics)


def test_an_expired_certificate_puts_the_listener_in_error(
        tb, lb, pki, hosts):
    client, member = hosts('client'), hosts('member')
    member.serve()
    good = store_pkcs12(tb, 'good', pki.server('good.example.com'))
    listener = listener_create(
        tb, lb, 'TERMINATED_HTTPS', HTTPS_PORT + 2,
        '--default-tls-container-ref', good,
        '--allowed-cidr', f'{client.address}/32')
    pool_with(tb, listener, [member])
    vip = lb['vip_address']
    served(lambda: 'body' in tls_get(client, vip, HTTPS_PORT + 2,
                                     'good.example.com', pki.ca.path))
    expired = store_pkcs12(tb, 'expired', pki.expired('old.example.com'))

    # Octavia's API accepts it (it reads, it does not check dates)...
    bad = osc.cli_json(
        tb, 'loadbalancer', 'listener', 'create', '--name',
        osc.unique(tb, 'expired'), '--protocol', 'TERMINATED_HTTPS',
        '--protocol-port', str(HTTPS_PORT + 3),
        '--default-tls-container-ref', expired, lb['id'])

    http_service.wait_for('the listener ERROR', lambda: osc.cli_json(
        tb, 'loadbalancer', 'listener', 'show', bad['id'])[
            'provisioning_status'] == 'ERROR')
    assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
        'provisioning_status'] == 'ACTIVE'
    assert 'the certificate expired on' in osc.worker_log(tb)
    # The running configuration is untouched: the first listener serves.
    assert tls_get(client, vip, HTTPS_PORT + 2, 'good.example.com',
                   pki.ca.path)['body'] == 'member'
    osc.cli(tb, 'loadbalancer', 'listener', 'delete', '--wait', bad['id'])
