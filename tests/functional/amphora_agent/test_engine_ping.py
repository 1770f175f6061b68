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
"""PING health monitors: haproxy runs the script the agent installed.

The configuration is what the controller renders with Octavia's own
template (sriov_octavia.engine.haproxy_config), a TCP listener whose pool
has a PING monitor and an IPv4 and an IPv6 member; only the script's path
is this agent's (the template names /var/lib/octavia/ping-wrapper.sh, of
the host here). haproxy runs in the data namespace as the agent starts
it, its workers as ``nobody`` as the template says. A member stops
answering echo requests when its namespace ignores them (a sysctl), and
answers again when it no longer does. The firewall is not involved: the
lab's veths are not taken for VFs.
"""

import os
import stat

import pytest

from sriov_octavia.engine import haproxy_config
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import engine_lab

MEMBER4 = '198.51.100.5'
MEMBER6 = '2001:db8:51::5'
LISTENER_PORT = 45550
LB, LISTENER, POOL, AMPHORA = engine_lab.loadbalancer_ids('ping')
SERVERS = {'member-4': MEMBER4, 'member-6': MEMBER6}
IGNORE_ECHO = ('net.ipv4.icmp_echo_ignore_all',
               'net.ipv6.icmp.echo_ignore_all')


@pytest.fixture(scope='module')
def lab(tmp_path_factory, pki):
    with engine_lab.amphora_lab(
            tmp_path_factory, pki, 'p',
            members=(f'{MEMBER4}/24', f'{MEMBER6}/64'),
            gateways=('198.51.100.1/24', '2001:db8:51::1/64')) as lab:
        yield lab


def state():
    """The provider dicts of a TCP listener whose pool is PING-monitored."""
    return {
        'loadbalancer_id': LB, 'project_id': 'project-ping',
        'vip_address': engine_lab.VIP,
        # The default limit makes haproxy ask for more file descriptors
        # than a test machine may give.
        'listeners': [{'listener_id': LISTENER, 'protocol': 'TCP',
                       'protocol_port': LISTENER_PORT,
                       'default_pool_id': POOL, 'connection_limit': 1000}],
        'pools': [{
            'pool_id': POOL, 'protocol': 'TCP', 'listener_id': LISTENER,
            'lb_algorithm': 'ROUND_ROBIN',
            'healthmonitor': {'healthmonitor_id': 'f1000000-ping',
                              'pool_id': POOL, 'type': 'PING', 'delay': 1,
                              'timeout': 1, 'max_retries': 1,
                              'max_retries_down': 1},
            'members': [{'member_id': name, 'pool_id': POOL,
                         'address': address, 'protocol_port': 80}
                        for name, address in SERVERS.items()]}]}


def ignore_echo(lab, value):
    netlab.run(lab.member, ['sysctl', '-q', '-w'] +
               [f'{name}={value}' for name in IGNORE_ECHO])


@pytest.fixture
def monitored(lab, api):
    """The PING-monitored pool, served by haproxy; deleted after."""
    info = api.get_info()
    text = haproxy_config.render(state(), AMPHORA, info)
    assert 'external-check command /var/lib/octavia/ping-wrapper.sh' in text
    api.upload_haproxy_config(AMPHORA['id'], LB, text.replace(
        '/var/lib/octavia/ping-wrapper.sh', info['ping_wrapper']))
    api.loadbalancer_action(LB, 'start')
    yield text
    ignore_echo(lab, 0)
    api.delete_loadbalancer(LB)


def servers(api):
    status = api.get_loadbalancer_status(LB) or {}
    backend = status.get('backends', {}).get(f'{POOL}:{LISTENER}', {})
    return {name: server['status']
            for name, server in backend.get('servers', {}).items()}


def test_the_agent_installed_the_script(lab, api):
    path = api.get_info()['ping_wrapper']

    assert path == lab.agent.ping_wrapper
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755


def test_the_template_asks_for_external_checks(monitored):
    assert '\n    external-check\n' in monitored
    assert '\n    option external-check\n' in monitored
    assert '\n    user nobody\n' in monitored


def test_members_go_down_without_echo_replies_and_up_with_them(
        lab, api, monitored):
    everything = set(SERVERS)
    assert engine_lab.wait_until(
        lambda: servers(api) == dict.fromkeys(everything, 'UP')), (
        servers(api))

    ignore_echo(lab, 1)

    assert engine_lab.wait_until(
        lambda: servers(api) == dict.fromkeys(everything, 'DOWN')), (
        servers(api))

    ignore_echo(lab, 0)

    assert engine_lab.wait_until(
        lambda: servers(api) == dict.fromkeys(everything, 'UP')), (
        servers(api))


def test_a_missing_script_is_put_back_at_agent_start(lab, api):
    os.unlink(lab.agent.ping_wrapper)

    lab.agent.stop()
    lab.agent.start()

    assert os.access(lab.agent.ping_wrapper, os.X_OK)
