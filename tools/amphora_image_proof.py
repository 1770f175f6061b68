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
"""The controller's side of tools/amphora-image.sh boot.

``seed DIR``
    Makes two throwaway CAs the way an operator does (a server CA that
    signs the amphorae's certificates, a client CA that signed the
    controller's certificate), points Octavia's options at them and writes
    the NoCloud ``user-data`` with the controller's own functions
    (``sriov_octavia.amphora.bootstrap``), plus ``meta-data``, the
    controller's client PEM and the amphora id.
``probe DIR PORT TIMEOUT QEMU_PID``
    Waits for the agent behind 127.0.0.1:PORT, calls it as the controller
    does (mutual TLS, the server's name checked against the amphora id),
    prints its ``/info`` and the served certificate's subject, and checks
    that a client without a certificate is refused.
``powerdown QMP_SOCKET``
    Presses the guest's power button through qemu's QMP socket.
"""

import json
import os
import socket
import ssl
import sys
import time
import uuid

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from oslo_config import cfg

from sriov_octavia.amphora import bootstrap
from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs

CONF = cfg.CONF


def seed(run_dir):
    amphora_id = str(uuid.uuid4())
    ca_dir = os.path.join(run_dir, 'ca')
    os.makedirs(ca_dir, mode=0o700)
    server_ca = certs.CertificateAuthority.create(
        os.path.join(ca_dir, 'server_ca.pem'), name='amphora server CA')
    client_ca = certs.CertificateAuthority.create(
        os.path.join(ca_dir, 'client_ca.pem'), name='controller client CA')
    client_ca.issue_client(os.path.join(run_dir, 'client.pem'),
                           'controller')

    CONF([], project='octavia', default_config_files=[])
    bootstrap._register(CONF)
    CONF.set_override('ca_certificate', server_ca.path, 'certificates')
    CONF.set_override('ca_private_key', server_ca.path + '.key',
                      'certificates')
    CONF.set_override('ca_private_key_passphrase', None, 'certificates')
    CONF.set_override('client_ca', client_ca.path, 'controller_worker')

    token = bootstrap.issue_server_pem(amphora_id)
    pem = bootstrap.decrypt_server_pem(token)
    files = bootstrap.boot_files(amphora_id, pem)
    user_data = bootstrap.user_data(files)

    with open(os.path.join(run_dir, 'user-data'), 'w') as out:
        out.write(user_data)
    with open(os.path.join(run_dir, 'meta-data'), 'w') as out:
        out.write(f'instance-id: {amphora_id}\n'
                  f'local-hostname: amphora-{amphora_id}\n')
    with open(os.path.join(run_dir, 'server_ca.pem'), 'wb') as out:
        with open(server_ca.path, 'rb') as ca_file:
            out.write(ca_file.read())
    with open(os.path.join(run_dir, 'amphora_id'), 'w') as out:
        out.write(amphora_id)
    print(f'amphora {amphora_id}: user data {len(user_data)} bytes, '
          f'files ' + ', '.join(f'{f.path} ({f.permissions})'
                                for f in files))


def _served_certificate(port, client_pem, ca_pem, server_name):
    context = ssl.create_default_context(cafile=ca_pem)
    context.load_cert_chain(client_pem)
    with socket.create_connection(('127.0.0.1', port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return x509.load_der_x509_certificate(
                tls.getpeercert(binary_form=True)), tls.version()


def _refused_without_certificate(port, ca_pem, server_name):
    context = ssl.create_default_context(cafile=ca_pem)
    try:
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=30) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                # TLS 1.3: the server's refusal arrives with the first read.
                tls.sendall(b'GET /1.0/info HTTP/1.1\r\nHost: x\r\n\r\n')
                answer = tls.recv(1024)
                return not answer
    except (ssl.SSLError, ConnectionError) as error:
        print(f'client without a certificate refused: {error}')
        return True


def _running(pid):
    """Whether ``pid`` runs (a zombie, not yet reaped by the script, not)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def probe(run_dir, port, timeout, qemu_pid):
    port, timeout, qemu_pid = int(port), float(timeout), int(qemu_pid)
    with open(os.path.join(run_dir, 'amphora_id')) as id_file:
        amphora_id = id_file.read().strip()
    client_pem = os.path.join(run_dir, 'client.pem')
    ca_pem = os.path.join(run_dir, 'server_ca.pem')
    client = agent_client.AgentClient(('127.0.0.1', port), client_pem,
                                      ca_pem, timeout=(10.0, 60.0),
                                      server_name=amphora_id)
    started = time.monotonic()
    deadline = started + timeout
    info = None
    while info is None:
        if not _running(qemu_pid):
            print('qemu exited before the agent answered', file=sys.stderr)
            return 1
        try:
            info = client.get_info()
        except agent_client.AgentUnreachable as error:
            if time.monotonic() > deadline:
                print(f'no answer after {timeout:.0f} s: {error}',
                      file=sys.stderr)
                return 1
            time.sleep(5)
    print(f'agent answered after {time.monotonic() - started:.0f} s of '
          f'polling')
    print('GET /info ->', json.dumps(info, indent=2, sort_keys=True))
    cert, version = _served_certificate(port, client_pem, ca_pem,
                                        amphora_id)
    names = cert.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(
            x509.DNSName)
    print(f'served certificate: subject {cert.subject.rfc4514_string()}, '
          f'DNS names {names}, issuer {cert.issuer.rfc4514_string()}, '
          f'{version}')
    if not _refused_without_certificate(port, ca_pem, amphora_id):
        print('a client without a certificate was served', file=sys.stderr)
        return 1
    client.close()
    return 0


def powerdown(qmp_socket):
    with socket.socket(socket.AF_UNIX) as qmp:
        qmp.settimeout(10)
        qmp.connect(qmp_socket)
        stream = qmp.makefile('rw')
        stream.readline()  # greeting
        for command in ('qmp_capabilities', 'system_powerdown'):
            stream.write(json.dumps({'execute': command}) + '\n')
            stream.flush()
            stream.readline()


def main(argv):
    command, args = argv[1], argv[2:]
    if command == 'seed':
        return seed(*args)
    if command == 'probe':
        return probe(*args)
    if command == 'powerdown':
        return powerdown(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv) or 0)
