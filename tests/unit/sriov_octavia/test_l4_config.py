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
"""The L4 engine's document (UDP, SCTP) from provider dicts."""

import copy
import json

import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia.engine import l4_config

LB = '4f9c1b8e-1111-4222-8333-944455556666'
DNS = 'a0000000-0000-4000-8000-000000000001'
WEB = 'a0000000-0000-4000-8000-000000000002'
DIAMETER = 'a0000000-0000-4000-8000-000000000003'
DNS_POOL = 'b0000000-0000-4000-8000-000000000001'
WEB_POOL = 'b0000000-0000-4000-8000-000000000002'
MONITOR = 'f1000000-0000-4000-8000-000000000001'
# Ids out of address order: members are sent in id order.
MEMBER_B = 'c0000000-0000-4000-8000-00000000000b'
MEMBER_A = 'c0000000-0000-4000-8000-00000000000a'

STATE = {
    'loadbalancer_id': LB, 'project_id': 'project-1',
    'vip_address': '203.0.113.10',
    'additional_vips': [{'ip_address': '2001:db8::10', 'subnet_id': 's6'}],
    'listeners': [
        {'listener_id': DNS, 'protocol': 'UDP', 'protocol_port': 53,
         'default_pool_id': DNS_POOL, 'connection_limit': -1,
         'allowed_cidrs': ['198.51.100.0/24'],
         # Octavia's copy of the pool from before the change: not read.
         'default_pool': {'pool_id': DNS_POOL, 'members': []}},
        {'listener_id': WEB, 'protocol': 'HTTP', 'protocol_port': 80,
         'default_pool_id': WEB_POOL},
        {'listener_id': DIAMETER, 'protocol': 'SCTP', 'protocol_port': 3868,
         'connection_limit': 500}],
    'pools': [
        {'pool_id': DNS_POOL, 'protocol': 'UDP',
         'lb_algorithm': 'LEAST_CONNECTIONS', 'listener_id': DNS,
         'session_persistence': {'type': 'SOURCE_IP',
                                 'persistence_timeout': 60,
                                 'persistence_granularity': '255.255.255.0'},
         'healthmonitor': {
             'healthmonitor_id': MONITOR, 'pool_id': DNS_POOL,
             'type': 'UDP-CONNECT', 'delay': 5, 'timeout': 2,
             'max_retries': 2, 'max_retries_down': 4},
         'members': [
             {'member_id': MEMBER_B, 'pool_id': DNS_POOL,
              'address': '198.51.100.21', 'protocol_port': 5353,
              'weight': 0, 'backup': True,
              'monitor_address': '198.51.100.99', 'monitor_port': 5354},
             {'member_id': MEMBER_A, 'pool_id': DNS_POOL,
              'address': '2001:db8:2::20', 'protocol_port': 53,
              'weight': 256, 'admin_state_up': False}]},
        {'pool_id': WEB_POOL, 'protocol': 'HTTP',
         'lb_algorithm': 'ROUND_ROBIN', 'members': [
             {'member_id': 'c0000000-0000-4000-8000-000000000080',
              'address': '198.51.100.80', 'protocol_port': 8080}]}]}


@pytest.fixture(autouse=True)
def conf(conf):
    """conftest's ``conf``, the controller's options registered."""
    sriov_conf.register_opts(conf.conf)
    return conf


def render(state=STATE):
    return l4_config.render(state)


def listener(document, listener_id):
    [found] = [item for item in document['listeners']
               if item['id'] == listener_id]
    return found


def test_the_document_as_the_spec_draws_it():
    assert render() == {
        'loadbalancer_id': LB,
        'flow_limit': 65536,
        'listeners': [
            {'id': DIAMETER, 'protocol': 'SCTP', 'port': 3868,
             'addresses': ['203.0.113.10', '2001:db8::10'],
             'connection_limit': 500, 'pool': None},
            {'id': DNS, 'protocol': 'UDP', 'port': 53,
             'addresses': ['203.0.113.10', '2001:db8::10'],
             'connection_limit': None,
             'pool': {
                 'id': DNS_POOL, 'algorithm': 'LEAST_CONNECTIONS',
                 # persistence_timeout has no meaning for a hash: a
                 # client keeps its member while the members stay.
                 'persistence': {'type': 'SOURCE_IP',
                                 'granularity': '255.255.255.0'},
                 'members': [
                     {'id': MEMBER_A, 'address': '2001:db8:2::20',
                      'port': 53, 'weight': 256, 'backup': False,
                      'enabled': False, 'monitor_address': None,
                      'monitor_port': None},
                     {'id': MEMBER_B, 'address': '198.51.100.21',
                      'port': 5353, 'weight': 0, 'backup': True,
                      'enabled': True, 'monitor_address': '198.51.100.99',
                      'monitor_port': 5354}],
                 'monitor': {
                     'type': 'UDP-CONNECT', 'delay': 5, 'timeout': 2,
                     'rise': 2, 'fall': 4, 'http_method': 'GET',
                     'url_path': '/', 'expected_codes': '200',
                     'domain_name': None, 'http_version': 1.0}}}]}
    # What goes over the wire.
    json.dumps(render())


def test_haproxy_listeners_are_not_in_it():
    document = render()
    assert WEB not in json.dumps(document)
    assert WEB_POOL not in json.dumps(document)
    assert l4_config.has_listeners(STATE)
    web_only = dict(STATE, listeners=[STATE['listeners'][1]])
    assert not l4_config.has_listeners(web_only)
    assert render(web_only)['listeners'] == []


def test_flow_limit_is_the_option(conf):
    conf.config(l4_flow_limit=1000, group='sriov_amphora')
    assert render()['flow_limit'] == 1000
    assert l4_config.empty(LB) == {'loadbalancer_id': LB,
                                   'flow_limit': 1000, 'listeners': []}


@pytest.mark.parametrize('limit, sent', [
    (None, None), (-1, None), (0, None), (1, 1), (20000, 20000)])
def test_connection_limit(limit, sent):
    state = copy.deepcopy(STATE)
    state['listeners'][0]['connection_limit'] = limit
    assert listener(render(state), DNS)['connection_limit'] == sent
    del state['listeners'][0]['connection_limit']
    assert listener(render(state), DNS)['connection_limit'] is None


def test_disabled_listener_is_left_out():
    state = copy.deepcopy(STATE)
    state['listeners'][2]['admin_state_up'] = False
    assert [item['id'] for item in render(state)['listeners']] == [DNS]
    state['listeners'][0]['admin_state_up'] = False
    assert not l4_config.has_listeners(state)
    assert render(state)['listeners'] == []


def test_disabled_pool_keeps_its_members_all_disabled():
    state = copy.deepcopy(STATE)
    state['pools'][0]['admin_state_up'] = False
    pool = listener(render(state), DNS)['pool']
    assert [member['enabled'] for member in pool['members']] == [
        False, False]
    assert pool['monitor'] is not None


def test_disabled_monitor_is_sent_as_none():
    state = copy.deepcopy(STATE)
    state['pools'][0]['healthmonitor']['admin_state_up'] = False
    assert listener(render(state), DNS)['pool']['monitor'] is None
    state['pools'][0]['healthmonitor'] = None
    assert listener(render(state), DNS)['pool']['monitor'] is None


def test_http_monitor_fields_and_thresholds():
    state = copy.deepcopy(STATE)
    state['pools'][0]['healthmonitor'].update(
        type='HTTP', http_method='HEAD', url_path='/health',
        expected_codes='200-204', domain_name='dns.example.com',
        http_version=1.1, max_retries_down=None)
    monitor = listener(render(state), DNS)['pool']['monitor']
    assert monitor == {'type': 'HTTP', 'delay': 5, 'timeout': 2,
                       'rise': 2, 'fall': 3, 'http_method': 'HEAD',
                       'url_path': '/health',
                       'expected_codes': '200-204',
                       'domain_name': 'dns.example.com',
                       'http_version': 1.1}


def test_timeout_longer_than_the_delay_is_the_delay():
    # Octavia accepts it; the agent probes once per delay.
    state = copy.deepcopy(STATE)
    state['pools'][0]['healthmonitor'].update(delay=3, timeout=10)
    monitor = listener(render(state), DNS)['pool']['monitor']
    assert (monitor['delay'], monitor['timeout']) == (3, 3)


def test_member_defaults():
    state = copy.deepcopy(STATE)
    state['pools'][0]['members'] = [
        {'member_id': MEMBER_A, 'address': '198.51.100.30',
         'protocol_port': 53}]
    [member] = listener(render(state), DNS)['pool']['members']
    assert member == {'id': MEMBER_A, 'address': '198.51.100.30',
                      'port': 53, 'weight': 1, 'backup': False,
                      'enabled': True, 'monitor_address': None,
                      'monitor_port': None}


def test_order_does_not_follow_the_state():
    # An update moves the changed object to the end of the state; the
    # agent's hash slots and flow marks follow the document's order.
    state = copy.deepcopy(STATE)
    state['listeners'].reverse()
    state['pools'][0]['members'].reverse()
    assert render(state) == render()


def test_pool_created_with_its_listener_is_its_pool():
    # The job runs before octavia-api commits the listener's new
    # default_pool_id; the pool names its listener.
    state = copy.deepcopy(STATE)
    del state['listeners'][0]['default_pool_id']
    assert listener(render(state), DNS)['pool']['id'] == DNS_POOL


def test_source_ip_without_persistence_and_without_granularity():
    state = copy.deepcopy(STATE)
    pool = state['pools'][0]
    pool['lb_algorithm'] = 'SOURCE_IP'
    pool['session_persistence'] = None
    sent = listener(render(state), DNS)['pool']
    assert (sent['algorithm'], sent['persistence']) == ('SOURCE_IP', None)
    pool['session_persistence'] = {'type': 'SOURCE_IP'}
    assert listener(render(state), DNS)['pool']['persistence'] == {
        'type': 'SOURCE_IP', 'granularity': None}


def test_cookie_persistence_cannot_be_expressed():
    state = copy.deepcopy(STATE)
    state['pools'][0]['session_persistence'] = {'type': 'HTTP_COOKIE'}
    with pytest.raises(l4_config.UnsupportedObject,
                       match=f'pool {DNS_POOL}: session_persistence.type: '
                             'HTTP_COOKIE'):
        render(state)


def test_one_vip_and_a_repeated_one():
    state = dict(copy.deepcopy(STATE), additional_vips=[
        {'ip_address': '203.0.113.10', 'subnet_id': 's4'}])
    assert listener(render(state), DNS)['addresses'] == ['203.0.113.10']
    state['additional_vips'] = None
    assert listener(render(state), DNS)['addresses'] == ['203.0.113.10']


@pytest.mark.parametrize('change', ['as-is', 'disabled-pool', 'http-monitor',
                                    'no-l4-listener'])
def test_the_agent_accepts_it(change):
    # The agent's own validator (amphora_agent.l4.model), the contract's
    # other side.
    model = pytest.importorskip('amphora_agent.l4.model')
    state = copy.deepcopy(STATE)
    if change == 'disabled-pool':
        state['pools'][0]['admin_state_up'] = False
    elif change == 'http-monitor':
        state['pools'][0]['healthmonitor'].update(
            type='HTTP', url_path='/health', expected_codes='200,202',
            domain_name='dns.example.com', http_version=1.1)
    elif change == 'no-l4-listener':
        state['listeners'] = [state['listeners'][1]]
    document = render(state)
    assert model.parse_document(document).to_dict() == document
