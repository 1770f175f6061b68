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
"""The provider driver: what it refuses and the jobs it posts."""

import ast
import json
import subprocess
import sys
from unittest import mock
import uuid

from octavia_lib.api.drivers import data_models
from octavia_lib.api.drivers import exceptions as lib_exceptions
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia import driver as sriov_driver

LB = '5a1d0000-0000-4000-8000-000000000001'
LISTENER = '5a1d0000-0000-4000-8000-000000000002'
POOL = '5a1d0000-0000-4000-8000-000000000003'
MEMBER = '5a1d0000-0000-4000-8000-000000000004'
HM = '5a1d0000-0000-4000-8000-000000000005'
POLICY = '5a1d0000-0000-4000-8000-000000000006'
RULE = '5a1d0000-0000-4000-8000-000000000007'
PORT = '5a1d0000-0000-4000-8000-000000000008'
SUBNET = '5a1d0000-0000-4000-8000-000000000009'
PROJECT = 'a' * 32

CONTRACT_FLOWS = [
    'loadbalancer.create', 'loadbalancer.update', 'loadbalancer.delete',
    'loadbalancer.failover', 'member.batch_update'] + [
    f'{kind}.{operation}'
    for kind in ('listener', 'pool', 'member', 'health_monitor', 'l7policy',
                 'l7rule')
    for operation in ('create', 'update', 'delete')]

DEFAULTS = {'sriov_vip': False, 'allow_member_sriov': False,
            'sriov_vnic_type': 'direct', 'loadbalancer_topology': 'SINGLE',
            'compute_flavor': None, 'amp_image_tag': None}


@pytest.fixture(autouse=True)
def conf():
    fixture = cfg_fixture.Config(cfg.CONF)
    fixture.setUp()
    sriov_conf.register_opts(cfg.CONF)
    cfg.CONF.import_group('controller_worker', 'octavia.common.config')
    fixture.config(loadbalancer_topology='SINGLE', amp_flavor_id='',
                   amp_image_tag='', group='controller_worker')
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def posted(monkeypatch):
    """Every flow of the contract known; post_job records its calls."""
    jobs = []

    def post_job(flow_name, store):
        # What the real jobboard does with the store: persist it as JSON.
        jobs.append((flow_name, json.loads(json.dumps(store))))
        return str(uuid.uuid4())

    monkeypatch.setattr('sriov_octavia.worker.jobboard.flow_names',
                        lambda: set(CONTRACT_FLOWS))
    monkeypatch.setattr('sriov_octavia.worker.jobboard.post_job', post_job)
    return jobs


class FakeOctaviaDB:
    """What octavia_db would read from Octavia's database."""

    def __init__(self):
        self.flavor = {}
        self.zone = {}
        self.listener_protocol = 'HTTP'
        # The load balancer's pools and additional VIPs as Octavia has them.
        self.pools = []
        self.additional_vips = []

    def pool_load_balancer_id(self, pool_id):
        assert pool_id == POOL
        return LB

    def listener_load_balancer_id_and_protocol(self, listener_id):
        assert listener_id == LISTENER
        return LB, self.listener_protocol

    def l7policy_load_balancer_id(self, l7policy_id):
        assert l7policy_id == POLICY
        return LB

    def load_balancer_flavor_and_zone(self, loadbalancer_id):
        assert loadbalancer_id == LB
        return dict(self.flavor), dict(self.zone)

    def provider_load_balancer(self, loadbalancer_id):
        return data_models.LoadBalancer(
            loadbalancer_id=loadbalancer_id, vip_address='198.51.100.5',
            vip_port_id=PORT, listeners=[], pools=self.pools,
            additional_vips=self.additional_vips)


@pytest.fixture
def db(monkeypatch):
    fake = FakeOctaviaDB()
    for name in ('pool_load_balancer_id',
                 'listener_load_balancer_id_and_protocol',
                 'l7policy_load_balancer_id',
                 'load_balancer_flavor_and_zone', 'provider_load_balancer'):
        monkeypatch.setattr(f'sriov_octavia.octavia_db.{name}',
                            getattr(fake, name))
    return fake


@pytest.fixture
def released(monkeypatch):
    """VIP ports the driver deleted after refusing a load balancer."""
    class Released(list):
        conn = mock.Mock()

    calls = Released()
    conn = calls.conn
    monkeypatch.setattr('sriov_octavia.clients.connection',
                        lambda conf=None: conn)
    monkeypatch.setattr(
        'sriov_octavia.vip.delete_vip_port',
        lambda c, lb_id, port_id: calls.append((c, lb_id, port_id)))
    return calls


@pytest.fixture
def driver():
    return sriov_driver.AmphoraSriovProviderDriver()


def dump(obj):
    return obj.to_dict(recurse=True, render_unsets=False)


def refusal(call, *args):
    with pytest.raises(lib_exceptions.UnsupportedOptionError) as info:
        call(*args)
    return info.value.user_fault_string


def new_lb(**kwargs):
    values = dict(loadbalancer_id=LB, project_id=PROJECT, name='lb1',
                  vip_address='198.51.100.5', vip_port_id=PORT,
                  vip_subnet_id=SUBNET, vip_network_id=str(uuid.uuid4()),
                  admin_state_up=True)
    values.update(kwargs)
    return data_models.LoadBalancer(**values)


def listener(**kwargs):
    values = dict(listener_id=LISTENER, loadbalancer_id=LB, protocol='TCP',
                  protocol_port=80, allowed_cidrs=['192.0.2.0/24'],
                  project_id=PROJECT)
    values.update(kwargs)
    return data_models.Listener(**values)


def pool(**kwargs):
    values = dict(pool_id=POOL, loadbalancer_id=LB, listener_id=LISTENER,
                  protocol='TCP', lb_algorithm='ROUND_ROBIN',
                  project_id=PROJECT)
    values.update(kwargs)
    return data_models.Pool(**values)


def member(**kwargs):
    values = dict(member_id=MEMBER, pool_id=POOL, address='203.0.113.10',
                  protocol_port=8080, subnet_id=SUBNET, vnic_type='normal',
                  project_id=PROJECT)
    values.update(kwargs)
    return data_models.Member(**values)


# Load balancer

def test_loadbalancer_create_posts_the_lb_with_its_flavor_and_zone(
        driver, posted, released):
    lb = new_lb(flavor={'sriov_vip': True, 'compute_flavor': 'amp-sriov'},
                availability_zone={'compute_zone': 'az1'})
    driver.loadbalancer_create(lb)
    assert posted == [('loadbalancer.create', {
        'loadbalancer': dump(lb),
        'loadbalancer_id': LB,
        'flavor': dict(DEFAULTS, sriov_vip=True, compute_flavor='amp-sriov'),
        'availability_zone': {'compute_zone': 'az1'}})]
    assert released == []


def test_loadbalancer_create_without_flavor_gets_the_defaults(
        driver, posted, conf):
    conf.config(loadbalancer_topology='ACTIVE_STANDBY', amp_flavor_id='f9',
                amp_image_tag='amphora', group='controller_worker')
    driver.loadbalancer_create(new_lb())
    store = posted[0][1]
    assert store['flavor'] == dict(
        DEFAULTS, loadbalancer_topology='ACTIVE_STANDBY',
        compute_flavor='f9', amp_image_tag='amphora')
    assert store['availability_zone'] == {}


def test_loadbalancer_create_with_a_full_graph(driver, posted):
    lb = new_lb(
        flavor={'allow_member_sriov': True},
        listeners=[listener(protocol='HTTP', l7policies=[
            data_models.L7Policy(l7policy_id=POLICY, listener_id=LISTENER,
                                 action='REJECT')])],
        pools=[pool(members=[member(vnic_type='normal')])])
    driver.loadbalancer_create(lb)
    stored = posted[0][1]['loadbalancer']
    assert stored['listeners'][0]['l7policies'][0]['l7policy_id'] == POLICY
    assert stored['pools'][0]['members'][0]['vnic_type'] == 'normal'


def test_vip_security_groups_with_sriov_vip_are_refused(
        driver, posted, released):
    lb = new_lb(flavor={'sriov_vip': True}, vip_sg_ids=[str(uuid.uuid4())])
    assert refusal(driver.loadbalancer_create, lb) == (
        'vip_sg_ids: Neutron security groups do not apply to SR-IOV VIP '
        'ports; use listener allowed_cidrs.')
    assert posted == []
    # The port create_vip_port made must not outlive the refused LB.
    assert released == [(released.conn, LB, PORT)]


def test_vip_security_groups_without_sriov_vip_pass(driver, posted):
    sg = str(uuid.uuid4())
    driver.loadbalancer_create(new_lb(vip_sg_ids=[sg]))
    assert posted[0][1]['loadbalancer']['vip_sg_ids'] == [sg]


@pytest.mark.parametrize('graph, expected', [
    ({'listeners': [listener(protocol='QUIC')]},
     'protocol QUIC: not supported by the amphora-sriov provider.'),
    ({'pools': [pool(protocol='UDP', session_persistence={
        'type': 'APP_COOKIE', 'cookie_name': 'c'})]},
     'session_persistence.type APP_COOKIE: a UDP pool keeps a client on '
     'its member by its address; only SOURCE_IP is supported.'),
    ({'pools': [pool(lb_algorithm='SOURCE_IP_PORT')]},
     'lb_algorithm SOURCE_IP_PORT: not supported'),
    ({'pools': [pool(members=[member(vnic_type='direct')])]},
     'vnic_type direct: the load balancer flavor does not allow SR-IOV '
     'members (allow_member_sriov is false).'),
    ({'listeners': [listener(protocol='TCP', l7policies=[
        data_models.L7Policy(l7policy_id=POLICY, action='REJECT')])]},
     f'listener_id {LISTENER}: L7 policies need an HTTP listener; this one '
     f'is TCP.'),
])
def test_unsupported_graph_is_refused_and_the_port_released(
        driver, posted, released, graph, expected):
    assert expected in refusal(driver.loadbalancer_create, new_lb(**graph))
    assert posted == []
    assert released == [(released.conn, LB, PORT)]


def test_queue_failure_is_a_driver_error_and_releases_the_port(
        driver, posted, released, monkeypatch):
    def broken(flow_name, store):
        message = 'redis is down'
        raise ConnectionError(message)

    monkeypatch.setattr('sriov_octavia.worker.jobboard.post_job', broken)
    with pytest.raises(lib_exceptions.DriverError) as info:
        driver.loadbalancer_create(new_lb())
    assert 'could not queue the request' in info.value.user_fault_string
    assert 'redis is down' in info.value.operator_fault_string
    assert released == [(released.conn, LB, PORT)]


def test_an_unwritten_flow_is_not_implemented(
        driver, posted, released, monkeypatch):
    monkeypatch.setattr('sriov_octavia.worker.jobboard.flow_names',
                        lambda: set(CONTRACT_FLOWS) - {'loadbalancer.create'})
    with pytest.raises(lib_exceptions.NotImplementedError) as info:
        driver.loadbalancer_create(new_lb())
    assert info.value.user_fault_string == (
        'loadbalancer.create is not implemented by the amphora-sriov '
        'provider yet.')
    assert released == [(released.conn, LB, PORT)]


def test_loadbalancer_update(driver, posted, db):
    db.zone = {'compute_zone': 'az1'}
    old = new_lb(flavor={})
    new = data_models.LoadBalancer(loadbalancer_id=LB, name='renamed')
    driver.loadbalancer_update(old, new)
    assert posted == [('loadbalancer.update', {
        'loadbalancer': {'loadbalancer_id': LB, 'name': 'renamed'},
        'original_loadbalancer': dump(old), 'loadbalancer_id': LB,
        'flavor': DEFAULTS, 'availability_zone': {'compute_zone': 'az1'}})]


def test_loadbalancer_update_adding_security_groups_to_sriov_is_refused(
        driver, posted, db):
    db.flavor = {'sriov_vip': True}
    new = data_models.LoadBalancer(loadbalancer_id=LB,
                                   vip_sg_ids=[str(uuid.uuid4())])
    assert refusal(driver.loadbalancer_update, new_lb(), new).startswith(
        'vip_sg_ids: Neutron security groups do not apply')
    assert posted == []


def test_loadbalancer_delete_keeps_cascade(driver, posted, db):
    lb = new_lb()
    driver.loadbalancer_delete(lb, cascade=True)
    assert posted == [('loadbalancer.delete', {
        'loadbalancer': dump(lb), 'cascade': True, 'loadbalancer_id': LB,
        'flavor': DEFAULTS, 'availability_zone': {}})]


def test_loadbalancer_failover_sends_the_stored_lb(driver, posted, db):
    db.flavor = {'sriov_vip': True}
    driver.loadbalancer_failover(LB)
    name, store = posted[0]
    assert name == 'loadbalancer.failover'
    assert store['loadbalancer']['vip_port_id'] == PORT
    assert store['loadbalancer_id'] == LB
    assert store['flavor']['sriov_vip'] is True


# Listener, pool

@pytest.mark.parametrize('protocol', ['TCP', 'HTTP', 'HTTPS'])
def test_listener_create_posts(driver, posted, db, protocol):
    new = listener(protocol=protocol)
    driver.listener_create(new)
    assert posted == [('listener.create', {
        'listener': dump(new), 'loadbalancer_id': LB, 'flavor': DEFAULTS,
        'availability_zone': {}})]
    assert posted[0][1]['listener']['allowed_cidrs'] == ['192.0.2.0/24']


SECRET_DATA = {'certificate': 'PEM CERTIFICATE', 'private_key': 'PEM KEY',
               'intermediates': [], 'primary_cn': 'www.example.com'}


def test_tls_listener_is_posted_with_refs_and_without_secrets(driver, posted,
                                                              db):
    tls = listener(protocol='TERMINATED_HTTPS',
                   default_tls_container_ref='https://barbican/secrets/a',
                   default_tls_container_data=SECRET_DATA,
                   sni_container_refs=['https://barbican/secrets/b'],
                   sni_container_data=[SECRET_DATA],
                   client_ca_tls_container_ref='https://barbican/secrets/c',
                   client_ca_tls_container_data='PEM CA',
                   client_authentication='MANDATORY')

    driver.listener_create(tls)

    job = posted[0][1]['listener']
    assert job['default_tls_container_ref'] == 'https://barbican/secrets/a'
    assert job['sni_container_refs'] == ['https://barbican/secrets/b']
    assert job['client_authentication'] == 'MANDATORY'
    assert not [key for key in job if key.endswith('_container_data')]
    assert 'PEM KEY' not in repr(posted)


def test_tls_pool_is_posted_with_refs_and_without_secrets(driver, posted,
                                                          db):
    driver.pool_create(pool(protocol='HTTP', tls_enabled=True,
                            tls_container_ref='https://barbican/secrets/d',
                            tls_container_data=SECRET_DATA,
                            ca_tls_container_ref='https://barbican/secrets/e',
                            ca_tls_container_data='PEM CA'))

    job = posted[0][1]['pool']
    assert job['tls_enabled'] is True
    assert job['tls_container_ref'] == 'https://barbican/secrets/d'
    assert job['ca_tls_container_ref'] == 'https://barbican/secrets/e'
    assert 'PEM KEY' not in repr(posted) and 'PEM CA' not in repr(posted)


@pytest.mark.parametrize('protocol', ['UDP', 'SCTP'])
def test_udp_and_sctp_listeners_pass(driver, posted, released, db,
                                     protocol):
    # The amphora's nftables L4 engine serves them.
    driver.listener_create(listener(protocol=protocol, protocol_port=53))
    driver.loadbalancer_create(new_lb(
        listeners=[listener(protocol=protocol, protocol_port=53)],
        pools=[pool(protocol=protocol, session_persistence={
            'type': 'SOURCE_IP', 'persistence_granularity': '255.255.0.0'},
            members=[member(protocol_port=53)])]))
    assert [name for name, _ in posted] == ['listener.create',
                                            'loadbalancer.create']
    assert posted[0][1]['listener']['protocol'] == protocol
    assert released == []


def test_unknown_listener_protocol_is_refused(driver, posted, db):
    message = refusal(driver.listener_create, listener(protocol='QUIC'))
    assert message == ('protocol QUIC: not supported by the amphora-sriov '
                       'provider. Supported: TCP, HTTP, HTTPS, '
                       'TERMINATED_HTTPS, PROMETHEUS, UDP, SCTP.')
    assert posted == []


@pytest.mark.parametrize('protocol', ['UDP', 'SCTP'])
def test_udp_and_sctp_pools_pass(driver, posted, db, protocol):
    driver.pool_create(pool(protocol=protocol, lb_algorithm='SOURCE_IP'))
    driver.pool_update(pool(protocol=protocol), data_models.Pool(
        pool_id=POOL, session_persistence={'type': 'SOURCE_IP'}))
    assert [name for name, _ in posted] == ['pool.create', 'pool.update']


@pytest.mark.parametrize('granularity', [
    '255.255.255.255', '255.255.255.0', '255.128.0.0', '255.0.0.0',
    'ffff:ffff:ffff:ffff::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'])
def test_prefix_shaped_granularity_passes(driver, posted, db, granularity):
    driver.pool_create(pool(protocol='UDP', session_persistence={
        'type': 'SOURCE_IP', 'persistence_granularity': granularity}))
    assert posted[0][1]['pool']['session_persistence'][
        'persistence_granularity'] == granularity


@pytest.mark.parametrize('granularity', [
    '255.0.255.0', '0.0.0.255', '255.255.255.1', 'ffff::ffff',
    '0.0.0.0', '254.0.0.0', 'fe00::', 'not-a-mask'])
def test_granularity_that_is_no_netmask_is_refused(
        driver, posted, db, granularity):
    persistence = {'type': 'SOURCE_IP',
                   'persistence_granularity': granularity}
    expected = (f'session_persistence.persistence_granularity '
                f'{granularity}: the amphora-sriov provider hashes the '
                f'client address masked by it, so it must be a netmask of '
                f'at least 8 leading ones, such as 255.255.255.0.')
    assert refusal(driver.pool_create, pool(
        protocol='UDP', session_persistence=persistence)) == expected
    assert refusal(driver.pool_update, pool(protocol='UDP'),
                   data_models.Pool(pool_id=POOL,
                                    session_persistence=persistence)
                   ) == expected
    assert posted == []


@pytest.mark.parametrize('protocol', ['UDP', 'SCTP'])
@pytest.mark.parametrize('kind', ['HTTP_COOKIE', 'APP_COOKIE'])
def test_cookie_persistence_on_a_udp_or_sctp_pool_is_refused(
        driver, posted, db, kind, protocol):
    persistence = {'type': kind}
    expected = (f'session_persistence.type {kind}: a {protocol} pool keeps '
                f'a client on its member by its address; only SOURCE_IP is '
                f'supported.')
    assert refusal(driver.pool_create, pool(
        protocol=protocol, session_persistence=persistence)) == expected
    # An update carries the changed fields: the protocol is the pool's.
    assert refusal(driver.pool_update, pool(protocol=protocol),
                   data_models.Pool(pool_id=POOL,
                                    session_persistence=persistence)
                   ) == expected
    assert posted == []


@pytest.mark.parametrize('protocol', ['UDP', 'SCTP'])
def test_udp_member_of_another_ip_version_than_the_vips_is_refused(
        driver, posted, db, protocol):
    db.pools = [pool(protocol=protocol)]
    v6 = member(address='2001:db8::10')
    expected = (f'address 2001:db8::10: a member of a {protocol} pool is '
                f'reached at its own IP version, and this load balancer '
                f'has no IPv6 VIP.')
    assert refusal(driver.member_create, v6) == expected
    assert refusal(driver.member_batch_update, POOL,
                   [member(), v6]) == expected
    assert posted == []
    # With an IPv6 VIP among the additional ones, it is served.
    db.additional_vips = [{'ip_address': '2001:db8::5',
                           'subnet_id': SUBNET}]
    driver.member_create(v6)
    driver.member_create(member())
    assert [name for name, _ in posted] == ['member.create'] * 2


def test_member_of_another_ip_version_passes_where_haproxy_serves(
        driver, posted, db):
    db.pools = [pool(protocol='TCP')]
    driver.member_create(member(address='2001:db8::10'))
    assert posted[0][0] == 'member.create'


def test_load_balancer_graph_with_a_udp_member_of_another_ip_version(
        driver, posted, released):
    lb = new_lb(pools=[pool(protocol='UDP', members=[
        member(address='2001:db8::10')])])
    assert refusal(driver.loadbalancer_create, lb) == (
        'address 2001:db8::10: a member of a UDP pool is reached at its own '
        'IP version, and this load balancer has no IPv6 VIP.')
    assert posted == []
    assert released == [(released.conn, LB, PORT)]


def test_cookie_persistence_on_an_http_pool_passes(driver, posted, db):
    driver.pool_create(pool(protocol='HTTP', session_persistence={
        'type': 'APP_COOKIE', 'cookie_name': 'c'}))
    assert posted[0][0] == 'pool.create'


@pytest.mark.parametrize('protocol', ['PROXY', 'PROXYV2', 'HTTP'])
def test_pool_protocols_haproxy_speaks_pass(driver, posted, db, protocol):
    driver.pool_create(pool(protocol=protocol))
    assert posted[0][0] == 'pool.create'


def test_listener_update_and_delete(driver, posted, db):
    old = listener()
    new = data_models.Listener(listener_id=LISTENER,
                               allowed_cidrs=['198.51.100.0/24'])
    driver.listener_update(old, new)
    driver.listener_delete(old)
    assert [name for name, _ in posted] == ['listener.update',
                                            'listener.delete']
    assert posted[0][1]['listener'] == dump(new)
    assert posted[0][1]['original_listener'] == dump(old)
    assert posted[0][1]['loadbalancer_id'] == LB
    assert posted[1][1]['listener'] == dump(old)


def test_pool_create_update_delete(driver, posted, db):
    old = pool()
    new = data_models.Pool(pool_id=POOL, lb_algorithm='LEAST_CONNECTIONS')
    driver.pool_create(old)
    driver.pool_update(old, new)
    driver.pool_delete(old)
    assert posted == [
        ('pool.create', {'pool': dump(old), 'loadbalancer_id': LB,
                         'flavor': DEFAULTS, 'availability_zone': {}}),
        ('pool.update', {'pool': dump(new), 'original_pool': dump(old),
                         'loadbalancer_id': LB, 'flavor': DEFAULTS,
                         'availability_zone': {}}),
        ('pool.delete', {'pool': dump(old), 'loadbalancer_id': LB,
                         'flavor': DEFAULTS, 'availability_zone': {}})]


@pytest.mark.parametrize('change, expected', [
    ({'lb_algorithm': 'SOURCE_IP_PORT'},
     'lb_algorithm SOURCE_IP_PORT: not supported by the amphora-sriov '
     'provider; supported: ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP.'),
])
def test_unsupported_pool_options_are_named(driver, posted, db, change,
                                            expected):
    assert expected in refusal(driver.pool_create, pool(**change))
    assert expected in refusal(driver.pool_update, pool(),
                               data_models.Pool(pool_id=POOL, **change))
    assert posted == []


# Member

def test_member_create_update_delete(driver, posted, db):
    old = member()
    new = data_models.Member(member_id=MEMBER, weight=5)
    driver.member_create(old)
    driver.member_update(old, new)
    driver.member_delete(old)
    assert posted == [
        ('member.create', {'member': dump(old), 'loadbalancer_id': LB,
                           'flavor': DEFAULTS, 'availability_zone': {}}),
        ('member.update', {'member': dump(new), 'original_member': dump(old),
                           'loadbalancer_id': LB, 'flavor': DEFAULTS,
                           'availability_zone': {}}),
        ('member.delete', {'member': dump(old), 'loadbalancer_id': LB,
                           'flavor': DEFAULTS, 'availability_zone': {}})]


def test_sriov_member_needs_allow_member_sriov(driver, posted, db):
    assert refusal(driver.member_create, member(vnic_type='direct')) == (
        'vnic_type direct: the load balancer flavor does not allow SR-IOV '
        'members (allow_member_sriov is false).')


def test_sriov_member_without_sriov_vip_is_refused(driver, posted, db):
    # The amphora firewall admitting its replies is kept with sriov_vip.
    db.flavor = {'allow_member_sriov': True}
    assert refusal(driver.member_create, member(vnic_type='direct')) == (
        'vnic_type direct: SR-IOV members need a load balancer flavor with '
        'sriov_vip as well as allow_member_sriov.')
    assert posted == []


def test_sriov_member_with_allow_member_sriov_is_posted(driver, posted, db):
    db.flavor = {'allow_member_sriov': True, 'sriov_vip': True}
    sriov_member = member(vnic_type='direct')
    driver.member_create(sriov_member)
    [(flow_name, store)] = posted
    assert flow_name == 'member.create'
    assert store['member'] == dump(sriov_member)
    assert store['member']['vnic_type'] == 'direct'
    assert store['flavor']['allow_member_sriov'] is True


def test_sriov_member_in_a_load_balancer_graph_is_posted(
        driver, posted, released):
    lb = new_lb(flavor={'allow_member_sriov': True, 'sriov_vip': True},
                pools=[pool(members=[member(vnic_type='direct')])])

    driver.loadbalancer_create(lb)

    assert posted[0][0] == 'loadbalancer.create'
    assert posted[0][1]['loadbalancer']['pools'][0]['members'][0][
        'vnic_type'] == 'direct'
    assert released == []


def test_sriov_member_needs_a_subnet(driver, posted, db):
    db.flavor = {'allow_member_sriov': True}
    assert refusal(driver.member_create,
                   member(vnic_type='direct', subnet_id=None)).startswith(
        'subnet_id: an SR-IOV member (vnic_type direct) needs a subnet_id')


def test_member_batch_update(driver, posted, db):
    members = [member(), member(member_id=str(uuid.uuid4()),
                                address='203.0.113.11')]
    driver.member_batch_update(POOL, members)
    assert posted == [('member.batch_update', {
        'members': [dump(m) for m in members], 'pool_id': POOL,
        'loadbalancer_id': LB, 'flavor': DEFAULTS, 'availability_zone': {}})]


def test_member_batch_with_a_refused_member_posts_nothing(driver, posted, db):
    members = [member(), member(vnic_type='direct')]
    assert 'vnic_type direct' in refusal(driver.member_batch_update, POOL,
                                         members)
    assert posted == []


# Health monitor, L7

def test_health_monitor_jobs(driver, posted, db):
    old = data_models.HealthMonitor(healthmonitor_id=HM, pool_id=POOL,
                                    type='TCP', delay=5, timeout=3,
                                    max_retries=2)
    new = data_models.HealthMonitor(healthmonitor_id=HM, delay=10)
    driver.health_monitor_create(old)
    driver.health_monitor_update(old, new)
    driver.health_monitor_delete(old)
    assert [name for name, _ in posted] == [
        'health_monitor.create', 'health_monitor.update',
        'health_monitor.delete']
    assert posted[1][1] == {'health_monitor': dump(new),
                            'original_health_monitor': dump(old),
                            'loadbalancer_id': LB, 'flavor': DEFAULTS,
                            'availability_zone': {}}


def test_ping_health_monitor_is_posted(driver, posted, db):
    ping = data_models.HealthMonitor(healthmonitor_id=HM, pool_id=POOL,
                                     type='PING', delay=5, timeout=3,
                                     max_retries=2)

    driver.health_monitor_create(ping)

    assert posted[0][0] == 'health_monitor.create'
    assert posted[0][1]['health_monitor']['type'] == 'PING'


def test_l7policy_needs_an_http_listener(driver, posted, db):
    policy = data_models.L7Policy(l7policy_id=POLICY, listener_id=LISTENER,
                                  action='REJECT')
    db.listener_protocol = 'HTTPS'
    assert refusal(driver.l7policy_create, policy) == (
        f'listener_id {LISTENER}: L7 policies need an HTTP listener; this '
        f'one is HTTPS.')
    db.listener_protocol = 'HTTP'
    driver.l7policy_create(policy)
    new = data_models.L7Policy(l7policy_id=POLICY, position=2)
    driver.l7policy_update(policy, new)
    driver.l7policy_delete(policy)
    assert posted == [
        ('l7policy.create', {'l7policy': dump(policy), 'loadbalancer_id': LB,
                             'flavor': DEFAULTS, 'availability_zone': {}}),
        ('l7policy.update', {'l7policy': dump(new),
                             'original_l7policy': dump(policy),
                             'loadbalancer_id': LB, 'flavor': DEFAULTS,
                             'availability_zone': {}}),
        ('l7policy.delete', {'l7policy': dump(policy), 'loadbalancer_id': LB,
                             'flavor': DEFAULTS, 'availability_zone': {}})]


def test_l7rule_jobs(driver, posted, db):
    rule = data_models.L7Rule(l7rule_id=RULE, l7policy_id=POLICY,
                              type='PATH', compare_type='STARTS_WITH',
                              value='/api')
    new = data_models.L7Rule(l7rule_id=RULE, value='/v2')
    driver.l7rule_create(rule)
    driver.l7rule_update(rule, new)
    driver.l7rule_delete(rule)
    assert [name for name, _ in posted] == [
        'l7rule.create', 'l7rule.update', 'l7rule.delete']
    assert posted[1][1] == {'l7rule': dump(new), 'original_l7rule': dump(rule),
                            'loadbalancer_id': LB, 'flavor': DEFAULTS,
                            'availability_zone': {}}


def test_the_driver_keeps_no_state(driver, posted, db):
    driver.listener_create(listener())
    driver.member_create(member())
    assert vars(driver) == {}


def test_create_vip_port_uses_the_shared_connection(driver, monkeypatch):
    conn = mock.Mock()
    monkeypatch.setattr('sriov_octavia.clients.connection',
                        lambda conf=None: conn)
    create = mock.Mock(return_value=({'vip_port_id': PORT}, []))
    monkeypatch.setattr('sriov_octavia.vip.create_vip_port', create)
    assert driver.create_vip_port(LB, PROJECT, {'vip_subnet_id': SUBNET},
                                  []) == ({'vip_port_id': PORT}, [])
    create.assert_called_once_with(conn, LB, PROJECT,
                                   {'vip_subnet_id': SUBNET}, [])


@pytest.mark.parametrize('auth_type', [None, 'tdr-no-such-plugin'])
def test_unusable_cloud_config_is_a_driver_error(driver, conf, auth_type):
    conf.config(auth_type=auth_type, group='service_auth')
    with pytest.raises(lib_exceptions.DriverError) as info:
        driver.create_vip_port(LB, PROJECT, {'vip_subnet_id': SUBNET}, [])
    assert ('check [service_auth] and the [neutron], [nova] and [glance] '
            'sections of octavia.conf') in info.value.user_fault_string


def test_every_flow_the_driver_posts_is_installed_and_never_imported():
    # In a fresh interpreter, as octavia-api loads the driver.
    code = ('import sys; from sriov_octavia import driver; '
            'from sriov_octavia.worker import jobboard; '
            'names = jobboard.flow_names(); '
            'print(sorted(names)); '
            'print(any(m == "flows" or m.startswith("flows.") '
            'for m in sys.modules))')
    done = subprocess.run([sys.executable, '-c', code], check=True,
                          capture_output=True, text=True)
    names, flows_imported = done.stdout.splitlines()[-2:]
    assert set(CONTRACT_FLOWS) <= set(ast.literal_eval(names))
    assert flows_imported == 'False'
