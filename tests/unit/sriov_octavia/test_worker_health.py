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
"""Member health and listener statistics, from haproxy's view to Octavia."""

import threading
import types
from unittest import mock

from oslo_config import cfg
import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import health

LB = '11111111-0000-4000-8000-000000000001'
LISTENER = '22222222-0000-4000-8000-000000000001'
POOL = '33333333-0000-4000-8000-000000000001'
EMPTY_POOL = '33333333-0000-4000-8000-000000000002'
UP = '44444444-0000-4000-8000-000000000001'
DOWN = '44444444-0000-4000-8000-000000000002'
OFF = '44444444-0000-4000-8000-000000000003'


def view(down_status='DOWN', scur=2, stot=10):
    """What GET /loadbalancer/<id>/status of an agent answers."""
    return {
        'frontends': {
            LISTENER: {'status': 'OPEN', 'scur': scur, 'stot': stot,
                       'bin': 100, 'bout': 200, 'ereq': 1},
            'prometheus-exporter-internal-endpoint': {
                'status': 'OPEN', 'scur': 9, 'stot': 9, 'bin': 9,
                'bout': 9, 'ereq': 9}},
        'backends': {
            f'{POOL}:{LISTENER}': {'status': 'UP', 'servers': {
                UP: {'status': 'UP', 'check_status': 'L7OK'},
                DOWN: {'status': down_status, 'check_status': 'L4CON'},
                OFF: {'status': 'MAINT', 'check_status': ''}}},
            f'{EMPTY_POOL}:{LISTENER}': {'status': 'DOWN', 'servers': {}},
            'prometheus-exporter-internal': {'status': 'UP', 'servers': {}}}}


def statuses(update, key):
    return {obj['id']: obj['operating_status'] for obj in update[key]}


@pytest.mark.parametrize('haproxy, octavia', [
    ('UP', 'ONLINE'), ('UP 1/3', 'ONLINE'), ('DOWN', 'ERROR'),
    ('DOWN 1/2', 'ERROR'), ('MAINT', 'OFFLINE'), ('MAINT(via)', 'OFFLINE'),
    ('DRAIN', 'DRAINING'), ('NOLB', 'DRAINING'), ('no check', 'NO_MONITOR'),
    ('', None)])
def test_member_status(haproxy, octavia):
    assert health.member_status({'status': haproxy}) == octavia


def test_down_member_degrades_pool_and_load_balancer():
    update = health.operating_update(LB, [view()])
    assert statuses(update, 'members') == {
        UP: 'ONLINE', DOWN: 'ERROR', OFF: 'OFFLINE'}
    assert statuses(update, 'pools') == {POOL: 'DEGRADED',
                                         EMPTY_POOL: 'OFFLINE'}
    assert statuses(update, 'listeners') == {LISTENER: 'ONLINE'}
    assert statuses(update, 'loadbalancers') == {LB: 'DEGRADED'}


def test_all_members_up_is_online():
    update = health.operating_update(LB, [view(down_status='UP')])
    assert statuses(update, 'pools')[POOL] == 'ONLINE'
    assert statuses(update, 'loadbalancers') == {LB: 'ONLINE'}


def test_the_worse_view_of_two_amphorae_counts():
    update = health.operating_update(
        LB, [view(down_status='UP'), view(down_status='DOWN')])
    assert statuses(update, 'members')[DOWN] == 'ERROR'
    update = health.operating_update(
        LB, [view(down_status='DOWN'), view(down_status='UP')])
    assert statuses(update, 'members')[DOWN] == 'ERROR'


def test_statistics_are_summed_over_amphorae():
    assert health.listener_statistics([view(), view(scur=0, stot=5)]) == {
        'listeners': [{'id': LISTENER, 'bytes_in': 200, 'bytes_out': 400,
                       'active_connections': 2, 'total_connections': 15,
                       'request_errors': 2}]}


@pytest.fixture
def conf():
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    conf.import_group('controller_worker', 'octavia.common.config')
    conf.set_override('amp_boot_network_list', ['mgmt'],
                      group='controller_worker')
    yield conf
    conf.clear_override('amp_boot_network_list', group='controller_worker')


def server(server_id, lb_id, status='ACTIVE'):
    return types.SimpleNamespace(
        id=server_id, status=status,
        metadata={'sriov_octavia_lb': lb_id, 'sriov_octavia_role': 'MASTER'}
        if lb_id else {})


def interface(net_id, address):
    return types.SimpleNamespace(net_id=net_id,
                                 fixed_ips=[{'ip_address': address}])


@pytest.fixture
def cloud():
    conn = mock.Mock()
    conn.compute.servers.return_value = [
        server('amp-1', LB), server('amp-2', LB),
        server('amp-building', LB, status='BUILD'),
        server('someone-else', None)]
    interfaces = {
        'amp-1': [interface('vip-net', '203.0.113.21'),
                  interface('mgmt', '198.18.35.11')],
        # An availability zone's management network: the boot NIC.
        'amp-2': [interface('az-mgmt', '198.18.36.12'),
                  interface('vip-net', '203.0.113.22')]}
    conn.compute.server_interfaces.side_effect = interfaces.__getitem__
    with mock.patch('sriov_octavia.clients.connection', return_value=conn):
        yield conn


@pytest.fixture
def agents():
    made = {}

    def new_agent(mgmt_ip, *args, **kwargs):
        agent = made.setdefault(mgmt_ip, mock.MagicMock())
        agent.__enter__.return_value = agent
        return agent

    with mock.patch.object(agent_client.AgentClient, 'from_conf',
                           side_effect=new_agent) as from_conf:
        from_conf.made = made
        yield from_conf


def test_poll_reports_each_load_balancer_once(conf, cloud, agents):
    reporter = mock.Mock()
    agents.made['198.18.35.11'] = mock.MagicMock()
    agents.made['198.18.36.12'] = mock.MagicMock()
    agents.made['198.18.35.11'].get_loadbalancer_status.return_value = view()
    # The standby has no haproxy yet (404: None).
    agents.made['198.18.36.12'].get_loadbalancer_status.return_value = None
    health.poll_once(conf, reporter)
    # Only ACTIVE servers of this provider, one attempt each.
    assert sorted(call.args[0] for call in agents.call_args_list) == [
        '198.18.35.11', '198.18.36.12']
    assert {call.kwargs['retries'] for call in agents.call_args_list} == {0}
    [update] = [call.args[0] for call in
                reporter.update_status.call_args_list]
    assert statuses(update, 'members')[DOWN] == 'ERROR'
    [stats] = [call.args[0] for call in
               reporter.update_listener_statistics.call_args_list]
    assert stats['listeners'][0]['total_connections'] == 10


def test_unreachable_agent_and_refused_report_do_not_stop_the_round(
        conf, cloud, agents, caplog):
    reporter = mock.Mock()
    reporter.update_status.side_effect = RuntimeError('driver-agent gone')
    agents.made['198.18.35.11'] = mock.MagicMock()
    agents.made['198.18.35.11'].get_loadbalancer_status.side_effect = (
        agent_client.AgentUnreachable('https://198.18.35.11:9443', 'down'))
    agents.made['198.18.36.12'] = mock.MagicMock()
    agents.made['198.18.36.12'].get_loadbalancer_status.return_value = view()
    health.poll_once(conf, reporter)
    assert 'amphora amp-1 did not answer' in caplog.text
    assert 'could not be reported to Octavia: driver-agent gone' in (
        caplog.text)


def test_loop_survives_a_failing_round_and_stops(conf):
    conf.set_override('health_interval', 1, group='sriov_worker')
    stop = threading.Event()
    rounds = []

    def poll(conf):
        rounds.append(1)
        if len(rounds) == 2:
            stop.set()
        raise RuntimeError('nova down')

    try:
        with mock.patch.object(health, 'poll_once', side_effect=poll):
            health.start(conf, stop).join(timeout=30)
    finally:
        conf.clear_override('health_interval', group='sriov_worker')
    assert len(rounds) == 2


def test_interval_zero_turns_the_loop_off(conf):
    conf.set_override('health_interval', 0, group='sriov_worker')
    try:
        with mock.patch.object(health, 'poll_once') as poll:
            health.run(conf, threading.Event())
    finally:
        conf.clear_override('health_interval', group='sriov_worker')
    poll.assert_not_called()


def test_the_loops_and_the_flows_find_the_agent_the_same_way(conf, cloud):
    # The flows know the availability zone's management network; the
    # loops fall back to the interface the amphora booted with.
    zone = amphorae.management_networks({'management_network': 'az-mgmt'},
                                        conf)
    assert amphorae.mgmt_ip(cloud, 'amp-2', zone) == '198.18.36.12'
    assert amphorae.server_mgmt_ip(cloud, server('amp-2', LB), conf) == (
        '198.18.36.12')
    assert amphorae.server_mgmt_ip(cloud, server('amp-1', LB), conf) == (
        '198.18.35.11')
    with pytest.raises(amphorae.AmphoraLookupError, match='az-mgmt'):
        amphorae.mgmt_ip(cloud, 'amp-1', zone)
