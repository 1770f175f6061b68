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
"""sriov-octavia-status: aggregate matching and each check's findings.

Cloud answers are stand-in objects; files, the jobboard port and the
persistence database are real.
"""

import json
import socket
import subprocess
import sys
import types

from oslo_upgradecheck import upgradecheck
import pytest

from sriov_octavia.preflight import checks
from sriov_octavia.preflight import placement
from sriov_octavia_testbed import certs
from tests.unreachable import closed_port

Code = upgradecheck.Code


def _aggregate(hosts, **metadata):
    return types.SimpleNamespace(hosts=hosts, metadata=metadata)


# Placement (AggregateInstanceExtraSpecsFilter semantics) --------------------

AGGREGATES = [
    _aggregate(['c1', 'c2'], **{'sriov-nic': 'true', 'vfs': '16'}),
    _aggregate(['c2'], **{'public-sriov': 'true'}),
    _aggregate(['c3'], **{'sriov-nic': 'false'}),
    _aggregate([], **{'members-sriov': 'true'}),
]


@pytest.mark.parametrize('specs, hosts', [
    ({'sriov-nic': 'true'}, ['c1', 'c2']),
    ({'aggregate_instance_extra_specs:sriov-nic': 'true'}, ['c1', 'c2']),
    ({'sriov-nic': 'true', 'public-sriov': 'true'}, ['c2']),
    # Other scopes belong to other filters.
    ({'hw_rng:allowed': 'True', 'sriov-nic': 'true'}, ['c1', 'c2']),
    ({'sriov-nic': '<or> false <or> maybe'}, ['c3']),
    ({'vfs': '>= 8'}, ['c1', 'c2']),
    ({'vfs': '>= 32'}, []),
    ({'sriov-nic': 's== true'}, ['c1', 'c2']),
    ({'sriov-nic': '<in> ru'}, ['c1', 'c2']),
    # An aggregate without hosts places nothing.
    ({'members-sriov': 'true'}, []),
    ({}, ['c1', 'c2', 'c3']),
])
def test_eligible_hosts(specs, hosts):
    assert placement.eligible_hosts(specs, AGGREGATES) == hosts


def test_relevant_specs_strip_the_scope():
    assert placement.relevant_specs({
        'aggregate_instance_extra_specs:a': '1', 'b': '2',
        'hw:cpu_policy': 'dedicated'}) == {'a': '1', 'b': '2'}


# Configuration checks -------------------------------------------------------

def _cmd(**groups):
    conf = types.SimpleNamespace(**{
        name: types.SimpleNamespace(**values)
        for name, values in groups.items()})
    return types.SimpleNamespace(conf=conf)


@pytest.mark.parametrize('drivers, code', [
    ('amphora:Amphora, amphora-sriov:SR-IOV', Code.SUCCESS),
    ({'amphora-sriov': 'SR-IOV'}, Code.SUCCESS),
    ('amphora:Amphora', Code.FAILURE),
    ('amphora-sriov-other:x', Code.FAILURE),
])
def test_provider_enabled(drivers, code):
    result = checks.provider_enabled(
        _cmd(api_settings={'enabled_provider_drivers': drivers}))
    assert result.code == code
    if code == Code.FAILURE:
        assert 'amphora-sriov:<description>' in result.details


def test_provider_agent_missing_is_a_warning_naming_the_worker():
    result = checks.provider_agent_enabled(
        _cmd(driver_agent={'enabled_provider_agents': []}))
    assert result.code == Code.WARNING
    assert 'sriov-octavia-worker' in result.details


def test_certificates_that_load(tmp_path):
    ca = certs.CertificateAuthority.create(str(tmp_path / 'ca.pem'))
    ca.issue_client(str(tmp_path / 'client.pem'), 'controller')
    result = checks.certificates(_cmd(haproxy_amphora={
        'client_cert': str(tmp_path / 'client.pem'),
        'server_ca': str(tmp_path / 'ca.pem')}))
    assert result.code == Code.SUCCESS, result.details


def test_certificates_missing(tmp_path):
    result = checks.certificates(_cmd(haproxy_amphora={
        'client_cert': str(tmp_path / 'missing.pem'),
        'server_ca': ''}))
    assert result.code == Code.FAILURE
    assert f'client_cert = {tmp_path / "missing.pem"}: no such file' in \
        result.details
    assert '[haproxy_amphora] server_ca is not set' in result.details


def test_certificates_that_are_not_pem(tmp_path):
    junk = tmp_path / 'junk.pem'
    junk.write_text('not a certificate\n')
    result = checks.certificates(_cmd(haproxy_amphora={
        'client_cert': str(junk), 'server_ca': str(junk)}))
    assert result.code == Code.FAILURE
    assert 'not a usable PEM file' in result.details


def _worker(**values):
    settings = {'jobboard_backend_driver': 'redis_taskflow_driver',
                'jobboard_backend_hosts': ['127.0.0.1'],
                'jobboard_backend_port': closed_port(),
                'jobboard_backend_username': None,
                'jobboard_backend_password': None,
                'jobboard_redis_backend_db': 0,
                'jobboard_redis_sentinel': None,
                'persistence_connection': 'sqlite://'}
    settings.update(values)
    return _cmd(task_flow=settings)


@pytest.mark.parametrize('driver', ['redis_taskflow_driver',
                                    'zookeeper_taskflow_driver'])
def test_jobboard_nobody_listening(driver):
    cmd = _worker(jobboard_backend_driver=driver)
    result = checks.jobboard(cmd)
    assert result.code == Code.FAILURE
    port = cmd.conf.task_flow.jobboard_backend_port
    assert f'127.0.0.1 port {port} does not answer' in result.details


def test_jobboard_tcp_service_answers():
    with socket.socket() as server:
        server.bind(('127.0.0.1', 0))
        server.listen()
        result = checks.jobboard(_worker(
            jobboard_backend_driver='etcd_taskflow_driver',
            jobboard_backend_port=server.getsockname()[1]))
    assert result.code == Code.SUCCESS


def test_persistence_sqlite(tmp_path):
    good = checks.persistence(_worker(
        persistence_connection=f'sqlite:///{tmp_path}/flows.sqlite'))
    assert good.code == Code.SUCCESS
    bad = checks.persistence(_worker(
        persistence_connection=f'sqlite:///{tmp_path}/none/flows.sqlite'))
    assert bad.code == Code.FAILURE
    assert 'persistence_connection cannot be opened' in bad.details


# Cloud checks ---------------------------------------------------------------

class FakeTarget:
    def __init__(self, conn, compute_flavor='fl', image_tag='amphora',
                 networks=(), profile=None):
        self.conn = conn
        self._compute_flavor = compute_flavor
        self._image_tag = image_tag
        self._networks = list(networks)
        self._profile = profile
        self.placement = None

    def connection(self):
        return self.conn

    def profile(self):
        if isinstance(self._profile, Exception):
            raise self._profile
        return self._profile

    def compute_flavor(self):
        return self._compute_flavor

    def image_tag(self):
        return self._image_tag

    def networks(self):
        return self._networks


def _agent(host, mappings, alive=True):
    return types.SimpleNamespace(host=host, is_alive=alive,
                                 is_admin_state_up=True,
                                 configuration={'device_mappings': mappings})


def _conn(extra_specs, aggregates=AGGREGATES, agents=(), networks=None,
          images=()):
    flavor = types.SimpleNamespace(name='fl', id='fl-id',
                                   extra_specs=extra_specs)
    networks = networks or {}
    compute = types.SimpleNamespace(
        get_flavor=lambda name: flavor,
        aggregates=lambda: aggregates)
    network = types.SimpleNamespace(
        agents=lambda agent_type: list(agents),
        find_network=lambda name, ignore_missing: networks.get(name))
    image = types.SimpleNamespace(images=lambda **query: list(images))
    return types.SimpleNamespace(compute=compute, network=network,
                                 image=image)


def _preflight(conn, **target):
    cmd = _cmd(controller_worker={'amp_image_owner_id': None})
    cmd.target = FakeTarget(conn, **target)
    return cmd


def _network(name, physnet, network_type='vlan'):
    return types.SimpleNamespace(name=name, provider_physical_network=physnet,
                                 provider_network_type=network_type)


def test_placement_success_names_hosts():
    result = checks.compute_flavor_placement(
        _preflight(_conn({'sriov-nic': 'true'})))
    assert result.code == Code.SUCCESS
    assert 'c1, c2' in result.details


def test_placement_without_matching_aggregate():
    result = checks.compute_flavor_placement(
        _preflight(_conn({'public-sriov': 'true', 'sriov-nic': 'false'})))
    assert result.code == Code.FAILURE
    assert ('openstack aggregate set --property public-sriov=true '
            '--property sriov-nic=false <aggregate>') in result.details


def test_placement_of_a_flavor_without_specs_warns():
    result = checks.compute_flavor_placement(_preflight(_conn({})))
    assert result.code == Code.WARNING


def test_placement_without_compute_flavor():
    result = checks.compute_flavor_placement(
        _preflight(_conn({}), compute_flavor=None))
    assert result.code == Code.FAILURE
    assert 'amp_flavor_id' in result.details


def test_capacity_checks_agents_per_physnet():
    conn = _conn({'sriov-nic': 'true'},
                 agents=[_agent('c1', {'sriovnet': ['ens1f0']}),
                         _agent('c2', {'sriovnet': ['ens1f0']}, alive=False),
                         _agent('c9', {'othernet': ['ens2f0']})],
                 networks={'vip': _network('vip', 'sriovnet'),
                           'mgmt': _network('mgmt', 'physnet1', 'flat'),
                           'tenant': _network('tenant', None, 'vxlan')})
    good = checks.sriov_capacity(_preflight(conn,
                                            networks=[('VIP', 'vip')]))
    assert good.code == Code.SUCCESS
    assert 'VIP network vip (sriovnet) on c1' in good.details
    bad = checks.sriov_capacity(_preflight(conn, networks=[
        ('VIP', 'vip'), ('member', 'mgmt'), ('member', 'tenant'),
        ('member', 'gone')]))
    assert bad.code == Code.FAILURE
    assert 'member network mgmt is on physical network physnet1' in \
        bad.details
    assert 'member network tenant has no physical network' in bad.details
    assert 'member network gone does not exist' in bad.details
    assert 'VIP network' not in bad.details


def test_capacity_on_hosts_the_flavor_does_not_reach():
    conn = _conn({'public-sriov': 'true'},
                 agents=[_agent('c1', {'sriovnet': ['ens1f0']})],
                 networks={'vip': _network('vip', 'sriovnet')})
    result = checks.sriov_capacity(_preflight(conn,
                                              networks=[('VIP', 'vip')]))
    assert result.code == Code.FAILURE
    assert 'has VFs on c1, none of which the compute flavor places' in \
        result.details


def test_capacity_without_networks_warns():
    result = checks.sriov_capacity(_preflight(_conn({})))
    assert result.code == Code.WARNING
    assert '--vip-network' in result.details


def test_image_tag():
    image = types.SimpleNamespace(name='amp', id='i1', created_at='2026')
    good = checks.amphora_image(_preflight(_conn({}, images=[image])))
    assert good.code == Code.SUCCESS
    bad = checks.amphora_image(_preflight(_conn({})))
    assert bad.code == Code.FAILURE
    assert 'openstack image set --tag amphora' in bad.details


@pytest.mark.parametrize('profile, code, text', [
    (None, Code.SUCCESS, 'no --flavor'),
    (('p', 'amphora-sriov', {'sriov_vip': True}), Code.SUCCESS,
     'enables sriov_vip'),
    (('p', 'amphora', {'sriov_vip': True}), Code.FAILURE,
     'is for provider amphora'),
    (('p', 'amphora-sriov', {'sriov_vip': 'yes'}), Code.FAILURE,
     'sriov_vip: must be true or false'),
    (('p', 'amphora-sriov', {'compute_flavor': 'x'}), Code.WARNING,
     'neither sriov_vip nor allow_member_sriov'),
    (LookupError('no Octavia flavor profile'), Code.FAILURE,
     'no Octavia flavor profile'),
])
def test_flavor_profile(profile, code, text):
    result = checks.flavor_profile(_preflight(_conn({}), profile=profile))
    assert result.code == code
    assert text in result.details


# The command line -----------------------------------------------------------

def _failing_command(tmp_path, conf_text, *args):
    """The status command's checks, by name, on a configuration it fails."""
    conf = tmp_path / 'octavia.conf'
    conf.write_text(conf_text)
    done = subprocess.run(
        [sys.executable, '-m', 'sriov_octavia.cmd.status', '--config-file',
         str(conf), *args, '--json'],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == Code.FAILURE, done.stderr
    return {check['check']: check for check in
            json.loads(done.stdout.strip().splitlines()[-1])['checks']}


def test_upgrade_check_command_line(tmp_path):
    checks = _failing_command(
        tmp_path,
        '[api_settings]\nenabled_provider_drivers = amphora:Amphora\n'
        '[driver_agent]\nenabled_provider_agents = amphora-sriov\n'
        f'[haproxy_amphora]\nclient_cert = {tmp_path}/c.pem\n'
        f'server_ca = {tmp_path}/ca.pem\n'
        f'[task_flow]\njobboard_backend_port = {closed_port()}\n'
        f'persistence_connection = sqlite:///{tmp_path}/p.sqlite\n',
        'upgrade', 'check')
    results = {name: check['result'] for name, check in checks.items()}
    assert results == {'Provider driver enabled': Code.FAILURE,
                       'Provider agent enabled': Code.SUCCESS,
                       'Amphora agent certificates': Code.FAILURE,
                       'Jobboard': Code.FAILURE,
                       'Flow persistence': Code.SUCCESS}


def test_preflight_with_unreachable_cloud(tmp_path):
    unreachable = f'http://127.0.0.1:{closed_port()}'
    checks = _failing_command(
        tmp_path,
        '[service_auth]\nauth_type = none\n'
        f'[api_settings]\napi_base_uri = {unreachable}\n'
        f'[neutron]\nendpoint_override = {unreachable}/\n'
        f'[nova]\nendpoint_override = {unreachable}/compute/v2.1\n'
        f'[glance]\nendpoint_override = {unreachable}/image\n',
        'preflight', '--flavor', 'sriov', '--image-tag', 't',
        '--vip-network', 'n')
    details = {name: check['details'] for name, check in checks.items()}
    # No traceback: every check reports, those asking the cloud say which
    # part of octavia.conf to look at.
    for check, where in (('Flavor profile', '[api_settings] api_base_uri'),
                         ('SR-IOV capacity', '[neutron]'),
                         ('Amphora image', '[glance]')):
        assert '[service_auth]' in details[check]
        assert where in details[check], details[check]


def test_preflight_without_credentials(tmp_path):
    checks = _failing_command(
        tmp_path, '[DEFAULT]\n', 'preflight', '--compute-flavor', 'f',
        '--image-tag', 't', '--vip-network', 'n')
    details = {name: check['details'] for name, check in checks.items()}
    for check in ('Compute flavor placement', 'SR-IOV capacity',
                  'Amphora image'):
        assert '[service_auth] auth_type is not set' in details[check]
