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
"""sriov-octavia-manage and the operator view it prints.

Nova, Neutron and the agents are stand-ins; Octavia's database is a real
one (its own models on in-memory SQLite), so the load balancer lookups and
the failover claim run their SQL.
"""

import datetime
import json
import types
from unittest import mock

from octavia.db import api as db_api
from octavia.db import base_models
from octavia.db import models
from openstack import exceptions as os_exceptions
from oslo_config import cfg
import pytest
import sqlalchemy
from sqlalchemy import orm
from sqlalchemy import pool

from sriov_octavia.amphora import client as agent_client
from sriov_octavia.cmd import manage
from sriov_octavia import conf as sriov_conf
from sriov_octavia import failover as failover_lib
from sriov_octavia import naming
from sriov_octavia import octavia_db
from sriov_octavia import operator_view

LB = '11111111-1111-4111-8111-111111111111'
OTHER_LB = '22222222-2222-4222-8222-222222222222'
GONE_LB = '33333333-3333-4333-8333-333333333333'
EMPTY_LB = '44444444-4444-4444-8444-444444444444'
MGMT_NET = 'mgmt-net'
VIP_NET = 'vip-net'
EXPIRY = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)


# Octavia's database --------------------------------------------------------

@pytest.fixture
def database():
    """Octavia's tables on in-memory SQLite, as db_api hands them out."""
    engine = sqlalchemy.create_engine(
        'sqlite://', poolclass=pool.StaticPool,
        connect_args={'check_same_thread': False})
    base_models.BASE.metadata.create_all(engine)
    sessions = orm.sessionmaker(engine)
    with mock.patch.object(db_api, 'get_session', sessions):
        yield sessions
    engine.dispose()


def add_lb(sessions, lb_id, status='ACTIVE', provider='amphora-sriov',
           topology='SINGLE'):
    with sessions.begin() as session:
        session.add(models.LoadBalancer(
            id=lb_id, project_id='project', name=f'lb-{lb_id[:4]}',
            provider=provider, provisioning_status=status,
            operating_status='ONLINE', enabled=True, topology=topology))


def lb_status(sessions, lb_id):
    with sessions.begin() as session:
        return session.get(models.LoadBalancer, lb_id).provisioning_status


# Nova, Neutron and the agents ----------------------------------------------

class Cloud:
    """The calls operator_view makes, answered from lists."""

    def __init__(self):
        self.servers = []
        self.interfaces = {}
        self.ports = []
        self.compute = types.SimpleNamespace(
            servers=self._servers, get_server=self._get_server,
            server_interfaces=lambda server_id: self.interfaces.get(
                server_id, []))
        self.network = types.SimpleNamespace(ports=self._ports)

    def _servers(self, details=True, name=None):
        return list(self.servers)

    def _get_server(self, server_id):
        for server in self.servers:
            if server.id == server_id:
                return server
        raise os_exceptions.NotFoundException(f'{server_id} not found')

    def _ports(self, device_id=None):
        return [port for port in self.ports if port.device_id == device_id]

    def add_server(self, server_id, lb_id, role, status='ACTIVE',
                   host='compute-1', mgmt_ip='198.18.0.10', fault=None,
                   replaces=None):
        metadata = {naming.META_LOADBALANCER: lb_id,
                    naming.META_ROLE: role,
                    naming.META_AMPHORA_ID: f'amp-{server_id}'}
        if replaces is not None:
            metadata[naming.META_REPLACES] = replaces
        server = types.SimpleNamespace(
            id=server_id, status=status, compute_host=host,
            metadata=metadata, fault=fault)
        self.servers.append(server)
        if mgmt_ip:
            self.interfaces[server_id] = [types.SimpleNamespace(
                net_id=MGMT_NET, fixed_ips=[{'ip_address': mgmt_ip}])]
        return server

    def add_port(self, port_id, server_id, vnic_type, pci_slot=None,
                 network_id=VIP_NET):
        self.ports.append(types.SimpleNamespace(
            id=port_id, device_id=server_id, name=f'port-{port_id}',
            network_id=network_id, mac_address='fa:16:3e:00:00:01',
            binding_vnic_type=vnic_type,
            binding_profile={'pci_slot': pci_slot} if pci_slot else {}))


@pytest.fixture
def cloud():
    return Cloud()


@pytest.fixture
def conf():
    private = cfg.ConfigOpts()
    sriov_conf.register_opts(private)
    private([], project='octavia', default_config_files=[])
    private.set_override('amp_boot_network_list', [MGMT_NET],
                         group='controller_worker')
    return private


class Agents:
    """``amphorae.agent_for`` stand-in: one mock agent per address."""

    def __init__(self):
        self.failures = {}
        self.made = []

    def __call__(self, amphora, conf, retries=None):
        agent = mock.MagicMock()
        agent.__enter__.return_value = agent
        agent.timeout = (10.0, 60.0)
        failure = self.failures.get(amphora['mgmt_ip'])
        if failure:
            agent.served_certificate.side_effect = failure
            agent.get_counters.side_effect = failure
        agent.served_certificate.return_value = types.SimpleNamespace(
            not_valid_after_utc=EXPIRY)
        agent.get_counters.return_value = {
            'vrrp': {'accepted': {'packets': 3, 'bytes': 120}},
            'listeners': {'TCP:80': {
                'accepted': {'packets': 10, 'bytes': 600},
                'dropped': {'packets': 2, 'bytes': 120}}},
            'interfaces': {'eth1': {'dropped': {'packets': 5,
                                                'bytes': 300}}},
            # Not a counter: the agent's drift repairs.
            'repairs': {'count': 1, 'failed': 0,
                        'last_difference': {'missing': ['rule']}}}
        agent.get_loadbalancer_status.return_value = {
            'frontends': {'listener-1': {'status': 'OPEN', 'scur': 1,
                                         'stot': 7, 'bin': 100,
                                         'bout': 200, 'ereq': 0}},
            'backends': {'pool-1:listener-1': {
                'status': 'UP',
                'servers': {'member-1': {'status': 'UP',
                                         'check_status': 'L4OK'}}}}}
        self.made.append((amphora, retries, agent))
        return agent


@pytest.fixture
def agents():
    made = Agents()
    with mock.patch.object(operator_view.amphorae, 'agent_for', made):
        yield made


@pytest.fixture
def zones():
    """No flavor or availability zone metadata: [controller_worker]'s."""
    with mock.patch.object(octavia_db, 'load_balancer_flavor_and_zone',
                           return_value=({}, {})) as lookup:
        yield lookup


# Listing ---------------------------------------------------------------------

def test_list_of_a_load_balancer(database, cloud, conf, agents, zones):
    add_lb(database, LB, topology='ACTIVE_STANDBY')
    cloud.add_server('srv-m', LB, naming.ROLE_MASTER, host='compute-2',
                     mgmt_ip='198.18.0.11')
    cloud.add_port('vrrp', 'srv-m', 'direct', '0000:81:10.1')
    cloud.add_port('member', 'srv-m', 'macvtap', '0000:81:10.4')
    cloud.add_port('mgmt', 'srv-m', 'normal', network_id=MGMT_NET)

    found = operator_view.list_amphorae(cloud, LB, conf, timeout=2.5)

    master, backup = found
    assert master == {
        'id': 'srv-m', 'amphora_id': 'amp-srv-m', 'loadbalancer_id': LB,
        'loadbalancer_status': 'ACTIVE', 'role': naming.ROLE_MASTER,
        'server_status': 'ACTIVE', 'compute_host': 'compute-2',
        'mgmt_ip': '198.18.0.11',
        'vf_ports': [
            {'id': 'member', 'name': 'port-member', 'network_id': VIP_NET,
             'mac_address': 'fa:16:3e:00:00:01', 'vnic_type': 'macvtap',
             'pci_slot': '0000:81:10.4'},
            {'id': 'vrrp', 'name': 'port-vrrp', 'network_id': VIP_NET,
             'mac_address': 'fa:16:3e:00:00:01', 'vnic_type': 'direct',
             'pci_slot': '0000:81:10.1'}],
        'health': 'ok', 'health_detail': None,
        'cert_expiry': '2031-05-06T07:08:09+00:00', 'replaces': None}
    # The role without a server is shown, not hidden.
    assert backup['role'] == naming.ROLE_BACKUP
    assert backup['id'] is None
    assert backup['health'] == 'no server in Nova'
    # One short attempt, named as the agent's certificate names it.
    [(amphora, retries, agent)] = agents.made
    assert retries == 0
    assert amphora['amphora_id'] == 'amp-srv-m'
    assert agent.timeout == (2.5, 60.0)


def test_list_all_keeps_to_this_provider(database, cloud, conf, agents,
                                         zones):
    add_lb(database, LB)
    add_lb(database, OTHER_LB, provider='amphora')
    add_lb(database, EMPTY_LB, status='PENDING_CREATE')
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    # Someone's server claiming another provider's load balancer.
    cloud.add_server('srv-x', OTHER_LB, naming.ROLE_STANDALONE)
    # A leftover: Octavia has no such load balancer.
    cloud.add_server('srv-gone', GONE_LB, naming.ROLE_STANDALONE,
                     mgmt_ip='198.18.0.99')
    cloud.servers.append(types.SimpleNamespace(
        id='not-an-amphora', status='ACTIVE', compute_host='compute-1',
        metadata={}, fault=None))

    found = {(amphora['loadbalancer_id'], amphora['id']): amphora
             for amphora in operator_view.list_amphorae(cloud, None, conf)}

    assert sorted(found) == sorted([(LB, 'srv-1'), (GONE_LB, 'srv-gone'),
                                    (EMPTY_LB, None)])
    assert found[(GONE_LB, 'srv-gone')]['loadbalancer_status'] is None
    # Without the load balancer's zone the worker's way finds the address.
    assert found[(GONE_LB, 'srv-gone')]['mgmt_ip'] == '198.18.0.99'
    assert found[(EMPTY_LB, None)]['loadbalancer_status'] == (
        'PENDING_CREATE')
    assert zones.call_args_list == [mock.call(LB), mock.call(EMPTY_LB)]


@pytest.mark.parametrize('lb_id, make', [
    (LB, lambda sessions: None),
    (LB, lambda sessions: add_lb(sessions, LB, provider='amphora')),
    (LB, lambda sessions: add_lb(sessions, LB, status='DELETED')),
])
def test_list_of_an_unknown_load_balancer(database, cloud, conf, lb_id,
                                          make):
    make(database)
    with pytest.raises(operator_view.NotFound) as raised:
        operator_view.list_amphorae(cloud, lb_id, conf)
    assert str(raised.value) == (
        f'load balancer {LB} not found: Octavia has no load balancer of the '
        f'amphora-sriov provider with that id')


def test_health_says_why_an_agent_does_not_answer(database, cloud, conf,
                                                  agents, zones):
    add_lb(database, LB, topology='ACTIVE_STANDBY')
    add_lb(database, OTHER_LB)
    add_lb(database, EMPTY_LB)
    cloud.add_server('srv-err', LB, naming.ROLE_MASTER, status='ERROR',
                     fault={'message': 'No valid host was found.'})
    cloud.add_server('srv-nomgmt', LB, naming.ROLE_BACKUP, mgmt_ip=None)
    cloud.add_server('srv-down', OTHER_LB, naming.ROLE_STANDALONE,
                     mgmt_ip='198.18.0.20')
    cloud.add_server('srv-tls', EMPTY_LB, naming.ROLE_STANDALONE,
                     mgmt_ip='198.18.0.21')
    agents.failures['198.18.0.20'] = agent_client.AgentUnreachable(
        'https://198.18.0.20:9443', 'timed out')
    agents.failures['198.18.0.21'] = agent_client.AgentTLSError(
        'https://198.18.0.21:9443', 'certificate verify failed')

    found = {amphora['id']: amphora
             for amphora in operator_view.list_amphorae(cloud, None, conf)}

    assert found['srv-err']['health'] == 'server ERROR in Nova'
    assert found['srv-err']['health_detail'] == 'No valid host was found.'
    assert found['srv-nomgmt']['health'] == 'no management address'
    assert MGMT_NET in found['srv-nomgmt']['health_detail']
    assert found['srv-down']['health'] == 'agent unreachable'
    assert 'timed out' in found['srv-down']['health_detail']
    assert found['srv-tls']['health'] == 'agent TLS failure'
    assert all(found[server_id]['cert_expiry'] is None for server_id
               in found)
    # Only the running amphorae with an address were asked.
    assert sorted(amphora['id'] for amphora, _, _ in agents.made) == [
        'srv-down', 'srv-tls']


def test_health_without_a_management_network(database, cloud, conf, agents,
                                             zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    conf.set_override('amp_boot_network_list', [],
                      group='controller_worker')
    [amphora] = operator_view.list_amphorae(cloud, LB, conf)
    assert amphora['health'] == 'no management address'
    assert 'amp_boot_network_list' in amphora['health_detail']
    assert agents.made == []


def test_the_zone_names_the_management_network(database, cloud, conf,
                                               agents, zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    cloud.interfaces['srv-1'].insert(0, types.SimpleNamespace(
        net_id='zone-mgmt', fixed_ips=[{'ip_address': '10.9.0.4'}]))
    zones.return_value = ({}, {'management_network': 'zone-mgmt'})
    [amphora] = operator_view.list_amphorae(cloud, LB, conf)
    assert amphora['mgmt_ip'] == '10.9.0.4'
    assert amphora['health'] == 'ok'


# Show and stats --------------------------------------------------------------

def test_show_by_amphora_id(database, cloud, conf, agents, zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE, replaces='old')
    amphora = operator_view.show_amphora(cloud, 'amp-srv-1', conf)
    assert amphora['id'] == 'srv-1'
    assert amphora['replaces'] == 'old'
    assert amphora['health'] == 'ok'


@pytest.mark.parametrize('ident', ['nope', 'not-an-amphora'])
def test_show_unknown_amphora(database, cloud, conf, ident):
    cloud.servers.append(types.SimpleNamespace(
        id='not-an-amphora', status='ACTIVE', compute_host='compute-1',
        metadata={'other': 'x'}, fault=None))
    with pytest.raises(operator_view.NotFound) as raised:
        operator_view.show_amphora(cloud, ident, conf)
    assert str(raised.value) == (
        f'amphora {ident} not found: no server of the amphora-sriov '
        f'provider has that server id or amphora id')


def test_stats_of_an_amphora(database, cloud, conf, agents, zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    stats = operator_view.amphora_stats(cloud, 'srv-1', conf)
    assert stats['firewall']['listeners']['TCP:80']['dropped'] == {
        'packets': 2, 'bytes': 120}
    assert stats['haproxy']['frontends']['listener-1']['stot'] == 7
    [(_, retries, agent)] = agents.made
    assert retries == 0
    agent.get_loadbalancer_status.assert_called_once_with(LB)


def test_stats_of_an_unreachable_amphora(database, cloud, conf, agents,
                                         zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    agents.failures['198.18.0.10'] = agent_client.AgentUnreachable(
        'https://198.18.0.10:9443', 'connection refused')
    with pytest.raises(operator_view.OperatorError) as raised:
        operator_view.amphora_stats(cloud, 'srv-1', conf)
    assert 'srv-1' in str(raised.value)
    assert 'connection refused' in str(raised.value)


def test_stats_of_a_server_in_error(database, cloud, conf, agents, zones):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE, status='ERROR')
    with pytest.raises(operator_view.OperatorError) as raised:
        operator_view.amphora_stats(cloud, 'srv-1', conf)
    assert str(raised.value) == 'amphora srv-1: server ERROR in Nova'
    assert agents.made == []


# Failover ------------------------------------------------------------------

@pytest.fixture
def posting():
    """The lookups and the jobboard a failover goes through."""
    provider_lb = mock.Mock()
    provider_lb.to_dict.return_value = {'loadbalancer_id': LB,
                                        'vip_address': '203.0.113.5'}
    with mock.patch.object(
            octavia_db, 'load_balancer_flavor_and_zone',
            return_value=({'sriov_vip': True,
                           'loadbalancer_topology': 'ACTIVE_STANDBY'},
                          {'management_network': MGMT_NET})), \
            mock.patch.object(octavia_db, 'provider_load_balancer',
                              return_value=provider_lb), \
            mock.patch.object(failover_lib.jobboard, 'post_job',
                              return_value='job-1') as post_job:
        yield post_job


@pytest.mark.parametrize('status', ['ACTIVE', 'ERROR'])
def test_failover_claims_and_posts_as_the_api(database, cloud, conf,
                                              posting, status):
    add_lb(database, LB, status=status, topology='ACTIVE_STANDBY')
    cloud.add_server('srv-m', LB, naming.ROLE_MASTER)

    posted = operator_view.failover(cloud, 'amp-srv-m', conf)

    assert posted == {'job_id': 'job-1', 'id': 'srv-m',
                      'amphora_id': 'amp-srv-m', 'role': naming.ROLE_MASTER,
                      'loadbalancer_id': LB}
    assert lb_status(database, LB) == 'PENDING_UPDATE'
    [call] = posting.call_args_list
    flow_name, store = call.args
    assert flow_name == 'amphora.failover'
    assert store['amphora'] == {'role': naming.ROLE_MASTER, 'id': 'srv-m'}
    assert store['loadbalancer_id'] == LB
    assert store['loadbalancer'] == {'loadbalancer_id': LB,
                                     'vip_address': '203.0.113.5'}
    assert store['availability_zone'] == {'management_network': MGMT_NET}
    # The flavor with every key, as the driver posts it.
    assert store['flavor']['sriov_vip'] is True
    assert store['flavor']['loadbalancer_topology'] == 'ACTIVE_STANDBY'
    assert 'allow_member_sriov' in store['flavor']
    assert call.kwargs['conf'] is conf


def test_failover_of_a_busy_load_balancer(database, cloud, conf, posting):
    add_lb(database, LB, status='PENDING_UPDATE')
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    with pytest.raises(operator_view.Busy) as raised:
        operator_view.failover(cloud, 'srv-1', conf)
    assert f'load balancer {LB} is PENDING_UPDATE' in str(raised.value)
    posting.assert_not_called()


def test_failover_releases_its_claim_when_posting_fails(database, cloud,
                                                        conf, posting):
    add_lb(database, LB, status='ERROR')
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    posting.side_effect = ConnectionError('redis is down')
    with pytest.raises(operator_view.OperatorError) as raised:
        operator_view.failover(cloud, 'srv-1', conf)
    assert 'redis is down' in str(raised.value)
    assert lb_status(database, LB) == 'ERROR'


def test_failover_of_a_leftover_amphora(database, cloud, conf, posting):
    cloud.add_server('srv-1', GONE_LB, naming.ROLE_STANDALONE)
    with pytest.raises(operator_view.NotFound) as raised:
        operator_view.failover(cloud, 'srv-1', conf)
    assert 'leftover' in str(raised.value)
    posting.assert_not_called()


def test_failover_of_an_unknown_amphora(database, cloud, conf, posting):
    with pytest.raises(operator_view.NotFound):
        operator_view.failover(cloud, 'nope', conf)
    posting.assert_not_called()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _posted(role=naming.ROLE_STANDALONE):
    return {'job_id': 'job-1', 'id': 'srv-old', 'amphora_id': 'amp-old',
            'role': role, 'loadbalancer_id': LB}


def test_wait_for_failover_until_active(database, cloud):
    add_lb(database, LB, status='PENDING_UPDATE')
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        # The worker's flow ends: the new amphora holds the role.
        with database.begin() as session:
            session.get(models.LoadBalancer, LB).provisioning_status = (
                'ACTIVE')
        cloud.add_server('srv-new', LB, naming.ROLE_STANDALONE)

    done = operator_view.wait_for_failover(cloud, _posted(), 60,
                                           clock=clock, sleep=sleep)
    assert done['provisioning_status'] == 'ACTIVE'
    assert done['new_ids'] == ['srv-new']


def test_wait_for_failover_gives_up(database, cloud):
    add_lb(database, LB, status='PENDING_UPDATE')
    clock = Clock()
    with pytest.raises(operator_view.OperatorError) as raised:
        operator_view.wait_for_failover(cloud, _posted(), 10, clock=clock,
                                        sleep=clock.sleep)
    assert 'still PENDING_UPDATE after 10 s' in str(raised.value)
    assert clock.now <= 10


# The command -----------------------------------------------------------------

@pytest.fixture
def run(cloud, capsys):
    """``run(*argv) -> (exit code, stdout, stderr)``."""
    def command(*argv):
        fresh = cfg.ConfigOpts()
        sriov_conf.register_opts(fresh)
        fresh.set_default('amp_boot_network_list', [MGMT_NET],
                          group='controller_worker')
        with mock.patch.object(manage.clients, 'connection',
                               return_value=cloud), \
                mock.patch.object(manage.logging, 'setup'):
            code = manage.main(list(argv), conf=fresh)
        out, err = capsys.readouterr()
        return code, out, err
    return command


def table_rows(out):
    """The cells of every line of the tables in ``out``."""
    return [[cell.strip() for cell in line.strip()[1:-1].split('|')]
            for line in out.splitlines() if line.startswith('|')]


def test_command_lists_as_json_and_table(database, cloud, agents, zones,
                                         run):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    cloud.add_port('vrrp', 'srv-1', 'direct', '0000:81:10.1')

    code, out, err = run('amphora', 'list', '--loadbalancer', LB,
                         '--format', 'json')
    assert code == 0, err
    [amphora] = json.loads(out)
    assert amphora['id'] == 'srv-1'
    assert amphora['vf_ports'][0]['pci_slot'] == '0000:81:10.1'

    code, out, err = run('amphora', 'list')
    assert code == 0, err
    [cells] = [row for row in table_rows(out) if row[0] == 'srv-1']
    assert cells == ['srv-1', LB, 'STANDALONE', 'ACTIVE', 'compute-1',
                     '198.18.0.10', '0000:81:10.1 vrrp', 'ok',
                     '2031-05-06T07:08:09+00:00']


def test_command_shows_one(database, cloud, agents, zones, run):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    cloud.add_port('vrrp', 'srv-1', 'direct', '0000:81:10.1')
    code, out, err = run('amphora', 'show', 'amp-srv-1')
    assert code == 0, err
    assert '| Amphora ID ' in out
    assert 'vrrp: PCI slot 0000:81:10.1, direct' in out


def test_command_names_an_unknown_amphora(database, run):
    code, out, err = run('amphora', 'show', 'nope')
    assert code == 1
    assert out == ''
    assert err.strip() == (
        'amphora nope not found: no server of the amphora-sriov provider '
        'has that server id or amphora id')


def test_command_prints_stats(database, cloud, agents, zones, run):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    code, out, err = run('amphora', 'stats', 'srv-1')
    assert code == 0, err
    rows = table_rows(out)
    assert ['listener TCP:80 dropped', '2', '120'] in rows
    assert ['interface eth1 dropped', '5', '300'] in rows
    assert ['listener-1', 'OPEN', '1', '7', '100', '200', '0'] in rows
    assert ['pool-1:listener-1', 'UP', 'member-1', 'UP (L4OK)'] in rows
    assert ['repairs count', '1'] in rows
    assert ['repairs last_difference', '{"missing": ["rule"]}'] in rows
    assert not any(row[0].startswith('repairs') and len(row) == 3
                   for row in rows)

    code, out, err = run('amphora', 'stats', 'srv-1', '-f', 'json')
    assert json.loads(out)['firewall']['vrrp']['accepted']['packets'] == 3


def test_command_fails_over_and_waits(database, cloud, posting, run):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    with mock.patch.object(
            operator_view, 'wait_for_failover',
            side_effect=lambda conn, posted, timeout: dict(
                posted, provisioning_status='ERROR', new_ids=['srv-1'])):
        code, out, err = run('amphora', 'failover', 'srv-1', '--wait')
    assert code == 1
    assert 'posted as job job-1' in out
    assert f'load balancer {LB} is ERROR' in err


def test_command_fails_over_without_waiting(database, cloud, posting, run):
    add_lb(database, LB)
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    code, out, err = run('amphora', 'failover', 'srv-1', '-f', 'json')
    assert code == 0, err
    assert json.loads(out)['job_id'] == 'job-1'
    assert lb_status(database, LB) == 'PENDING_UPDATE'


def test_command_reports_a_busy_load_balancer(database, cloud, posting,
                                              run):
    add_lb(database, LB, status='PENDING_DELETE')
    cloud.add_server('srv-1', LB, naming.ROLE_STANDALONE)
    code, out, err = run('amphora', 'failover', 'srv-1')
    assert code == 1
    assert f'load balancer {LB} is PENDING_DELETE' in err


def test_command_reports_an_unreachable_cloud(database, run):
    with mock.patch.object(
            operator_view, 'list_amphorae',
            side_effect=os_exceptions.SDKException('no endpoint')):
        code, out, err = run('amphora', 'list')
    assert code == 1
    assert 'no endpoint' in err and '[service_auth]' in err


def test_logs_stay_off_stdout():
    conf = cfg.ConfigOpts()
    manage.logging.register_options(conf)
    conf([])
    manage._logs_off_stdout(conf)
    assert conf.use_stderr is True


def test_table_cells_of_several_lines():
    assert manage.format_table(('A', 'Bee'), [('x', ['1', '22']),
                                              (None, [])]).splitlines() == [
        '+---+-----+',
        '| A | Bee |',
        '+---+-----+',
        '| x | 1   |',
        '|   | 22  |',
        '|   |     |',
        '+---+-----+']


def test_command_names_a_missing_configuration_file(capsys):
    code = manage.main(['--config-file', '/nonexistent/octavia.conf',
                        'amphora', 'list'], conf=cfg.ConfigOpts())
    assert code == 1
    assert '/nonexistent/octavia.conf' in capsys.readouterr().err
