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
"""Dead amphorae replaced unasked, and status that tells the truth.

The user builds an HTTP load balancer with the real ``openstack`` CLI; then
an amphora dies, three ways a cloud kills one: its server is deleted
(``openstack server delete``), its agent stops (haproxy goes on serving),
its management link is cut (the agent runs on, unreachable). Each time the
load balancer's status says so within a few health intervals, the worker in
octavia-driver-agent fails the amphora over on its own after
[health_manager] heartbeat_timeout, and HTTP through the VIP answers again.
The times each step took are printed and kept in the testbed's
``health-timings.jsonl``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sriov_octavia import amphorae
from sriov_octavia import naming
from tests.functional.sriov_octavia.http_service import build_http_service
from tests.functional.sriov_octavia.http_service import load_balancer
from tests.functional.sriov_octavia.http_service import member_status
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 19000
PREFIX = 'thm'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
INTERVAL = 2
HEARTBEAT_TIMEOUT = 10
FAST_HEALTH = {'sriov_worker': {'health_interval': INTERVAL},
               'health_manager': {'heartbeat_timeout': HEARTBEAT_TIMEOUT}}
# Status within a few rounds; a failover within a boot and a plug.
STATUS_TIMEOUT = 20 * INTERVAL
FAILOVER_TIMEOUT = osc.TIMEOUT
FAILOVER_POSTED = 'failover of'


def wait_for(tb, what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, (
            f'no {what} after {timeout} s\nwhat the worker logged last:\n'
            f'{osc.worker_log_tail(tb)}')
        time.sleep(1)


@pytest.fixture(scope='module')
def fast_health(tb):
    with osc.octavia_conf(tb, **FAST_HEALTH):
        yield


@pytest.fixture(scope='module')
def flavors(tb, conn):
    return {'SINGLE': osc.make_flavor(tb, conn),
            'ACTIVE_STANDBY': osc.make_flavor(
                tb, conn, loadbalancer_topology='ACTIVE_STANDBY')}


def serving(conn, lb_id, role):
    """The ACTIVE server of ``role``, None when Nova has none."""
    for server in amphorae.find_servers(conn, lb_id):
        if (server.metadata.get(naming.META_ROLE) == role and
                server.status == 'ACTIVE'):
            return server
    return None


def lb_show(tb, lb_id):
    return osc.cli_json(tb, 'loadbalancer', 'show', lb_id)


def kill(tb, fabric, server, how):
    if how == 'server deleted':
        osc.cli(tb, 'server', 'delete', server.id)
    elif how == 'agent stopped':
        assert fabric.stop_agent(server.id)
    else:
        fabric.set_agent_reachable(server.id, False)


def record(tb, timings):
    print(json.dumps(timings))
    with open(tb.path('health-timings.jsonl'), 'a') as log:
        log.write(json.dumps(timings) + '\n')


def total_connections(tb, listener_id, observed):
    """The listener's total connections; each value is kept in order."""
    observed.append(osc.cli_json(tb, 'loadbalancer', 'listener', 'stats',
                                 'show', listener_id)['total_connections'])
    return observed[-1]


def posted_failovers(log_text):
    return [line for line in log_text.splitlines()
            if FAILOVER_POSTED in line and 'posted as job' in line]


@pytest.mark.parametrize('topology, role, down_status', [
    ('SINGLE', naming.ROLE_STANDALONE, 'ERROR'),
    ('ACTIVE_STANDBY', naming.ROLE_MASTER, 'DEGRADED')])
def test_a_dead_amphora_is_replaced_unasked(tb, conn, fabric, hosts,
                                            fast_health, flavors, topology,
                                            role, down_status):
    client = hosts(f'{topology[0].lower()}-client')
    member = hosts(f'{topology[0].lower()}-member')
    member.serve()
    with load_balancer(tb, flavors[topology]) as lb:
        vip = lb['vip_address']
        listener, pool, member_ids = build_http_service(tb, lb, client,
                                                        [member])
        [member_id] = member_ids.values()
        wait_for(tb, 'an ONLINE load balancer', lambda: lb_show(
            tb, lb['id'])['operating_status'] == 'ONLINE', STATUS_TIMEOUT)
        assert client.get(vip, 2) == [member.name] * 2
        totals = []
        for how in ('server deleted', 'agent stopped',
                    'management link cut'):
            victim = serving(conn, lb['id'], role)
            wait_for(tb, 'the requests so far counted', lambda: (
                total_connections(tb, listener['id'], totals)),
                STATUS_TIMEOUT)
            failovers = len(posted_failovers(osc.worker_log(tb)))
            started = time.monotonic()
            kill(tb, fabric, victim, how)

            wait_for(tb, f'{down_status} after the amphora was {how}',
                     lambda: lb_show(tb, lb['id'])['operating_status'] ==
                     down_status, STATUS_TIMEOUT)
            detected = time.monotonic() - started
            if topology == 'SINGLE':
                # Nothing serves the member: it is not ONLINE either.
                assert member_status(tb, pool, member_id) != 'ONLINE'
            assert lb_show(tb, lb['id'])['provisioning_status'] in (
                'ACTIVE', 'PENDING_UPDATE')

            wait_for(tb, f'a failover posted after the amphora was {how}',
                     lambda: len(posted_failovers(osc.worker_log(tb))) >
                     failovers, FAILOVER_TIMEOUT)
            posted = time.monotonic() - started
            wait_for(tb, f'a new {role} amphora', lambda: (
                lb_show(tb, lb['id'])['provisioning_status'] == 'ACTIVE'
                and (serving(conn, lb['id'], role) or victim).id !=
                victim.id), FAILOVER_TIMEOUT)
            replaced_after = time.monotonic() - started
            wait_for(tb, 'HTTP through the VIP', lambda: client.get(
                vip, 2) == [member.name] * 2, STATUS_TIMEOUT)
            answered = time.monotonic() - started
            # The new amphora's haproxy counts from zero; the listener's
            # statistics add it up instead of starting again.
            total_connections(tb, listener['id'], totals)
            wait_for(tb, 'an ONLINE load balancer again', lambda: lb_show(
                tb, lb['id'])['operating_status'] == 'ONLINE',
                STATUS_TIMEOUT)
            # Exactly one failover for one death.
            assert len(posted_failovers(osc.worker_log(tb))) == failovers + 1
            record(tb, {'topology': topology, 'killed': how,
                        'status_said_so_s': round(detected, 1),
                        'failover_posted_s': round(posted, 1),
                        'replaced_s': round(replaced_after, 1),
                        'http_answers_s': round(answered, 1)})
        # Never backwards, across three failovers.
        assert totals == sorted(totals), totals


def test_two_workers_fail_over_once(tb, conn, fabric, fast_health, flavors,
                                    tmp_path):
    """A second worker beside the driver-agent's: one failover, not two."""
    log_file = tmp_path / 'second-worker.log'
    second = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable),
                      'sriov-octavia-worker'), '--config-file',
         tb.octavia_conf, '--log-file', str(log_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(tb, 'the second worker in the health group', lambda: (
            log_file.exists() and 'Health checks shared as member' in
            log_file.read_text()), STATUS_TIMEOUT)
        before = len(posted_failovers(osc.worker_log(tb)))
        with load_balancer(tb, flavors['SINGLE']) as lb:
            victim = serving(conn, lb['id'], naming.ROLE_STANDALONE)
            fabric.set_agent_reachable(victim.id, False)
            wait_for(tb, 'a new amphora', lambda: (
                lb_show(tb, lb['id'])['provisioning_status'] == 'ACTIVE'
                and (serving(conn, lb['id'], naming.ROLE_STANDALONE) or
                     victim).id != victim.id), FAILOVER_TIMEOUT)
            # Two more timeouts: time enough for a second failover.
            time.sleep(2 * HEARTBEAT_TIMEOUT)
            posted = (posted_failovers(osc.worker_log(tb))[before:] +
                      posted_failovers(log_file.read_text()))
            assert len(posted) == 1, posted
            assert [server.id for server in amphorae.find_servers(
                conn, lb['id'])] == [serving(
                    conn, lb['id'], naming.ROLE_STANDALONE).id]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)


def test_more_deaths_than_the_threshold_pause_failover(tb, conn, fabric,
                                                       flavors):
    settings = dict(FAST_HEALTH, health_manager={
        'heartbeat_timeout': HEARTBEAT_TIMEOUT, 'failover_threshold': 1})
    with osc.octavia_conf(tb, **settings), \
            load_balancer(tb, flavors['SINGLE']) as first, \
            load_balancer(tb, flavors['SINGLE']) as second:
        victims = [serving(conn, lb['id'], naming.ROLE_STANDALONE)
                   for lb in (first, second)]
        before = len(posted_failovers(osc.worker_log(tb)))
        for victim in victims:
            fabric.set_agent_reachable(victim.id, False)
        wait_for(tb, 'the paused failover said', lambda: osc.worker_log(
            tb).count('AUTOMATIC FAILOVER PAUSED: 2 amphorae') >= 2,
            FAILOVER_TIMEOUT)
        assert posted_failovers(osc.worker_log(tb))[before:] == []
        for lb, victim in zip((first, second), victims):
            shown = lb_show(tb, lb['id'])
            assert shown['provisioning_status'] == 'ACTIVE'
            assert shown['operating_status'] == 'ERROR'
            assert serving(conn, lb['id'],
                           naming.ROLE_STANDALONE).id == victim.id
        # The links back: the amphorae answer, nothing was replaced.
        for victim in victims:
            fabric.set_agent_reachable(victim.id, True)
        for lb in (first, second):
            wait_for(tb, 'an ONLINE load balancer', lambda lb=lb: lb_show(
                tb, lb['id'])['operating_status'] == 'ONLINE',
                STATUS_TIMEOUT)
        assert posted_failovers(osc.worker_log(tb))[before:] == []
