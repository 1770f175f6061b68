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
"""octavia_db's lookups against a real Octavia database (SQLite).

They run in a child process (driver_db_probe): Octavia configures its
database engine once per process, and this one must not keep it.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.functional.sriov_octavia import driver_db_probe as probe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    db_file = tmp_path_factory.mktemp('octavia-db') / 'octavia.sqlite'
    result = subprocess.run(
        [sys.executable, '-W', 'ignore', '-m',
         'tests.functional.sriov_octavia.driver_db_probe', str(db_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_parents_lead_to_the_load_balancer(report):
    assert report['pool'] == probe.LB
    assert report['listener'] == [probe.LB, 'HTTP']
    assert report['l7policy'] == probe.LB


def test_flavor_and_zone_metadata_of_the_load_balancer(report):
    assert report['flavor'] == {'sriov_vip': True,
                                'allow_member_sriov': True}
    assert report['zone'] == {'compute_zone': 'az-sriov'}


def test_provider_load_balancer_for_failover(report):
    lb = report['lb']
    assert lb['loadbalancer_id'] == probe.LB
    assert lb['vip_address'] == '203.0.113.9'
    assert [listener['listener_id'] for listener in lb['listeners']] == [
        probe.LISTENER]
    assert [pool['pool_id'] for pool in lb['pools']] == [probe.POOL]
    # The jobboard carries no TLS secrets.
    assert 'default_tls_container_data' not in lb['listeners'][0]


def test_missing_objects_are_named(report):
    assert report['missing'] == {
        'pool': f'pool {probe.MISSING} not found',
        'listener': f'listener {probe.MISSING} not found',
        'l7policy': f'L7 policy {probe.MISSING} not found',
        'lb': f'load balancer {probe.MISSING} not found',
        'provider_lb': f'load balancer {probe.MISSING} not found'}
