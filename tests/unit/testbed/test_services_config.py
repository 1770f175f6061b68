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
import configparser
import os
import stat

from cryptography import fernet

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import identity
from sriov_octavia_testbed import inventory
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed.services import barbican
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
    # through Octavia's own options; Neutron and Nova need no token, so
    # octavia.conf alone has no credentials (service_auth_conf adds them).
    cli = clouds.cloud(testbed)
    assert 'sriov_octavia' not in conf
    assert conf['service_auth'] == {'auth_type': 'none'}
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
                                       'default_connection_limit': 1000}
    # Without a seeded cloud Octavia's own defaults stay in force.
    bare = octavia.octavia_conf(testbed)
    assert 'amp_flavor_id' not in bare['controller_worker']
    assert bare['haproxy_amphora'] == {'default_connection_limit': 1000}
    assert inifile.render(conf).count('amp_boot_network_list = n-1') == 1


def test_octavia_reads_certificates_from_barbican_when_it_runs(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    with_barbican = octavia.octavia_conf(testbed, {'key_manager': True,
                                                   'agent_ca_cert': '/ca'})
    assert with_barbican['certificates'] == {
        'ca_certificate': '/ca', 'cert_generator': 'local_cert_generator',
        'cert_manager': 'barbican_cert_manager',
        'barbican_auth': 'barbican_acl_auth', 'region_name': 'RegionOne',
        'endpoint_type': 'public'}
    # No endpoint: Barbican is found in the service user's catalog.
    assert 'endpoint' not in with_barbican['certificates']
    bare = octavia.octavia_conf(testbed)
    assert bare['certificates']['cert_manager'] == 'noop_cert_manager'
    assert 'barbican_auth' not in bare['certificates']


def test_octavia_is_its_service_user_of_the_identity_stand_in(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    conf = octavia.service_auth_conf(testbed)
    assert conf == {'service_auth': {
        'auth_type': 'password',
        'auth_url': clouds.cloud(testbed)['auth']['auth_url'],
        'username': identity.OCTAVIA_USER, 'password': identity.PASSWORD,
        'project_name': 'service', 'user_domain_name': 'Default',
        'project_domain_name': 'Default', 'region_name': 'RegionOne'}}
    assert octavia.service_auth_conf(testbed, authenticated=False) == {
        'service_auth': {'auth_type': 'none'}}
    # Read after octavia.conf, whose [service_auth] it completes.
    assert testbed.octavia_conf_files == [
        testbed.octavia_conf, testbed.octavia_service_auth_conf]


def test_octavia_processes_read_both_files(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    argv = octavia.DriverAgent(testbed).argv()
    assert [argv[i + 1] for i, arg in enumerate(argv)
            if arg == '--config-file'] == testbed.octavia_conf_files
    env = octavia.OctaviaApi(testbed).env()
    assert env[octavia.CONFIG_FILE_ENV].split(os.pathsep) == (
        testbed.octavia_conf_files)


def test_write_conf_writes_the_service_user_when_identity_runs(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    os.makedirs(testbed.etc_dir)
    octavia.write_conf(testbed, {'identity': True, 'key_manager': True})
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(testbed.octavia_conf_files)
    assert parser.get('service_auth', 'auth_type') == 'password'
    assert parser.get('certificates', 'cert_manager') == (
        'barbican_cert_manager')
    # octavia.conf alone: no Keystone, as tests copying from it expect.
    alone = configparser.ConfigParser(interpolation=None)
    alone.read(testbed.octavia_conf)
    assert alone.get('service_auth', 'auth_type') == 'none'


def test_barbican_validates_tokens_as_its_service_user(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=29000)
    service = barbican.Barbican(testbed)
    conf = service.barbican_conf('a-kek')
    authtoken = conf['keystone_authtoken']
    assert authtoken['auth_type'] == 'password'
    assert authtoken['username'] == identity.BARBICAN_USER
    assert authtoken['project_name'] == 'service'
    assert authtoken['auth_url'] == 'http://127.0.0.1:29701/v3'
    assert conf['simple_crypto_plugin'] == {'kek': 'a-kek'}
    assert conf['crypto'] == {'enabled_crypto_plugins': 'simple_crypto'}
    assert conf['database']['connection'] == 'sqlite:///' + service.db_file
    assert service.db_file.startswith(str(tmp_path))
    assert conf['DEFAULT']['host_href'] == 'http://127.0.0.1:29311'
    assert service.requires == ('identity',)


def test_barbican_runs_its_installed_paste_pipeline(tmp_path):
    service = barbican.Barbican(config.Testbed(str(tmp_path)))
    uwsgi = service.uwsgi_ini()['uwsgi']
    assert 'module' not in uwsgi
    assert uwsgi['paste'] == 'config:' + service.paste_file
    assert uwsgi['http-socket'] == '127.0.0.1:19311'
    # Barbican finds its configuration as ~/barbican.conf.
    assert os.path.join(service.env()['HOME'], 'barbican.conf') == (
        service.conf_file)


def test_the_kek_is_made_once_and_kept(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    os.makedirs(testbed.path('barbican'))
    service = barbican.Barbican(testbed)
    kek = service.kek()
    # A Fernet key, as simple_crypto wants it.
    fernet.Fernet(kek.encode())
    assert service.kek() == kek
    assert stat.S_IMODE(os.stat(service.kek_file).st_mode) == 0o600
    assert barbican.Barbican(testbed).kek() == kek


def test_barbican_is_not_started_without_the_identity_stand_in(tmp_path):
    testbed = config.Testbed(str(tmp_path))
    names = [s.name for s in lifecycle._wanted(testbed, skip=('identity',))]
    assert 'barbican' not in names
    assert 'neutron' in names
    if barbican.Barbican(testbed).available():
        assert 'barbican' in [s.name for s in lifecycle._wanted(testbed, ())]
