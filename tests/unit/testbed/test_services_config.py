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
from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import inventory
from sriov_octavia_testbed.services import inifile
from sriov_octavia_testbed.services import neutron
from sriov_octavia_testbed.services import octavia


def test_ini_rendering_keeps_empty_values():
    text = inifile.render({'DEFAULT': {'debug': True, 'workers': 1},
                           'database': {'pool_timeout': None,
                                        'hosts': ['a', 'b']}})
    assert text.splitlines() == [
        '[DEFAULT]', 'debug = true', 'workers = 1', '',
        '[database]', 'pool_timeout =', 'hosts = a,b']


def test_sriov_hosts_get_a_nic_switch_agent_every_host_ovs():
    records = neutron.agent_records(inventory.DEFAULT_INVENTORY)
    nic = {r['host']: r['configurations']['device_mappings']
           for r in records if r['agent_type'] == neutron.NIC_SWITCH_AGENT}
    assert nic == {'compute-1': {'sriovnet': ['ens1f0', 'ens1f1']},
                   'compute-2': {'sriovnet': ['ens1f0', 'ens1f1']}}
    ovs = {r['host']: r['configurations']['bridge_mappings']
           for r in records if r['agent_type'] == neutron.OVS_AGENT}
    assert sorted(ovs) == ['compute-1', 'compute-2', 'compute-3']
    assert set(ovs['compute-3']) == set(inventory.PHYSNETS)


def test_agent_ids_are_stable_across_ups():
    first = neutron.agent_records(inventory.DEFAULT_INVENTORY)
    second = neutron.agent_records(inventory.DEFAULT_INVENTORY)
    assert [r['id'] for r in first] == [r['id'] for r in second]
    assert len({r['id'] for r in first}) == len(first)


def test_agents_stay_alive_within_neutrons_limit():
    # Neutron rejects agent_down_time above 2^31 milliseconds.
    assert 24 * 3600 < neutron.AGENT_DOWN_TIME <= 2 ** 31 // 1000


def test_octavia_and_worker_share_sockets_and_cloud(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    conf = octavia.octavia_conf(testbed)
    for kind in octavia.SOCKETS:
        path = conf['driver_agent'][f'{kind}_socket_path']
        assert path == conf['sriov_worker'][f'{kind}_socket_path']
        assert path.startswith(str(tmp_path))
        # AF_UNIX paths are limited to 107 bytes.
        assert len(path) < 108
    assert conf['task_flow']['jobboard_backend_port'] == 29379
    # The controller reaches the services as the CLI does (clouds.yaml),
    # through Octavia's own options.
    cli = clouds.cloud(testbed)
    assert 'sriov_octavia' not in conf
    assert conf['service_auth'] == {'auth_type': cli['auth_type']}
    assert {section: conf[section]['endpoint_override']
            for section in ('neutron', 'nova', 'glance')} == {
        'neutron': cli['network_endpoint_override'],
        'nova': cli['compute_endpoint_override'],
        'glance': cli['image_endpoint_override']}
    assert conf['api_settings']['default_provider_driver'] == (
        octavia.PROVIDER)
    assert conf['database']['pool_timeout'] is None


def test_octavia_conf_names_what_the_seed_made(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    conf = octavia.octavia_conf(testbed, {
        'amp_image_tag': 'amphora', 'amp_flavor_id': 'f-1',
        'amp_boot_network_list': ['n-1'], 'agent_client_cert': '/c.pem',
        'agent_ca_cert': '/ca.pem'})
    worker = conf['controller_worker']
    assert (worker['amp_image_tag'], worker['amp_flavor_id'],
            worker['amp_boot_network_list']) == ('amphora', 'f-1', ['n-1'])
    assert conf['haproxy_amphora'] == {'client_cert': '/c.pem',
                                       'server_ca': '/ca.pem',
                                       'default_connection_limit': 2000}
    # Without a seeded cloud Octavia's own defaults stay in force.
    bare = octavia.octavia_conf(testbed)
    assert 'amp_flavor_id' not in bare['controller_worker']
    assert bare['haproxy_amphora'] == {'default_connection_limit': 2000}
    assert inifile.render(conf).count('amp_boot_network_list = n-1') == 1
