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
"""An amphora boots from what the controller sends, and nothing else.

Seen as an operator sees it, through the real ``openstack`` CLI: the boot
request's user data carries the amphora's certificate and its agent's
configuration; the certificate the agent serves is the one the controller
issued with Octavia's [certificates] CA, naming the amphora id; the
management port carries [controller_worker] amp_secgroup_list; the
controller renews a certificate before it expires while traffic flows; a
controller that cannot issue an identity leaves the load balancer in ERROR
with a log that says why.
"""

import base64
import configparser
import json
import os
import time
import uuid

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509
from cryptography.x509.oid import NameOID
import pytest
import yaml

from sriov_octavia import amphorae
from sriov_octavia import naming
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.cloud_state import agent_for
from tests.functional.sriov_octavia.cloud_state import leftovers
from tests.functional.sriov_octavia.http_service import Host
from tests.functional.sriov_octavia.http_service import MEMBER_PORT
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import make_flavor
from tests.functional.sriov_octavia.openstack_cli import octavia_conf
from tests.functional.sriov_octavia.openstack_cli import wait_for_status
from tests.functional.sriov_octavia.openstack_cli import worker_log

# Ports 16xxx, below the kernel's range for outgoing connections; the
# management subnet 198.18.16.0/24.
PORT_BASE = 16000
PREFIX = 'tbs'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
# Seconds a rotation may take to show: the validity left after the buffer,
# plus a few rounds.
ROTATION_TIMEOUT = 90


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


@pytest.fixture(scope='module')
def flavor(tb, conn):
    return make_flavor(tb, conn)


@pytest.fixture(scope='module')
def ca(tb, fabric):
    with open(fabric.ca_cert, 'rb') as ca_file:
        return x509.load_pem_x509_certificate(ca_file.read())


@pytest.fixture
def loadbalancer(tb, conn, flavor):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', flavor['id'], '--vip-subnet-id', 'vip-subnet',
                  '--wait')
    yield lb
    cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'], '--wait',
        check=False)


def _server(conn, lb_id):
    [server] = amphorae.find_servers(conn, lb_id)
    return server


def _user_data_files(tb, server_id):
    shown = cli_json(tb, '--os-compute-api-version', '2.3', 'server',
                     'show', server_id)
    text = base64.b64decode(shown['OS-EXT-SRV-ATTR:user_data']).decode()
    assert text.startswith('#cloud-config\n')
    files = {entry['path']: entry
             for entry in yaml.safe_load(text)['write_files']}
    return shown, {path: base64.b64decode(entry['content'])
                   for path, entry in files.items()}, files


def _assert_issued_to(certificate, ca, amphora_id):
    assert certificate.issuer == ca.subject
    ca.public_key().verify(certificate.signature,
                           certificate.tbs_certificate_bytes,
                           ec.ECDSA(certificate.signature_hash_algorithm))
    [common_name] = certificate.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)
    assert common_name.value == amphora_id
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [amphora_id]


def test_the_boot_request_carries_the_identity_and_configuration(
        tb, conn, fabric, ca, loadbalancer):
    server = _server(conn, loadbalancer['id'])
    amphora_id = server.metadata[naming.META_AMPHORA_ID]
    shown, files, entries = _user_data_files(tb, server.id)

    assert shown['config_drive'] == 'True'
    assert sorted(files) == ['/etc/octavia/amphora-sriov-agent.conf',
                             '/etc/octavia/certs/client_ca.pem',
                             '/etc/octavia/certs/server.pem']
    assert entries['/etc/octavia/certs/server.pem']['permissions'] == '0600'
    agent_conf = configparser.ConfigParser(interpolation=None)
    agent_conf.read_string(files['/etc/octavia/amphora-sriov-agent.conf']
                           .decode())
    assert agent_conf['amphora_agent']['amphora_id'] == amphora_id
    assert agent_conf['amphora_agent']['agent_server_cert'] == (
        '/etc/octavia/certs/server.pem')
    # The controller's client CA ([controller_worker] client_ca).
    with open(fabric.ca_cert, 'rb') as ca_file:
        assert files['/etc/octavia/certs/client_ca.pem'] == ca_file.read()
    # The certificate the controller issued, and its key with it.
    pem = files['/etc/octavia/certs/server.pem']
    assert b'PRIVATE KEY' in pem
    issued = x509.load_pem_x509_certificate(pem)
    _assert_issued_to(issued, ca, amphora_id)

    # What the agent serves is that certificate.
    with agent_for(tb, conn, server) as agent:
        served = agent.served_certificate()
        assert agent.get_info()['amphora_id'] == amphora_id
    assert served.serial_number == issued.serial_number

    # The key never reached the controller's logs or its flow store.
    assert b'PRIVATE KEY' not in worker_log(tb).encode()
    with open(tb.path('octavia', 'taskflow.sqlite'), 'rb') as store:
        assert b'PRIVATE KEY' not in store.read()


def test_the_management_port_carries_the_operators_groups(
        tb, conn, loadbalancer):
    server = _server(conn, loadbalancer['id'])
    group = conn.network.find_security_group(seed.MGMT_SECURITY_GROUP,
                                             ignore_missing=False)
    mgmt = conn.network.find_network(seed.MGMT_NETWORK, ignore_missing=False)
    ports = cli_json(tb, 'port', 'list', '--server', server.id,
                     '--network', mgmt.id, '--long')
    assert [port['Security Groups'] for port in ports] == [[group.id]]
    shown = cli_json(tb, 'server', 'show', server.id)
    assert seed.MGMT_SECURITY_GROUP in json.dumps(shown['security_groups'])


def test_certificates_are_renewed_before_they_expire_while_traffic_flows(
        tb, conn, fabric, ca, flavor):
    # Certificates valid 40 s, renewed in their last 30 s: the first one
    # is renewed about 10 s after the amphora booted, and each after.
    with octavia_conf(tb, certificates={'cert_validity_time': 40},
                      house_keeping={'cert_interval': 2,
                                     'cert_expiry_buffer': 30}):
        lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                      '--flavor', flavor['id'], '--vip-subnet-id',
                      'vip-subnet', '--wait')
        member = Host(conn, fabric, 'rot-member')
        client = Host(conn, fabric, 'rot-client')
        try:
            member.serve()
            listener = cli_json(tb, 'loadbalancer', 'listener', 'create',
                                '--name', unique('listener'), '--protocol',
                                'HTTP', '--protocol-port', '80', lb['id'])
            wait_for_status(tb, lb['id'], 'ACTIVE')
            pool = cli_json(tb, 'loadbalancer', 'pool', 'create', '--name',
                            unique('pool'), '--listener', listener['id'],
                            '--protocol', 'HTTP', '--lb-algorithm',
                            'ROUND_ROBIN')
            wait_for_status(tb, lb['id'], 'ACTIVE')
            cli(tb, 'loadbalancer', 'member', 'create', '--address',
                member.address, '--protocol-port', str(MEMBER_PORT),
                '--subnet-id', member.subnet_id, pool['id'])
            wait_for_status(tb, lb['id'], 'ACTIVE')
            server = _server(conn, lb['id'])
            amphora_id = server.metadata[naming.META_AMPHORA_ID]
            with agent_for(tb, conn, server) as agent:
                first = agent.served_certificate()
            answers = []
            deadline = time.monotonic() + ROTATION_TIMEOUT
            while True:
                answers += client.get(lb['vip_address'], 3)
                with agent_for(tb, conn, server) as agent:
                    served = agent.served_certificate()
                    # The controller's requests keep working throughout.
                    agent.get_security_group()
                if served.serial_number != first.serial_number:
                    break
                assert time.monotonic() < deadline, 'no renewal'
            answers += client.get(lb['vip_address'], 3)
        finally:
            member.stop_serving()
            member.remove()
            client.remove()
            cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait', check=False)
    _assert_issued_to(served, ca, amphora_id)
    assert served.not_valid_after_utc > first.not_valid_after_utc
    assert answers and set(answers) == {'rot-member'}
    assert f'Amphora {amphora_id}: certificate expiring' in worker_log(tb)


def test_no_identity_means_no_amphora_and_a_log_that_says_why(
        tb, conn, flavor, tmp_path):
    missing = str(tmp_path / 'no-such-ca-key.pem')
    with octavia_conf(tb, certificates={'ca_private_key': missing}):
        lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                      '--flavor', flavor['id'], '--vip-subnet-id',
                      'vip-subnet')
        wait_for_status(tb, lb['id'], 'ERROR')
        log = worker_log(tb)
        try:
            assert (f'No identity for the STANDALONE amphora of load '
                    f'balancer {lb["id"]}') in log
            assert missing in log
            # Reverted: nothing booted, no port left.
            assert leftovers(conn, lb['id']) == ([], [])
        finally:
            cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait',
                check=False)
    assert not os.path.exists(missing)
