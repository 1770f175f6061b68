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
"""sriov-octavia-status against a real testbed: a good and broken setups.

The command runs as an operator runs it, in its own process with the
testbed's octavia.conf, and its JSON output is what is checked.
"""

import json
import subprocess
import sys
import uuid

import pytest

from sriov_octavia_testbed import seed

pytestmark = pytest.mark.timeout(600)

PROVIDER = 'amphora-sriov'


@pytest.fixture(scope='module')
def testbed(testbed_factory):
    return testbed_factory(port_base=26000, prefix='tst')


@pytest.fixture(scope='module')
def conn(testbed):
    connection = testbed.connect()
    yield connection
    connection.close()


def _name(what):
    return f'tst-{what}-{uuid.uuid4().hex[:8]}'


def status(testbed, *args, extra_conf=None):
    """Run the command; return (exit code, {check name: (code, details)})."""
    argv = [sys.executable, '-m', 'sriov_octavia.cmd.status',
            '--config-file', testbed.octavia_conf]
    if extra_conf:
        argv += ['--config-file', extra_conf]
    done = subprocess.run(argv + list(args) + ['--json'],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    output = json.loads(done.stdout.strip().splitlines()[-1])
    return done.returncode, {check['check']: (check['result'],
                                              check['details'])
                             for check in output['checks']}


def failure_details(code, checks, name):
    """The details of check ``name``, which made the command fail."""
    assert code == 2, checks
    result, details = checks[name]
    assert result == 2, details
    return details


@pytest.fixture(scope='module')
def sriov_profile(conn):
    flavor = conn.compute.find_flavor(seed.SRIOV_FLAVOR,
                                      ignore_missing=False)
    profile = conn.load_balancer.create_flavor_profile(
        name=_name('profile'), provider_name=PROVIDER,
        flavor_data=json.dumps({'compute_flavor': flavor.id,
                                'sriov_vip': True,
                                'allow_member_sriov': True,
                                'amp_image_tag': seed.AMPHORA_IMAGE_TAG}))
    yield profile
    conn.load_balancer.delete_flavor_profile(profile)


def test_good_setup_passes_every_check(testbed, sriov_profile):
    code, checks = status(testbed, 'preflight',
                          '--flavor-profile', sriov_profile.name,
                          '--vip-network', 'vip-net',
                          '--member-network', 'member-net')
    assert code == 0, checks
    assert all(result == 0 for result, _ in checks.values()), checks
    assert set(checks) >= {'Compute flavor placement', 'SR-IOV capacity',
                           'Amphora image', 'Amphora agent certificates',
                           'Jobboard', 'Flavor profile'}
    placement = checks['Compute flavor placement'][1]
    # compute-3 has no VFs and is not in the SR-IOV aggregate.
    assert 'compute-1' in placement and 'compute-3' not in placement


def test_octavia_flavor_leads_to_its_profile(testbed, conn, sriov_profile):
    flavor = conn.load_balancer.create_flavor(
        name=_name('flavor'), flavor_profile_id=sriov_profile.id,
        enabled=True)
    try:
        code, checks = status(testbed, 'preflight', '--flavor', flavor.name,
                              '--vip-network', 'vip-net')
    finally:
        conn.load_balancer.delete_flavor(flavor)
    assert code == 0, checks
    assert sriov_profile.name in checks['Flavor profile'][1]


def test_upgrade_check_passes_on_good_configuration(testbed):
    code, checks = status(testbed, 'upgrade', 'check')
    assert code == 0, checks
    assert 'Compute flavor placement' not in checks


def test_flavor_extra_spec_matching_no_aggregate(testbed, conn):
    flavor = conn.compute.create_flavor(name=_name('flavor'), vcpus=1,
                                        ram=1024, disk=2)
    conn.compute.create_flavor_extra_specs(flavor,
                                           {'public-sriov': 'true'})
    try:
        code, checks = status(testbed, 'preflight', '--compute-flavor',
                              flavor.id, '--vip-network', 'vip-net')
    finally:
        conn.compute.delete_flavor(flavor)
    details = failure_details(code, checks, 'Compute flavor placement')
    assert 'public-sriov' in details
    assert 'openstack aggregate set --property public-sriov=true' in details
    # The other checks still pass: the finding points at the one problem.
    assert checks['Amphora image'][0] == 0
    assert checks['SR-IOV capacity'][0] == 0


def test_missing_image_tag(testbed, sriov_profile):
    code, checks = status(testbed, 'preflight',
                          '--flavor-profile', sriov_profile.name,
                          '--vip-network', 'vip-net',
                          '--image-tag', 'tst-no-such-tag')
    details = failure_details(code, checks, 'Amphora image')
    assert 'tst-no-such-tag' in details
    assert 'openstack image set --tag tst-no-such-tag' in details
    assert checks['Compute flavor placement'][0] == 0


def test_missing_certificate_file(testbed, sriov_profile, tmp_path):
    missing = tmp_path / 'no-such-client.pem'
    extra = tmp_path / 'broken.conf'
    extra.write_text(f'[haproxy_amphora]\nclient_cert = {missing}\n')
    for args in (('upgrade', 'check'),
                 ('preflight', '--flavor-profile', sriov_profile.name,
                  '--vip-network', 'vip-net')):
        code, checks = status(testbed, *args, extra_conf=str(extra))
        details = failure_details(code, checks, 'Amphora agent certificates')
        assert f'[haproxy_amphora] client_cert = {missing}: no such file' \
            in details


def test_physnet_without_sriov_agent(testbed, conn, sriov_profile):
    # The management network's physical network has no NIC Switch agent.
    code, checks = status(testbed, 'preflight',
                          '--flavor-profile', sriov_profile.name,
                          '--vip-network', 'vip-net',
                          '--member-network', seed.MGMT_NETWORK)
    details = failure_details(code, checks, 'SR-IOV capacity')
    assert f'member network {seed.MGMT_NETWORK}' in details
    assert 'physnet1' in details
    assert 'physical_device_mappings' in details
    assert 'VIP network' not in details


def test_jobboard_down(testbed, sriov_profile, tmp_path):
    extra = tmp_path / 'jobboard.conf'
    # A loopback port of this test's range where nothing listens.
    extra.write_text('[task_flow]\njobboard_backend_port = 44999\n')
    code, checks = status(testbed, 'upgrade', 'check', extra_conf=str(extra))
    details = failure_details(code, checks, 'Jobboard')
    assert '127.0.0.1 port 44999 does not answer' in details
