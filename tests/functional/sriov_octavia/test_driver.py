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
"""The driver inside the real octavia-api, Neutron and redis of a testbed.

Everything a user sees goes through the real ``openstack`` CLI; the VIP
port is checked in the real Neutron; the job in a real redis jobboard.
"""

import json
import uuid

from octavia_lib.api.drivers import data_models
from octavia_lib.api.drivers import exceptions as lib_exceptions
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia import driver as sriov_driver
from sriov_octavia import vip
from sriov_octavia.worker import jobboard
from sriov_octavia.worker import persistence
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json

PORT_BASE = 20000
PREFIX = 'tdr'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
PROVIDER = 'amphora-sriov'


@pytest.fixture(scope='module')
def vip_subnet(conn):
    return conn.network.find_subnet('vip-subnet', ignore_missing=False)


@pytest.fixture(scope='module')
def vip_subnet_v6(conn):
    return conn.network.find_subnet('vip-subnet-v6', ignore_missing=False)


@pytest.fixture(scope='module')
def sriov_compute_flavor(conn):
    return conn.compute.find_flavor(seed.SRIOV_FLAVOR, ignore_missing=False)


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


@pytest.fixture(scope='module')
def sriov_flavor(tb, sriov_compute_flavor):
    data = json.dumps({'sriov_vip': True, 'allow_member_sriov': True,
                       'compute_flavor': sriov_compute_flavor.id,
                       'amp_image_tag': seed.AMPHORA_IMAGE_TAG})
    profile = cli_json(tb, 'loadbalancer', 'flavorprofile', 'create',
                       '--name', unique('profile'), '--provider', PROVIDER,
                       '--flavor-data', data)
    flavor = cli_json(tb, 'loadbalancer', 'flavor', 'create',
                      '--name', unique('flavor'), '--flavorprofile',
                      profile['id'], '--enable')
    return flavor


# Flavor and availability zone metadata through the CLI

@pytest.mark.parametrize('data, expected', [
    ({'sriov_vip': 'yes'}, "sriov_vip: must be true or false, got 'yes'"),
    ({'sriov_vnic_type': 'normal'},
     "sriov_vnic_type: must be one of direct, macvtap, got 'normal'"),
    ({'sriov_vips': True}, 'sriov_vips: unknown key'),
    ({'compute_flavor': 'no-such-flavor'},
     "compute_flavor: no Nova flavor with ID 'no-such-flavor' exists"),
    ({'amp_image_tag': 'no-such-tag'},
     "amp_image_tag: no Glance image with tag 'no-such-tag' exists"),
])
def test_bad_flavor_profile_is_refused_naming_the_key(tb, data, expected):
    result = cli(tb, 'loadbalancer', 'flavorprofile', 'create',
                 '--name', unique('bad'), '--provider', PROVIDER,
                 '--flavor-data', json.dumps(data), check=False)
    assert result.returncode != 0
    assert expected in result.stderr
    assert f"Provider '{PROVIDER}' does not support a requested option" in (
        result.stderr)
    # octavia-api answers an UnsupportedOptionError with 501.
    assert '(HTTP 501)' in result.stderr


def test_good_flavor_profile_and_flavor(tb, sriov_flavor):
    shown = cli_json(tb, 'loadbalancer', 'flavor', 'show',
                     sriov_flavor['id'])
    assert shown['enabled'] is True


def test_capability_list(tb):
    rows = cli_json(tb, 'loadbalancer', 'provider', 'capability', 'list',
                    PROVIDER)
    by_type = {}
    for row in rows:
        by_type.setdefault(row['type'], set()).add(row['name'])
    assert by_type == {
        'flavor': {'sriov_vip', 'allow_member_sriov', 'sriov_vnic_type',
                   'compute_flavor', 'amp_image_tag',
                   'loadbalancer_topology'},
        'availability_zone': {'compute_zone', 'management_network',
                              'valid_vip_networks'}}
    flavor_only = cli_json(tb, 'loadbalancer', 'provider', 'capability',
                           'list', '--flavor', PROVIDER)
    assert {row['type'] for row in flavor_only} == {'flavor'}
    assert len(flavor_only) == 6
    zone_only = cli_json(tb, 'loadbalancer', 'provider', 'capability',
                         'list', '--availability-zone', PROVIDER)
    assert {row['name'] for row in zone_only} == {
        'compute_zone', 'management_network', 'valid_vip_networks'}
    description = {row['name']: row['description'] for row in flavor_only}
    assert 'macvtap' in description['sriov_vnic_type']


def test_availability_zone_profiles(tb, conn):
    mgmt = conn.network.find_network(seed.MGMT_NETWORK, ignore_missing=False)
    bad = cli(tb, 'loadbalancer', 'availabilityzoneprofile', 'create',
              '--name', unique('azp'), '--provider', PROVIDER,
              '--availability-zone-data',
              json.dumps({'volume_zone': 'az1'}), check=False)
    assert bad.returncode != 0
    assert 'volume_zone: unknown key' in bad.stderr
    missing_net = str(uuid.uuid4())
    bad = cli(tb, 'loadbalancer', 'availabilityzoneprofile', 'create',
              '--name', unique('azp'), '--provider', PROVIDER,
              '--availability-zone-data',
              json.dumps({'management_network': missing_net}), check=False)
    assert (f"management_network: no Neutron network with ID "
            f"'{missing_net}' exists") in bad.stderr
    bad = cli(tb, 'loadbalancer', 'availabilityzoneprofile', 'create',
              '--name', unique('azp'), '--provider', PROVIDER,
              '--availability-zone-data',
              json.dumps({'compute_zone': 'no-such-zone'}), check=False)
    assert ("compute_zone: no Nova availability zone 'no-such-zone' exists"
            in bad.stderr)
    zone_name = next(iter(conn.compute.availability_zones())).name
    vip_net = conn.network.find_network('vip-net', ignore_missing=False)
    profile = cli_json(tb, 'loadbalancer', 'availabilityzoneprofile',
                       'create', '--name', unique('azp'), '--provider',
                       PROVIDER, '--availability-zone-data',
                       json.dumps({'management_network': mgmt.id,
                                   'compute_zone': zone_name,
                                   'valid_vip_networks': [vip_net.id]}))
    zone = cli_json(tb, 'loadbalancer', 'availabilityzone', 'create',
                    '--name', unique('az'), '--availabilityzoneprofile',
                    profile['id'])
    assert zone['enabled'] is True


# Load balancer create through the CLI

def vip_ports(conn, lb_id):
    return list(conn.network.ports(device_id=f'lb-{lb_id}'))


def octavia_vip_ports(conn):
    return {port.id for port in conn.network.ports(device_owner='Octavia')}


def test_sriov_load_balancer_gets_its_vip_port_at_once(
        tb, conn, sriov_flavor, vip_subnet):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet', '--vip-address', '203.0.113.50')
    assert lb['provisioning_status'] == 'PENDING_CREATE'
    assert lb['vip_address'] == '203.0.113.50'
    assert lb['vip_vnic_type'] == 'direct'
    ports = vip_ports(conn, lb['id'])
    assert [port.id for port in ports] == [lb['vip_port_id']]
    port = ports[0]
    assert port.name == f"octavia-lb-{lb['id']}"
    assert port.device_owner == 'Octavia'
    assert port.is_admin_state_up is False
    assert port.binding_vnic_type == 'normal'
    assert port.fixed_ips == [{'subnet_id': vip_subnet.id,
                               'ip_address': '203.0.113.50'}]
    assert lb['vip_network_id'] == vip_subnet.network_id


def test_vip_security_groups_with_an_sriov_flavor_are_refused(
        tb, conn, sriov_flavor):
    group = conn.network.create_security_group(name=unique('sg'))
    before = octavia_vip_ports(conn)
    try:
        result = cli(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                     '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                     'vip-subnet', '--vip-sg-id', group.id, check=False)
    finally:
        conn.network.delete_security_group(group)
    assert result.returncode != 0
    # octavia-api itself refuses this before asking the driver; the driver
    # refuses it too (unit tests) for callers that skip that check.
    assert 'VIP Security Groups are not allowed' in result.stderr
    assert octavia_vip_ports(conn) == before


# create_vip_port against the real Neutron

def test_create_vip_port_in_neutron(conn, vip_subnet, vip_subnet_v6):
    lb_id = str(uuid.uuid4())
    project = uuid.uuid4().hex
    vip_dict, additional = vip.create_vip_port(
        conn, lb_id, project,
        {'vip_subnet_id': vip_subnet.id, 'vip_network_id': str(uuid.uuid4())},
        [{'subnet_id': vip_subnet_v6.id}])
    try:
        port = conn.network.get_port(vip_dict['vip_port_id'])
        assert uuid.UUID(port.id)
        assert port.name == f'octavia-lb-{lb_id}'
        assert port.device_id == f'lb-{lb_id}'
        assert port.device_owner == 'Octavia'
        assert port.is_admin_state_up is False
        assert port.project_id == project
        assert port.binding_vnic_type == 'normal'
        assert vip_dict['vip_network_id'] == vip_subnet.network_id
        assert vip_dict['vip_subnet_id'] == vip_subnet.id
        assert {ip['ip_address'] for ip in port.fixed_ips} == {
            vip_dict['vip_address'], additional[0]['ip_address']}
        assert additional[0]['subnet_id'] == vip_subnet_v6.id
        assert additional[0]['ip_address'].startswith('2001:db8:1:')
        assert vip_dict['octavia_owned'] is True

        # The address is taken now: asking for it again is a conflict.
        with pytest.raises(lib_exceptions.Conflict) as info:
            vip.create_vip_port(conn, str(uuid.uuid4()), project, {
                'vip_subnet_id': vip_subnet.id,
                'vip_address': vip_dict['vip_address']}, [])
        assert vip_dict['vip_address'] in info.value.user_fault_string

        # A port the user brings is adopted as it is, and never deleted.
        adopted, _ = vip.create_vip_port(
            conn, str(uuid.uuid4()), project,
            {'vip_port_id': port.id, 'vip_subnet_id': vip_subnet.id}, [])
        assert adopted['vip_port_id'] == port.id
        assert adopted['octavia_owned'] is False
        vip.delete_vip_port(conn, str(uuid.uuid4()), port.id)
        assert conn.network.get_port(port.id)
    finally:
        vip.delete_vip_port(conn, lb_id, vip_dict['vip_port_id'])
    assert conn.network.find_port(vip_dict['vip_port_id']) is None


def test_create_vip_port_names_a_missing_subnet_or_network(conn):
    missing = str(uuid.uuid4())
    with pytest.raises(lib_exceptions.DriverError) as info:
        vip.create_vip_port(conn, str(uuid.uuid4()), uuid.uuid4().hex,
                            {'vip_subnet_id': missing}, [])
    assert info.value.user_fault_string == (
        f'vip_subnet_id {missing}: no such subnet in Neutron')
    with pytest.raises(lib_exceptions.DriverError) as info:
        vip.create_vip_port(conn, str(uuid.uuid4()), uuid.uuid4().hex,
                            {'vip_network_id': missing}, [])
    assert missing in info.value.user_fault_string
    assert info.value.user_fault_string.startswith(
        'Neutron refused the VIP port: ')


# Jobs reach a real redis jobboard

@pytest.fixture
def probe_board(tb, tmp_path, monkeypatch):
    """The driver posting to the testbed's redis on a board of its own.

    A separate jobboard name keeps the testbed's worker from taking the
    job, so the test can look at it as posted.
    """
    fixture = cfg_fixture.Config(cfg.CONF)
    fixture.setUp()
    sriov_conf.register_opts(cfg.CONF)
    fixture.config(jobboard_backend_hosts=['127.0.0.1'],
                   jobboard_backend_port=tb.port('redis'),
                   persistence_connection='sqlite:///' + str(
                       tmp_path / 'taskflow.sqlite'),
                   group='task_flow')
    fixture.config(jobboard_name=unique('board'), group='sriov_worker')
    lb_id = str(uuid.uuid4())
    # No load balancer row exists for it in Octavia's database.
    monkeypatch.setattr(
        'sriov_octavia.octavia_db.load_balancer_flavor_and_zone',
        lambda loadbalancer_id: ({'sriov_vip': True}, {}))
    yield lb_id
    fixture.cleanUp()


def test_listener_create_posts_a_job_to_redis(probe_board):
    lb_id = probe_board
    listener = data_models.Listener(
        listener_id=str(uuid.uuid4()), loadbalancer_id=lb_id,
        protocol='TCP', protocol_port=80, allowed_cidrs=['192.0.2.0/24'])
    sriov_driver.AmphoraSriovProviderDriver().listener_create(listener)
    with persistence.backend(cfg.CONF) as backend:
        with jobboard.open_board(cfg.CONF, backend) as board:
            jobs = list(board.iterjobs(ensure_fresh=True))
            assert [job.name for job in jobs] == [
                f'listener.create {listener.listener_id}']
            flow_detail = next(iter(jobs[0].book))
    store = flow_detail.meta['store']
    assert store['listener']['allowed_cidrs'] == ['192.0.2.0/24']
    assert store['loadbalancer_id'] == lb_id
    assert store['flavor']['sriov_vip'] is True
    assert store['flavor']['sriov_vnic_type'] == 'direct'
