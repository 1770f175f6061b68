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
"""``up`` / ``status`` / ``down`` against the real services.

One instance (ports 29xxx, prefix "ttb") goes through its whole life in
this module: the tests run in file order and the last one takes it down.
"""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid

from octavia_lib.api.drivers import driver_lib
from pyroute2 import IPRoute
from pyroute2 import netns
import pytest

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import octavia

PORT_BASE = 29000
PREFIX = 'ttb'
OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')

pytestmark = [pytest.mark.services, pytest.mark.netns,
              pytest.mark.timeout(300)]


def _prefixed_kernel_objects():
    with IPRoute() as ipr:
        links = [link.get_attr('IFLA_IFNAME') for link in ipr.get_links()]
    names = list(netns.listnetns()) + links
    return sorted(n for n in names if n.startswith(f'{PREFIX}-'))


@pytest.fixture(scope='module')
def testbed(tmp_path_factory):
    assert not _prefixed_kernel_objects(), 'left over from an earlier run'
    instance = config.Testbed(str(tmp_path_factory.mktemp('tb')),
                              port_base=PORT_BASE, prefix=PREFIX)
    lifecycle.up(instance)
    yield instance
    lifecycle.down(instance)


@pytest.fixture(scope='module')
def conn(testbed):
    connection = clouds.connect(testbed)
    yield connection
    connection.close()


@pytest.fixture(scope='module')
def first_pids(testbed):
    return {name: pid for name, pid, _, _ in lifecycle.status(testbed)}


def openstack(testbed, *args):
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=testbed.clouds_yaml,
               OS_CLOUD=config.CLOUD_NAME)
    result = subprocess.run([OPENSTACK, *args, '-f', 'json'], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _names(rows):
    return sorted(row['Name'] for row in rows)


def test_every_service_is_alive(testbed, first_pids):
    rows = lifecycle.status(testbed)
    assert {name for name, _, _, _ in rows} == {
        'redis', 'identity', 'neutron', 'barbican', 'octavia-api',
        'octavia-driver-agent', 'nova'}
    for name, pid, port, state in rows:
        if state == 'not installed':
            continue
        assert state == 'alive', name
        assert pid == first_pids[name]
        if port:
            assert base.tcp_answers(config.HOST, port), name
            assert port == PORT_BASE + config.PORT_OFFSETS[name]


def test_status_command_shows_what_runs(testbed):
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable),
                      'sriov-octavia-testbed'),
         'status', '--state-dir', testbed.state_dir],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    states = {line.split()[0]: line.split()[-1]
              for line in result.stdout.splitlines()[2:-1]}
    assert states['neutron'] == 'alive'
    assert states['octavia-api'] == 'alive'
    assert 'OS_CLIENT_CONFIG_FILE=' + testbed.clouds_yaml in result.stdout


def test_every_service_logs_into_the_state_dir(testbed):
    for name, _, _, state in lifecycle.status(testbed):
        if state == 'alive':
            log = os.path.join(testbed.state_dir, 'logs', f'{name}.log')
            assert os.path.getsize(log) > 0, name


def test_neutron_binds_direct_ports_on_sriov_hosts(conn):
    vip_net = conn.network.find_network('vip-net')
    direct = conn.network.create_port(
        network_id=vip_net.id, name='ttb-direct',
        binding_vnic_type='direct', binding_host_id='compute-1',
        binding_profile={'pci_slot': '0000:81:10.1',
                         'physical_network': 'sriovnet',
                         'pci_vendor_info': '8086:154c'})
    # No SR-IOV agent on compute-3: Neutron must refuse there.
    refused = conn.network.create_port(
        network_id=vip_net.id, binding_vnic_type='direct',
        binding_host_id='compute-3')
    try:
        assert direct.binding_vif_type == 'hw_veb'
        assert direct.binding_vif_details['port_filter'] is False
        shown = conn.network.get_port(direct.id)
        assert shown.binding_vnic_type == 'direct'
        assert shown.binding_host_id == 'compute-1'
        assert {ip['subnet_id'] for ip in shown.fixed_ips} == {
            s.id for s in conn.network.subnets(network_id=vip_net.id)}
        assert refused.binding_vif_type == 'binding_failed'
    finally:
        conn.network.delete_port(direct)
        conn.network.delete_port(refused)


def test_neutron_binds_normal_ports(conn):
    mgmt = conn.network.find_network('lb-mgmt-net')
    port = conn.network.create_port(network_id=mgmt.id,
                                    binding_host_id='compute-3')
    try:
        assert port.binding_vif_type == 'ovs'
        assert port.fixed_ips[0]['ip_address'].startswith('198.18.29.')
    finally:
        conn.network.delete_port(port)


def test_octavia_offers_the_provider(conn):
    providers = {p.name: p.description for p in conn.load_balancer.providers()}
    assert 'amphora-sriov' in providers


def _queued_behind_a_writer(testbed, call):
    """The result of ``call``, which must wait for the write lock.

    This test holds the write lock of Octavia's database meanwhile.
    """
    outcome = {}

    def run():
        try:
            outcome['result'] = call()
        except Exception as e:
            outcome['error'] = e

    with contextlib.closing(sqlite3.connect(
            octavia.db_file(testbed), isolation_level=None)) as db:
        db.execute('BEGIN IMMEDIATE')
        caller = threading.Thread(target=run)
        caller.start()
        caller.join(1.0)
        assert caller.is_alive(), outcome
        db.execute('COMMIT')
    caller.join(60)
    assert 'error' not in outcome, outcome['error']
    return outcome['result']


def test_the_api_waits_for_a_writer_instead_of_failing(testbed, conn):
    # Setting a quota reads the row, then writes it: on plain SQLite that
    # fails at once with "database is locked" (HTTP 500) while the
    # driver-agent holds the write lock (testbed.sqlite_locking).
    quota = _queued_behind_a_writer(
        testbed, lambda: conn.load_balancer.update_quota(
            'quota-probe-project', load_balancers=7))
    assert quota.load_balancers == 7
    conn.load_balancer.delete_quota('quota-probe-project')


def test_the_driver_agent_waits_for_a_writer(testbed):
    # Its transactions take the write lock when they begin, reads too, so
    # none of its status updates can fail the way the API's did.
    library = driver_lib.DriverLibrary(
        status_socket=testbed.socket_path('status'),
        stats_socket=testbed.socket_path('stats'),
        get_socket=testbed.socket_path('get'))
    assert _queued_behind_a_writer(
        testbed, lambda: library.get_loadbalancer(str(uuid.uuid4()))) is None


def test_the_cli_works_with_the_generated_clouds_yaml(testbed):
    # Names resolve through the network endpoint, without Keystone.
    subnet = openstack(testbed, 'subnet', 'show', 'vip-subnet')
    assert subnet['cidr'] == '203.0.113.0/24'
    providers = openstack(testbed, 'loadbalancer', 'provider', 'list')
    assert 'amphora-sriov' in [p['name'] for p in providers]
    # --project options resolve through the identity stand-in, which has
    # the testbed's project and the services' own.
    assert [p['Name'] for p in openstack(testbed, 'project', 'list')] == [
        'fake_project_id', 'service']


def test_the_compute_emulator_is_seeded(testbed, conn):
    if ('nova', 'alive') not in {(n, s) for n, _, _, s
                                 in lifecycle.status(testbed)}:
        pytest.skip('the compute emulator is not installed')
    assert openstack(testbed, 'server', 'list') == []
    assert {'amphora', 'amphora-sriov-flavor'} <= set(
        _names(openstack(testbed, 'flavor', 'list')))
    sriov_flavor = conn.compute.find_flavor('amphora-sriov-flavor')
    assert conn.compute.fetch_flavor_extra_specs(
        sriov_flavor).extra_specs == {'sriov-nic': 'true'}
    aggregates = openstack(testbed, 'aggregate', 'list', '--long')
    sriov = [a for a in aggregates if a['Name'] == 'sriov_aggregate']
    assert len(sriov) == 1
    assert sorted(sriov[0]['Hosts']) == ['compute-1', 'compute-2']
    assert 'sriov-nic' in str(sriov[0]['Properties'])
    images = list(conn.image.images(tag='amphora'))
    assert len(images) == 1


def test_the_mgmt_bridge_holds_the_gateway(testbed):
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=f'{PREFIX}-mgmt')
        assert index
        addresses = [a.get_attr('IFA_ADDRESS')
                     for a in ipr.get_addr(index=index[0])]
    assert '198.18.29.1' in addresses


def test_up_again_changes_nothing(testbed, conn, first_pids):
    networks = sorted(n.name for n in conn.network.networks())
    subnets = sorted(s.name for s in conn.network.subnets())
    lifecycle.up(testbed)
    assert {name: pid for name, pid, _, _
            in lifecycle.status(testbed)} == first_pids
    assert sorted(n.name for n in conn.network.networks()) == networks
    assert sorted(s.name for s in conn.network.subnets()) == subnets


def test_down_leaves_nothing_behind(testbed, first_pids):
    assert _prefixed_kernel_objects()
    stopped = lifecycle.down(testbed)
    assert set(stopped) == {name for name, pid in first_pids.items() if pid}
    for pid in first_pids.values():
        if pid:
            assert not os.path.exists(f'/proc/{pid}'), pid
    assert not _prefixed_kernel_objects()
    for name, pid, port, state in lifecycle.status(testbed):
        assert pid is None and state != 'alive', name
        if port:
            assert not base.tcp_answers(config.HOST, port), name
    assert not [f for f in os.listdir(testbed.run_dir)
                if f.endswith('.pid')]
    # The next up starts a new cloud: no rows about amphorae that are gone.
    assert not [name for name in lifecycle.CLOUD_STATE
                if os.path.exists(testbed.path(name))]
    assert os.listdir(testbed.logs_dir)
