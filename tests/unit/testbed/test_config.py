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
import pytest

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config


def test_ports_follow_the_port_base():
    default = config.Testbed('/tmp/x')
    assert [default.port(s) for s in ('neutron', 'octavia-api', 'nova',
                                      'redis', 'barbican')] == [
        19696, 19700, 19774, 19379, 19311]
    other = config.Testbed('/tmp/x', port_base=29000)
    assert other.url('neutron') == 'http://127.0.0.1:29696'


def test_instances_get_distinct_management_subnets():
    assert config.Testbed('/x').mgmt_cidr == '198.18.19.0/24'
    assert config.Testbed('/x', port_base=29000).mgmt_cidr == '198.18.29.0/24'


@pytest.mark.parametrize('prefix', ['', 'toolong1', 'Up', 'a-b'])
def test_prefix_must_fit_interface_names(prefix):
    with pytest.raises(ValueError):
        config.Testbed('/x', prefix=prefix)


def test_down_and_status_find_the_settings_of_up(tmp_path):
    config.Testbed(str(tmp_path), port_base=31000, prefix='abc').save()
    loaded = config.Testbed.load(str(tmp_path))
    assert (loaded.port_base, loaded.prefix) == (31000, 'abc')
    overridden = config.Testbed.load(str(tmp_path), prefix='xyz')
    assert (overridden.port_base, overridden.prefix) == (31000, 'xyz')


def test_defaults_without_recorded_settings(tmp_path):
    loaded = config.Testbed.load(str(tmp_path / 'new'))
    assert (loaded.port_base, loaded.prefix) == (
        config.DEFAULT_PORT_BASE, config.DEFAULT_PREFIX)


def test_clouds_yaml_names_every_endpoint(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    testbed.save()
    clouds.write(testbed)
    conn = clouds.connect(testbed)
    region = conn.config
    assert region.get_endpoint('load-balancer') == 'http://127.0.0.1:29700'
    # The root URL: clients discover /v2.0 themselves.
    assert region.get_endpoint('network') == 'http://127.0.0.1:29696/'
    assert region.get_endpoint('compute') == (
        'http://127.0.0.1:29774/compute/v2.1')
    assert region.get_endpoint('image') == 'http://127.0.0.1:29774/image'
    assert region.get_endpoint('identity') == 'http://127.0.0.1:29701/v3'
    # The user logs in at the identity stand-in; Barbican is in its catalog
    # only, as its client finds it nowhere else.
    assert region.config['auth_type'] == 'password'
    assert region.config['auth']['auth_url'] == 'http://127.0.0.1:29701/v3'
    assert region.config['auth']['username'] == 'admin'
    assert region.config['auth']['project_name'] == 'fake_project_id'
    assert region.get_endpoint('key-manager') is None


def test_without_the_identity_stand_in_no_login(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    entry = clouds.cloud(testbed, authenticated=False)
    assert entry['auth_type'] == 'none'
    assert 'auth' not in entry
    assert entry['network_endpoint_override'] == 'http://127.0.0.1:29696/'


def test_the_catalog_lists_the_endpoints_the_cli_is_given(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    entry = clouds.cloud(testbed)
    catalog = {service['type']: service for service in clouds.catalog(
        testbed)}
    for service_type in ('identity', 'network', 'load-balancer', 'compute',
                         'image'):
        override = service_type.replace('-', '_') + '_endpoint_override'
        urls = {e['url'] for e in catalog[service_type]['endpoints']}
        assert urls == {entry[override]}, service_type
    barbican = catalog['key-manager']
    assert barbican['name'] == 'barbican'
    assert sorted((e['interface'], e['region'], e['url'])
                  for e in barbican['endpoints']) == [
        (interface, 'RegionOne', 'http://127.0.0.1:29311')
        for interface in ('admin', 'internal', 'public')]
    # IDs are stable: the same catalog after every restart.
    assert clouds.catalog(testbed) == clouds.catalog(testbed)
