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
"""What an amphora boots from, as the controller renders it."""

import configparser

from cryptography import x509
from oslo_config import cfg
import pytest

from amphora_agent import config as agent_config
from sriov_octavia.amphora import bootstrap

AMPHORA_ID = '0b7c2a55-3e1d-4f6a-9b8c-7d6e5f4a3b2c'


@pytest.fixture
def conf(ca_conf):
    ca_conf.set_override('agent_port', 9555, group='sriov_amphora')
    yield ca_conf
    ca_conf.clear_override('agent_port', group='sriov_amphora')


def test_the_agent_configuration_is_one_the_agent_reads(conf, tmp_path):
    path = tmp_path / 'agent.conf'
    path.write_text(bootstrap.agent_config(AMPHORA_ID, conf))
    agent_conf = cfg.ConfigOpts()
    agent_config.register_opts(agent_conf)
    agent_conf(['--config-file', str(path)], project='amphora-sriov-agent')
    assert agent_conf.amphora_agent.amphora_id == AMPHORA_ID
    assert agent_conf.amphora_agent.agent_server_cert == bootstrap.SERVER_PEM
    assert agent_conf.amphora_agent.agent_server_ca == bootstrap.CLIENT_CA
    assert agent_conf.amphora_agent.network_namespace == 'amphora-haproxy'
    assert agent_conf.haproxy_amphora.bind_port == 9555


def test_the_identity_is_encrypted_and_names_the_amphora(conf):
    token = bootstrap.issue_server_pem(AMPHORA_ID, conf)
    assert 'PRIVATE KEY' not in token
    pem = bootstrap.decrypt_server_pem(token)
    certificate = x509.load_pem_x509_certificate(pem)
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [AMPHORA_ID]
    with open(conf.certificates.ca_certificate, 'rb') as ca:
        assert certificate.issuer == x509.load_pem_x509_certificate(
            ca.read()).subject


def test_boot_files_need_the_client_ca(conf, tmp_path):
    conf.set_override('client_ca', str(tmp_path / 'nope.pem'),
                      group='controller_worker')
    with pytest.raises(bootstrap.IdentityError,
                       match=r'\[controller_worker\] client_ca .*nope.pem'):
        bootstrap.boot_files(AMPHORA_ID, b'pem', conf)


def test_user_data_nova_would_refuse_is_refused_here(conf):
    files = [bootstrap.BootFile('/etc/big', b'x' * 60000, '0644')]
    with pytest.raises(bootstrap.IdentityError, match='65535'):
        bootstrap.user_data(files)


def test_the_files_land_where_the_image_expects_them(conf):
    files = bootstrap.boot_files(AMPHORA_ID, b'PEM', conf)
    assert {f.path: f.permissions for f in files} == {
        '/etc/octavia/amphora-sriov-agent.conf': '0644',
        '/etc/octavia/certs/client_ca.pem': '0644',
        '/etc/octavia/certs/server.pem': '0600'}
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(files[0].content.decode())
    assert parsed['amphora_agent']['amphora_id'] == AMPHORA_ID
