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
"""TLS files read from the certificate manager, checked, and rendered.

The certificates are real ones (made here with ``cryptography``), served by
a stand-in certificate manager with Octavia's interface; haproxy checks
the rendered configuration with the files in place when it is installed.
"""

import os
import shutil
import subprocess

import pytest

from sriov_octavia.engine import haproxy_config
from sriov_octavia.engine import octavia_models
from sriov_octavia.engine import tls_files
from sriov_octavia import provider_secrets
from tests import tls_material as tm

LB = '4f9c1b8e-1111-4222-8333-944455556666'
LISTENER = 'a0000000-0000-4000-8000-000000000001'
POOL = 'b0000000-0000-4000-8000-000000000001'
AMPHORA = {'id': 'f0000000-0000-4000-8000-000000000001', 'role': 'MASTER',
           'mgmt_ip': '198.18.35.5'}
BASE = '/var/lib/octavia/certs'
NOW = tm.now()
# Signs the listener certificates (haproxy does not check their chain).
CA = tm.Authority('tls-files test CA')


class Cert:
    """What Octavia's certificate managers return from get_cert."""

    def __init__(self, certificate, private_key, intermediates=()):
        self._certificate = certificate
        self._key = private_key
        self._intermediates = list(intermediates)

    def get_certificate(self):
        return self._certificate

    def get_private_key(self):
        return self._key

    def get_private_key_passphrase(self):
        return None

    def get_intermediates(self):
        return self._intermediates


class Manager:

    def __init__(self, certs=(), secrets=()):
        self.certs = dict(certs)
        self.secrets = dict(secrets)
        self.contexts = []

    def get_cert(self, context, ref, check_only=False):
        self.contexts.append(context.project_id)
        if ref not in self.certs:
            raise LookupError(f'no secret {ref}')
        return self.certs[ref]

    def get_secret(self, context, ref):
        self.contexts.append(context.project_id)
        return self.secrets[ref]


def _pair(name, start=-1, end=30):
    """A certificate valid from ``start`` to ``end`` days from now, its key."""
    certificate, key = CA.issue(name, not_before=NOW + start * tm.DAY,
                                not_after=NOW + end * tm.DAY)
    return Cert(tm.cert_pem(certificate), tm.key_pem(key))


def _state(listener=None, pool=None):
    listener_dict = {'listener_id': LISTENER, 'protocol': 'TERMINATED_HTTPS',
                     'protocol_port': 443, 'default_pool_id': POOL,
                     'project_id': 'project-1',
                     'default_tls_container_ref': 'ref-www'}
    listener_dict.update(listener or {})
    pool_dict = {'pool_id': POOL, 'protocol': 'HTTP',
                 'lb_algorithm': 'ROUND_ROBIN', 'listener_id': LISTENER,
                 'project_id': 'project-1',
                 'members': [{'member_id': 'm1', 'address': '192.0.2.20',
                              'protocol_port': 8443}]}
    pool_dict.update(pool or {})
    return {'loadbalancer_id': LB, 'project_id': 'project-1',
            'vip_address': '203.0.113.10', 'listeners': [listener_dict],
            'pools': [pool_dict]}


def _gather(state, manager):
    return tls_files.gather(octavia_models.load_balancer(state), manager,
                            BASE)


def test_default_and_sni_certificates_become_pems_and_a_crt_list():
    www, api = _pair('www.example.com'), _pair('api.example.com')
    manager = Manager({'ref-www': www, 'ref-api': api})

    result = _gather(_state({'sni_container_refs': ['ref-api']}), manager)

    crt_list = result.files.pop(f'{LISTENER}.pem').decode().splitlines()
    assert len(crt_list) == 2
    assert all(line.startswith(f'{BASE}/{LB}/') for line in crt_list)
    default, sni = (result.files[os.path.basename(line)]
                    for line in crt_list)
    assert www.get_certificate() in default and b'PRIVATE KEY' in default
    assert api.get_certificate() in sni
    assert set(manager.contexts) == {'project-1'}


def test_no_tls_reads_nothing(monkeypatch):
    def no_manager():
        raise AssertionError('the certificate manager was loaded')
    monkeypatch.setattr(tls_files, 'cert_manager', no_manager)
    state = _state({'protocol': 'HTTP', 'default_tls_container_ref': None})

    result = tls_files.gather(octavia_models.load_balancer(state))

    assert result.files == {} and result.tls_certs == {}


@pytest.mark.parametrize('cert, reason', [
    (Cert(_pair('www.example.com').get_certificate(),
          tm.key_pem(tm.new_key())),
     'the private key does not belong to the certificate'),
    (_pair('www.example.com', start=-30, end=-1),
     'the certificate expired on'),
    (_pair('www.example.com', start=2, end=30),
     'the certificate is not valid before'),
    (Cert(b'not a certificate', tm.key_pem(tm.new_key())),
     'the certificate is not a PEM X.509 certificate'),
])
def test_a_certificate_haproxy_cannot_serve_is_named_with_why(cert, reason):
    with pytest.raises(tls_files.UnusableSecret) as raised:
        _gather(_state(), Manager({'ref-www': cert}))

    assert str(raised.value).startswith(
        f'listener {LISTENER}: default_tls_container_ref ref-www: {reason}')
    assert 'PRIVATE KEY' not in str(raised.value)


def test_a_secret_the_manager_cannot_read_is_named():
    with pytest.raises(tls_files.UnusableSecret,
                       match='sni_container_refs ref-gone: cannot be read: '
                             'no secret ref-gone'):
        _gather(_state({'sni_container_refs': ['ref-gone']}),
                Manager({'ref-www': _pair('www.example.com')}))


def test_client_authentication_and_pool_tls_files():
    ca = tm.Authority('client CA').pem
    manager = Manager(
        {'ref-www': _pair('www.example.com'),
         'ref-client': _pair('amphora-client')},
        {'ref-ca': ca, 'ref-member-ca': ca})
    state = _state({'client_ca_tls_container_ref': 'ref-ca',
                    'client_authentication': 'MANDATORY'},
                   {'tls_enabled': True, 'tls_container_ref': 'ref-client',
                    'ca_tls_container_ref': 'ref-member-ca'})

    result = _gather(state, manager)

    ca_name = result.tls_certs['ref-ca']
    assert result.files[ca_name] == ca
    pool = result.tls_certs[POOL]
    assert pool['ca_cert'] == f'{BASE}/{LB}/{ca_name}'
    assert b'PRIVATE KEY' in result.files[os.path.basename(
        pool['client_cert'])]
    text = haproxy_config.render(state, AMPHORA, {
        'haproxy_version': '2.6.12',
        'haproxy_base_path': '/run/amphora-agent'},
        tls_certs=result.tls_certs)
    assert f'ssl crt-list {BASE}/{LB}/{LISTENER}.pem' in text
    assert f'ca-file {BASE}/{LB}/{ca_name} verify required' in text
    assert f"ssl crt {pool['client_cert']}" in text
    assert f"ca-file {pool['ca_cert']}" in text


def test_a_ca_secret_that_is_no_bundle_is_named():
    with pytest.raises(tls_files.UnusableSecret,
                       match='client_ca_tls_container_ref ref-ca: not a '
                             'bundle of PEM X.509 certificates'):
        _gather(_state({'client_ca_tls_container_ref': 'ref-ca'}),
                Manager({'ref-www': _pair('www.example.com')},
                        {'ref-ca': b'garbage'}))


@pytest.mark.skipif(not shutil.which('haproxy'), reason='needs haproxy')
def test_haproxy_accepts_the_rendered_configuration_with_the_files(
        tmp_path):
    manager = Manager({'ref-www': _pair('www.example.com'),
                       'ref-api': _pair('api.example.com')})
    state = _state({'sni_container_refs': ['ref-api'],
                    'tls_versions': ['TLSv1.2', 'TLSv1.3'],
                    'alpn_protocols': ['h2', 'http/1.1'],
                    'hsts_max_age': 3600})
    result = tls_files.gather(octavia_models.load_balancer(state), manager,
                              str(tmp_path))
    os.makedirs(tmp_path / LB)
    for name, content in result.files.items():
        (tmp_path / LB / name).write_bytes(content)
    # haproxy's stats socket path has a length limit a tmp_path exceeds.
    text = haproxy_config.render(
        state, AMPHORA, {'haproxy_version': '2.6.12',
                         'haproxy_base_path': '/run'},
        tls_certs=result.tls_certs).replace(
        '/var/lib/octavia/certs', str(tmp_path))
    config = tmp_path / 'haproxy.cfg'
    config.write_text(text)

    check = subprocess.run(['haproxy', '-c', '-f', str(config)],
                           capture_output=True, text=True, check=False)

    assert check.returncode == 0, check.stdout + check.stderr
    assert 'alpn h2,http/1.1' in text
    assert 'Strict-Transport-Security' in text


def test_secret_contents_never_leave_a_provider_dict():
    state = _state({'default_tls_container_data': {'private_key': 'KEY'},
                    'sni_container_data': [{'private_key': 'KEY'}]},
                   {'tls_container_data': {'private_key': 'KEY'},
                    'ca_tls_container_data': 'CA'})

    clean = provider_secrets.without_secret_data(state)

    assert 'KEY' not in repr(clean) and "'CA'" not in repr(clean)
    assert clean['listeners'][0]['default_tls_container_ref'] == 'ref-www'
    assert 'default_tls_container_data' in state['listeners'][0]
