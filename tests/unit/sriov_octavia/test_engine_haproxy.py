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
"""haproxy.cfg from provider dicts, by upstream Octavia's templater."""

import copy
import shutil
import subprocess

import pytest

from sriov_octavia.engine import haproxy_config
from sriov_octavia.engine import octavia_models

LB = '4f9c1b8e-1111-4222-8333-944455556666'
LISTENER = 'a0000000-0000-4000-8000-000000000001'
TCP_LISTENER = 'a0000000-0000-4000-8000-000000000002'
POOL = 'b0000000-0000-4000-8000-000000000001'
API_POOL = 'b0000000-0000-4000-8000-000000000002'
MEMBER = 'c0000000-0000-4000-8000-000000000001'
DISABLED_MEMBER = 'c0000000-0000-4000-8000-000000000002'
POLICY = 'd0000000-0000-4000-8000-000000000001'
REJECT_POLICY = 'd0000000-0000-4000-8000-000000000002'
RULE = 'e0000000-0000-4000-8000-000000000001'
REJECT_RULE = 'e0000000-0000-4000-8000-000000000002'
AMPHORA = {'id': 'f0000000-0000-4000-8000-000000000001', 'role': 'MASTER',
           'mgmt_ip': '198.18.35.5'}
INFO = {'haproxy_version': '2.6.12',
        'haproxy_base_path': '/var/lib/amphora-agent/haproxy',
        'vrrp_check_script': '/var/lib/amphora-agent/vrrp-check'}
MONITOR = {'healthmonitor_id': 'f1000000-0000-4000-8000-000000000001',
           'pool_id': POOL, 'type': 'HTTP', 'delay': 2, 'timeout': 1,
           'max_retries': 3, 'max_retries_down': 2, 'http_method': 'GET',
           'url_path': '/health', 'expected_codes': '200-204'}
STATE = {
    'loadbalancer_id': LB, 'project_id': 'project-1',
    'vip_address': '203.0.113.10',
    'additional_vips': [{'ip_address': '2001:db8::10', 'subnet_id': 's6'}],
    'listeners': [
        {'listener_id': LISTENER, 'protocol': 'HTTP', 'protocol_port': 80,
         'default_pool_id': POOL, 'connection_limit': 1000,
         'allowed_cidrs': ['198.51.100.0/24'],
         'insert_headers': {'X-Forwarded-For': 'true'},
         # Octavia's copy of the pool from before the change: not read.
         'default_pool': {'pool_id': POOL, 'members': []},
         'l7policies': [
             {'l7policy_id': POLICY, 'action': 'REDIRECT_TO_POOL',
              'redirect_pool_id': API_POOL, 'position': 2,
              'rules': [{'l7rule_id': RULE, 'type': 'PATH',
                         'compare_type': 'STARTS_WITH',
                         'value': '/api v2'}]},
             {'l7policy_id': REJECT_POLICY, 'action': 'REJECT',
              'position': 1,
              'rules': [{'l7rule_id': REJECT_RULE, 'type': 'HEADER',
                         'key': 'X-Evil', 'compare_type': 'EQUAL_TO',
                         'value': 'yes'}]}]},
        {'listener_id': TCP_LISTENER, 'protocol': 'TCP',
         'protocol_port': 443, 'admin_state_up': True,
         'timeout_client_data': 7000}],
    'pools': [
        {'pool_id': POOL, 'protocol': 'HTTP', 'lb_algorithm': 'ROUND_ROBIN',
         'listener_id': LISTENER, 'healthmonitor': MONITOR,
         'members': [
             {'member_id': MEMBER, 'pool_id': POOL,
              'address': '203.0.113.20', 'protocol_port': 8080,
              'weight': 3, 'monitor_port': 8081},
             {'member_id': DISABLED_MEMBER, 'pool_id': POOL,
              'address': '203.0.113.21', 'protocol_port': 8080,
              'weight': None, 'backup': True, 'admin_state_up': False}]},
        {'pool_id': API_POOL, 'protocol': 'HTTP',
         'lb_algorithm': 'SOURCE_IP',
         'session_persistence': {'type': 'SOURCE_IP'}, 'members': []}]}


def render(state=STATE):
    return haproxy_config.render(state, AMPHORA, INFO)


def section(text, header):
    """The lines of one haproxy section, without indentation."""
    lines = text.splitlines()
    start = lines.index(header)
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(' '):
            break
        body.append(line.strip())
    return body


def test_listeners_bind_every_vip_and_use_their_default_pool():
    text = render()
    frontend = section(text, f'frontend {LISTENER}')
    assert 'bind 203.0.113.10:80' in frontend
    assert 'bind 2001:db8::10:80' in frontend
    assert 'mode http' in frontend
    assert 'maxconn 1000' in frontend
    assert f'default_backend {POOL}:{LISTENER}' in frontend
    tcp = section(text, f'frontend {TCP_LISTENER}')
    assert 'mode tcp' in tcp
    assert 'timeout client 7000' in tcp
    assert not any(line.startswith('default_backend') for line in tcp)


def test_l7_policies_in_position_order_switch_to_their_pools():
    frontend = section(render(), f'frontend {LISTENER}')
    deny = frontend.index(f'http-request deny if {REJECT_RULE}')
    use = frontend.index(f'use_backend {API_POOL}:{LISTENER} if {RULE}')
    assert deny < use
    # The rule's value keeps its space, escaped for haproxy.
    assert f'acl {RULE} path -m beg /api\\ v2' in frontend
    assert f'acl {REJECT_RULE} req.hdr(X-Evil) -m str yes' in frontend


def test_members_with_weights_checks_and_admin_state():
    backend = section(render(), f'backend {POOL}:{LISTENER}')
    assert 'balance roundrobin' in backend
    assert 'option httpchk GET /health' in backend
    [expect] = [line for line in backend
                if line.startswith('http-check expect rstatus ')]
    assert sorted(expect.split()[-1].split('|')) == [
        '200', '201', '202', '203', '204']
    # insert_headers X-Forwarded-For.
    assert 'option forwardfor' in backend
    # max_retries rises, max_retries_down falls (Octavia's mapping).
    assert (f'server {MEMBER} 203.0.113.20:8080 weight 3 check inter 2s '
            f'fall 2 rise 3 port 8081') in backend
    [disabled] = [line for line in backend
                  if line.startswith(f'server {DISABLED_MEMBER}')]
    assert disabled.endswith(' backup disabled')
    assert ' weight 1 ' in disabled
    api = section(render(), f'backend {API_POOL}:{LISTENER}')
    assert 'balance source' in api
    assert 'stick on src' in api


def test_stats_socket_and_state_file_live_where_the_agent_says():
    text = render()
    assert (f'stats socket /var/lib/amphora-agent/haproxy/{LB}.sock mode '
            f'0666 level user') in text
    assert haproxy_config.socket_path(INFO, LB) == (
        f'/var/lib/amphora-agent/haproxy/{LB}.sock')
    # No peers section: each amphora keeps its own stick tables.
    assert 'peers' not in text


def test_pool_created_with_its_listener_is_its_default_pool():
    # The job runs before octavia-api commits the listener's new
    # default_pool_id; the pool names its listener.
    state = copy.deepcopy(STATE)
    del state['listeners'][0]['default_pool_id']
    frontend = section(render(state), f'frontend {LISTENER}')
    assert f'default_backend {POOL}:{LISTENER}' in frontend


def test_deleted_pool_leaves_no_backend_behind():
    state = copy.deepcopy(STATE)
    state['pools'] = [pool for pool in state['pools']
                      if pool['pool_id'] != POOL]
    text = render(state)
    assert f'backend {POOL}:' not in text
    assert 'default_backend' not in text


def test_disabled_load_balancer_and_listener_serve_nothing():
    state = copy.deepcopy(STATE)
    state['listeners'][1]['admin_state_up'] = False
    assert f'frontend {TCP_LISTENER}' not in render(state)
    state['admin_state_up'] = False
    assert 'frontend' not in render(state)


def test_without_listeners_there_is_nothing_to_render():
    state = dict(STATE, listeners=[])
    assert not haproxy_config.has_listeners(state)
    assert not haproxy_config.has_listeners(dict(STATE, listeners=None))
    with pytest.raises(ValueError, match='has no listener'):
        render(state)


UDP_LISTENER = 'a0000000-0000-4000-8000-000000000003'
UDP_POOL = 'b0000000-0000-4000-8000-000000000003'
SCTP_LISTENER = 'a0000000-0000-4000-8000-000000000004'


def with_l4(state):
    """``state`` plus a UDP listener with its pool and an SCTP listener."""
    state = copy.deepcopy(state)
    state['listeners'] += [
        {'listener_id': UDP_LISTENER, 'protocol': 'UDP',
         'protocol_port': 53, 'default_pool_id': UDP_POOL},
        {'listener_id': SCTP_LISTENER, 'protocol': 'SCTP',
         'protocol_port': 3868}]
    state['pools'].append(
        {'pool_id': UDP_POOL, 'protocol': 'UDP',
         'lb_algorithm': 'ROUND_ROBIN', 'listener_id': UDP_LISTENER,
         'members': [{'member_id': 'c0000000-0000-4000-8000-000000000009',
                      'address': '203.0.113.53', 'protocol_port': 53}]})
    return state


def test_udp_and_sctp_listeners_are_not_haproxy_s():
    # The amphora's L4 engine serves them (l4_config); upstream's
    # templater would make TCP frontends of them.
    text = render(with_l4(STATE))
    assert text == render(STATE)
    assert UDP_LISTENER not in text and UDP_POOL not in text
    assert SCTP_LISTENER not in text
    assert [listener['listener_id'] for listener in haproxy_config.listeners(
        with_l4(STATE))] == [LISTENER, TCP_LISTENER]


def test_only_udp_and_sctp_listeners_run_no_haproxy():
    state = with_l4(dict(STATE, listeners=[]))
    assert not haproxy_config.has_listeners(state)
    with pytest.raises(ValueError, match='has no listener for haproxy'):
        render(state)
    state['listeners'].append(STATE['listeners'][1])
    assert haproxy_config.has_listeners(state)
    assert f'frontend {TCP_LISTENER}' in render(state)


def test_converter_links_the_graph_both_ways():
    loadbalancer = octavia_models.load_balancer(STATE)
    listener = loadbalancer.listeners[0]
    assert listener.load_balancer is loadbalancer
    assert [pool.id for pool in listener.pools] == [POOL, API_POOL]
    assert [policy.position for policy in listener.l7policies] == [1, 2]
    pool = listener.default_pool
    assert pool.listeners == [listener]
    assert pool.members[0].pool is pool
    assert pool.health_monitor.rise_threshold == 3
    assert pool.health_monitor.fall_threshold == 2
    assert loadbalancer.additional_vips[0].ip_address == '2001:db8::10'


def _disabled(state, kind):
    state = copy.deepcopy(state)
    for obj in state[kind]:
        obj['admin_state_up'] = False
    return state


@pytest.mark.skipif(shutil.which('haproxy') is None,
                    reason='haproxy is not installed')
@pytest.mark.parametrize('state', [
    STATE, _disabled(STATE, 'listeners'), _disabled(STATE, 'pools'),
    with_l4(STATE)],
    ids=['all-enabled', 'listeners-disabled', 'pools-disabled',
         'with-udp-and-sctp'])
def test_haproxy_accepts_the_configuration(tmp_path, state):
    path = tmp_path / 'haproxy.cfg'
    path.write_text(render(state))
    checked = subprocess.run(['haproxy', '-c', '-f', str(path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'Configuration file is valid' in checked.stdout
