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
"""The health loop: shared checks, status, silent amphorae failed over."""

import threading
import types
from unittest import mock

from oslo_config import cfg
import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import conf as sriov_conf
from sriov_octavia import failover
from sriov_octavia.worker import health
from sriov_octavia.worker import liveness
from tests.unit.sriov_octavia import test_worker_haproxy_status as views

LB = views.LB
OTHER_LB = '11111111-0000-4000-8000-000000000002'
TIMEOUT = 60


@pytest.fixture
def conf():
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    conf.import_group('controller_worker', 'octavia.common.config')
    conf.set_override('amp_boot_network_list', ['mgmt'],
                      group='controller_worker')
    conf.set_override('heartbeat_timeout', TIMEOUT, group='health_manager')
    yield conf
    conf.clear_override('amp_boot_network_list', group='controller_worker')
    conf.clear_override('heartbeat_timeout', group='health_manager')
    conf.clear_override('failover_threshold', group='health_manager')


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


class Group(object):
    """The health group as one worker sees it."""

    member_id = b'me'

    def __init__(self, share=None, others_overdue=0):
        self.share = share
        self.others_overdue = others_overdue
        self.published = []

    def members(self):
        return {self.member_id}

    def owned(self, ids, members=None):
        return set(ids) if self.share is None else set(ids) & self.share

    def fleet_overdue(self, overdue):
        self.published.append(overdue)
        return overdue + self.others_overdue


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def loadbalancer(lb_id=LB, topology='ACTIVE_STANDBY', status='ACTIVE'):
    return {'id': lb_id, 'provisioning_status': status,
            'flavor': {'loadbalancer_topology': topology}}


@pytest.fixture
def octavia():
    """Octavia's database and failover, as the health loop uses them."""
    with mock.patch.object(health.octavia_db, 'provider_load_balancers',
                           return_value=[loadbalancer()]) as lbs, \
            mock.patch.object(health.octavia_db, 'load_balancer_object_ids',
                              return_value={'listeners': [views.LISTENER],
                                            'members': [views.UP]}), \
            mock.patch.object(health.failover, 'start') as start, \
            mock.patch.object(health.listener_counters, 'report') as report:
        yield types.SimpleNamespace(loadbalancers=lbs, start=start,
                                    report=report)


def checker(conf, group=None, clock=None):
    reporter = mock.Mock()
    return health.HealthChecker(conf, group or Group(), reporter,
                                liveness.Liveness(clock or Clock())), reporter


def roles(cloud):
    for server in cloud.compute.servers.return_value:
        if server.id == 'amp-2':
            server.metadata['sriov_octavia_role'] = 'BACKUP'


def answering(agents, master=True, backup=True):
    for address, alive in (('198.18.35.11', master),
                           ('198.18.36.12', backup)):
        agent = agents.made.setdefault(address, mock.MagicMock())
        agent.__enter__.return_value = agent
        if alive:
            agent.get_loadbalancer_status.side_effect = None
            agent.get_loadbalancer_status.return_value = views.view()
        else:
            agent.get_loadbalancer_status.side_effect = (
                agent_client.AgentUnreachable(f'https://{address}:9443',
                                              'timed out'))


def sent(reporter):
    return [call.args[0] for call in reporter.update_status.call_args_list]


def test_a_round_reports_each_load_balancer_once(conf, cloud, agents,
                                                 octavia):
    roles(cloud)
    answering(agents)
    check, reporter = checker(conf)
    assert check.check_round() == {LB}
    # Only ACTIVE servers, one attempt each.
    assert sorted(call.args[0] for call in agents.call_args_list) == [
        '198.18.35.11', '198.18.36.12']
    assert {call.kwargs['retries'] for call in agents.call_args_list} == {0}
    [update] = sent(reporter)
    assert views.statuses(update, 'members')[views.DOWN] == 'ERROR'
    # A worker that just started reports growth from now on: another one
    # may have reported what the counters hold.
    for agent in agents.made.values():
        agent.get_loadbalancer_status.return_value = views.view(stot=15)
    check.check_round()
    # The clients, and with them their connections, are kept.
    assert agents.call_count == 2
    first, second = [call.args[0] for call in octavia.report.call_args_list]
    assert first[views.LISTENER]['total_connections'] == 0
    assert first[views.LISTENER]['active_connections'] == 4
    assert second[views.LISTENER]['total_connections'] == 10
    octavia.start.assert_not_called()


def test_load_balancers_of_other_workers_are_not_checked(conf, cloud, agents,
                                                         octavia):
    octavia.loadbalancers.return_value = [loadbalancer(),
                                          loadbalancer(OTHER_LB)]
    check, reporter = checker(conf, Group(share={OTHER_LB}))
    assert check.check_round() == {OTHER_LB}
    assert agents.call_count == 0
    assert views.statuses(sent(reporter)[0], 'loadbalancers') == {
        OTHER_LB: 'ERROR'}


def test_a_pending_load_balancer_is_neither_checked_nor_failed_over(
        conf, cloud, agents, octavia):
    octavia.loadbalancers.return_value = [loadbalancer(
        status='PENDING_UPDATE')]
    clock = Clock()
    check, reporter = checker(conf, clock=clock)
    for _round in range(3):
        check.check_round()
        clock.now += TIMEOUT
    assert agents.call_count == 0
    assert sent(reporter) == []
    octavia.start.assert_not_called()


def test_a_silent_amphora_is_failed_over_once_after_the_timeout(
        conf, cloud, agents, octavia, caplog):
    roles(cloud)
    answering(agents, backup=False)
    clock = Clock()
    check, reporter = checker(conf, clock=clock)
    check.check_round()
    # Unreachable is said at once: one of two amphorae answers.
    assert views.statuses(sent(reporter)[-1], 'loadbalancers') == {
        LB: 'DEGRADED'}
    clock.now += TIMEOUT - 1
    check.check_round()
    octavia.start.assert_not_called()
    clock.now += 1
    check.check_round()
    octavia.start.assert_called_once()
    assert octavia.start.call_args.args[:2] == (
        LB, {'role': 'BACKUP', 'id': 'amp-2'})
    assert 'BACKUP silent for 60 s' in octavia.start.call_args.kwargs[
        'reason']
    # Its silence counts again from the failover.
    clock.now += 1
    check.check_round()
    octavia.start.assert_called_once()


def test_a_deleted_server_is_failed_over_by_its_role(conf, cloud, agents,
                                                     octavia):
    octavia.loadbalancers.return_value = [loadbalancer(topology='SINGLE')]
    cloud.compute.servers.return_value = []
    clock = Clock()
    check, reporter = checker(conf, clock=clock)
    check.check_round()
    update = sent(reporter)[-1]
    assert views.statuses(update, 'loadbalancers') == {LB: 'ERROR'}
    assert views.statuses(update, 'members') == {views.UP: 'OFFLINE'}
    clock.now += TIMEOUT
    check.check_round()
    octavia.start.assert_called_once()
    assert octavia.start.call_args.args[:2] == (
        LB, {'role': 'STANDALONE', 'id': None})


def test_both_amphorae_silent_fail_over_the_load_balancer(conf, cloud,
                                                          agents, octavia):
    roles(cloud)
    answering(agents, master=False, backup=False)
    clock = Clock()
    check, _reporter = checker(conf, clock=clock)
    check.check_round()
    clock.now += TIMEOUT
    check.check_round()
    assert octavia.start.call_args.args[:2] == (LB, None)


def test_the_threshold_pauses_failover_and_says_why(conf, cloud, agents,
                                                    octavia, caplog):
    conf.set_override('failover_threshold', 3, group='health_manager')
    roles(cloud)
    answering(agents, backup=False)
    clock = Clock()
    group = Group(others_overdue=2)
    check, _reporter = checker(conf, group, clock)
    check.check_round()
    clock.now += TIMEOUT
    check.check_round()
    octavia.start.assert_not_called()
    assert group.published == [0, 1]
    assert 'AUTOMATIC FAILOVER PAUSED: 3 amphorae' in caplog.text
    assert f'BACKUP of {LB}' in caplog.text
    # Fewer silent across the fleet: failover resumes.
    group.others_overdue = 1
    check.check_round()
    octavia.start.assert_called_once()


def test_a_load_balancer_claimed_by_another_is_left_to_it(conf, cloud,
                                                          agents, octavia,
                                                          caplog):
    roles(cloud)
    answering(agents, backup=False)
    octavia.start.side_effect = failover.NotClaimed(LB)
    clock = Clock()
    check, _reporter = checker(conf, clock=clock)
    check.check_round()
    clock.now += TIMEOUT
    with caplog.at_level('INFO'):
        check.check_round()
    assert 'not failing over: load balancer' in caplog.text


def test_loop_survives_a_failing_round_and_stops(conf):
    conf.set_override('health_interval', 1, group='sriov_worker')
    stop = threading.Event()
    rounds = []

    def check_round(self):
        rounds.append(1)
        if len(rounds) == 2:
            stop.set()
        raise RuntimeError('nova down')

    try:
        with mock.patch.object(health.HealthChecker, 'check_round',
                               check_round):
            health.start(conf, stop, Group()).join(timeout=30)
    finally:
        conf.clear_override('health_interval', group='sriov_worker')
    assert len(rounds) == 2


def test_interval_zero_turns_the_loop_off(conf):
    conf.set_override('health_interval', 0, group='sriov_worker')
    try:
        with mock.patch.object(health, 'HealthChecker') as made:
            health.run(conf, threading.Event(), Group())
    finally:
        conf.clear_override('health_interval', group='sriov_worker')
    made.assert_not_called()


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
