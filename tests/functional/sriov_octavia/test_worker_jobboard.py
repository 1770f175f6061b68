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
"""The worker against a real redis-server, real SQLite flow persistence and
driver-agent sockets spoken to by octavia-lib's real DriverLibrary.
"""

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

from oslo_config import cfg
from oslo_utils import uuidutils
import pytest

from flows.tasks import amphora_state
from flows.tasks import security_group
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import octavia_status as status
from sriov_octavia.worker import agent
from sriov_octavia.worker import conductor
from sriov_octavia.worker import jobboard
from sriov_octavia.worker import persistence
from tests.functional.sriov_octavia import worker_fixtures
from tests.functional.sriov_octavia import worker_flows
from tests.functional.sriov_octavia.worker_fixtures import driver_agent  # noqa
from tests.functional.sriov_octavia.worker_fixtures import redis_server  # noqa

pytestmark = pytest.mark.services

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
WORKER = os.path.join(os.path.dirname(sys.executable),
                      'sriov-octavia-worker')
wait_until = worker_fixtures.wait_until

# Seconds a claim lives unless renewed. Long, so that no worker loses its
# claim to another merely because a loaded machine delayed its renewals:
# two workers would then run the same task. The test of a killed worker
# waits for its claim to expire and asks for a short one.
CLAIM_EXPIRY = 60
SHORT_CLAIM_EXPIRY = 5


@pytest.fixture
def claim_expiry():
    return CLAIM_EXPIRY


@pytest.fixture
def worker_env(tmp_path, redis_server, driver_agent,  # noqa: F811
               claim_expiry):
    """Options for in-process workers and posts, and for worker processes.

    Global CONF is overridden (tasks read it), a config file is written for
    worker processes, and every test gets a jobboard of its own.
    """
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    options, path = worker_fixtures.worker_config(
        tmp_path, redis_server.port, driver_agent, tmp_path / 'tf.sqlite',
        'twk-' + uuidutils.generate_uuid()[:8], expiration=claim_expiry)
    worker_fixtures.override(conf, options)
    record_dir = tmp_path / 'records'
    record_dir.mkdir()
    env = {'conf': conf, 'conf_file': path, 'record_dir': str(record_dir),
           'tmp': tmp_path, 'options': options, 'redis': redis_server,
           'agent': driver_agent}
    yield env
    worker_fixtures.clear_overrides(conf, options)


@contextlib.contextmanager
def worker_thread(conf):
    stop = threading.Event()
    runner = threading.Thread(target=conductor.run, args=(conf, stop))
    runner.start()
    try:
        yield runner
    finally:
        stop.set()
        runner.join(timeout=120)
    # What the tests check next (logbooks, statuses) is complete only once
    # the worker has returned.
    assert not runner.is_alive(), 'the worker did not stop'


class WorkerProcess(object):
    def __init__(self, env, name):
        self.log_path = env['tmp'] / ('%s.log' % name)
        self._log = open(self.log_path, 'w')
        self.process = subprocess.Popen(
            [WORKER, '--config-file', env['conf_file']],
            stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=TOP))
        self.pid = self.process.pid

    def log(self):
        with open(self.log_path) as log:
            return log.read()

    def ready(self):
        return 'claims jobs on' in self.log()

    def stopping(self):
        """The worker has stopped its conductor (after SIGTERM).

        From this line on, a task that its flows had not scheduled yet does
        not run in this worker.
        """
        return 'claims no more jobs' in self.log()

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        returncode = worker_fixtures.stop_process(self.process, 60)
        self._log.close()
        return returncode


@pytest.fixture
def workers():
    started = []

    def start(env, name):
        worker = WorkerProcess(env, name)
        started.append(worker)
        wait_until(lambda: worker.ready() or worker.process.poll() is not None,
                   'worker %s to start' % name)
        assert worker.process.poll() is None, worker.log()
        return worker

    yield start
    for worker in started:
        worker.stop()


# What the driver stores with every job on a load balancer without a
# flavor: no sriov_vip, so the flows push no amphora firewall.
LB_CONTEXT = {'flavor': sriov_flavor.with_defaults({}),
              'availability_zone': {}}


def _listener_store(env, lb_id=None, listener_id=None, job_key=None):
    lb_id = lb_id or uuidutils.generate_uuid()
    listener_id = listener_id or uuidutils.generate_uuid()
    env['agent'].loadbalancers[lb_id] = {
        'loadbalancer_id': lb_id,
        'listeners': [{'listener_id': listener_id, 'loadbalancer_id': lb_id,
                       'protocol': 'TCP', 'protocol_port': 80}]}
    return {'listener': {'listener_id': listener_id,
                         'loadbalancer_id': lb_id, 'protocol': 'TCP',
                         'protocol_port': 80},
            'loadbalancer_id': lb_id, **LB_CONTEXT,
            'record_dir': env['record_dir'],
            'job_key': job_key or listener_id}


def _post_blocking_job(env):
    """Post a job whose middle task waits for the job's release file."""
    store = _listener_store(env)
    jobboard.post_factory_job(worker_flows.blocking_flow,
                              'test.blocking ' + store['job_key'], store)
    return store


def _wait_for_block(env, worker, job_key, what, timeout=60.0):
    wait_until(lambda: ('block-started', worker.pid) in worker_flows.records(
        env['record_dir'], job_key), what, timeout=timeout)


def _release(env, job_key):
    open(os.path.join(env['record_dir'], job_key + '.release'), 'w').close()


def _board_jobs(env):
    return env['redis'].client.hlen(
        ('%s:listings' % env['options']['jobboard_name']).encode())


def _logbooks(conf):
    with persistence.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as connection:
            return list(connection.get_logbooks())


@pytest.fixture
def pushed(monkeypatch):
    """The load balancer states the flows push, instead of amphorae.

    These tests are about the jobboard, the workers and the statuses; the
    amphorae that receive the pushes are the testbed tests' (a forked
    provider agent inherits the stand-in).
    """
    states = []

    def push(self, lb_state, loadbalancer_id, availability_zone,
             amphorae=None, vrrp_ports=None):
        states.append(lb_state)

    def sync(self, lb_state, flavor):
        pass

    monkeypatch.setattr(amphora_state.PushAmphoraState, 'execute', push)
    monkeypatch.setattr(security_group.SyncSecurityGroup, 'execute', sync)
    return states


def test_listener_create_reaches_driver_agent(worker_env, pushed):
    store = _listener_store(worker_env)
    listener_id = store['listener']['listener_id']
    lb_id = store['loadbalancer_id']
    agent = worker_env['agent']
    with worker_thread(worker_env['conf']):
        job_id = jobboard.post_job('listener.create', store)
        assert uuidutils.is_uuid_like(job_id)
        wait_until(lambda: agent.provisioning('listeners', listener_id),
                   'the listener status')
        wait_until(lambda: _board_jobs(worker_env) == 0,
                   'the job to be consumed')
    assert agent.provisioning('listeners', listener_id) == ['ACTIVE']
    assert agent.provisioning('loadbalancers', lb_id) == ['ACTIVE']
    [state] = pushed
    assert [listener['listener_id'] for listener in state['listeners']] == [
        listener_id]
    # Finished jobs leave no flow state behind.
    assert _logbooks(worker_env['conf']) == []


def test_member_ops_hand_back_pool_and_listeners(worker_env, pushed):
    agent = worker_env['agent']
    lb_id, listener_id, pool_id = (uuidutils.generate_uuid()
                                   for _ in range(3))
    kept, new, gone = (uuidutils.generate_uuid() for _ in range(3))
    agent.loadbalancers[lb_id] = {
        'loadbalancer_id': lb_id,
        'listeners': [{'listener_id': listener_id,
                       'default_pool_id': pool_id}],
        'pools': [{'pool_id': pool_id, 'listener_id': listener_id,
                   'members': [{'member_id': kept, 'pool_id': pool_id},
                               {'member_id': gone, 'pool_id': pool_id}]}]}
    member = {'member_id': new, 'pool_id': pool_id, 'address': '192.0.2.9',
              'protocol_port': 80}
    with worker_thread(worker_env['conf']):
        jobboard.post_job('member.create',
                          {'member': member, 'loadbalancer_id': lb_id,
                           **LB_CONTEXT})
        wait_until(lambda: agent.provisioning('members', new),
                   'the member create')
        jobboard.post_job('member.batch_update', {
            'members': [{'member_id': kept, 'pool_id': pool_id},
                        member],
            'pool_id': pool_id, 'loadbalancer_id': lb_id, **LB_CONTEXT})
        wait_until(lambda: agent.provisioning('members', gone),
                   'the batch update')
    assert agent.provisioning('members', new) == ['ACTIVE', 'ACTIVE']
    assert agent.provisioning('members', kept) == ['ACTIVE']
    assert agent.provisioning('members', gone) == ['DELETED']
    assert agent.provisioning('pools', pool_id) == ['ACTIVE', 'ACTIVE']
    assert agent.provisioning('listeners', listener_id) == ['ACTIVE'] * 2
    assert agent.provisioning('loadbalancers', lb_id) == ['ACTIVE', 'ACTIVE']


def test_failed_flow_marks_object_error_and_lb_active(worker_env):
    store = _listener_store(worker_env)
    listener_id = store['listener']['listener_id']
    agent = worker_env['agent']
    with worker_thread(worker_env['conf']):
        jobboard.post_factory_job(worker_flows.failing_flow,
                                  'test.failing ' + listener_id, store)
        wait_until(lambda: agent.provisioning('listeners', listener_id),
                   'the listener status')
        wait_until(lambda: _board_jobs(worker_env) == 0,
                   'the job to be consumed')
    assert agent.provisioning('listeners', listener_id) == ['ERROR']
    assert agent.provisioning('loadbalancers',
                              store['loadbalancer_id']) == ['ACTIVE']
    ran = [what for what, _ in worker_flows.records(
        worker_env['record_dir'], store['job_key'])]
    assert ran == ['first', 'fail']


def test_post_returns_with_no_worker_running(worker_env, pushed):
    stores = [_listener_store(worker_env) for _ in range(3)]
    for store in stores:
        jobboard.post_job('listener.create', store)
    # Nobody runs them yet: they wait on the board.
    assert _board_jobs(worker_env) == 3
    agent = worker_env['agent']
    with worker_thread(worker_env['conf']):
        wait_until(lambda: _board_jobs(worker_env) == 0, 'the jobs to run')
    for store in stores:
        assert agent.provisioning(
            'listeners', store['listener']['listener_id']) == ['ACTIVE']
    # One worker running one job at a time takes them oldest first.
    reported = [update['listeners'][0]['id']
                for update in agent.status_updates]
    assert reported == [store['listener']['listener_id'] for store in stores]


def test_unknown_flow_is_refused(worker_env):
    with pytest.raises(ValueError, match='listener.create'):
        jobboard.post_job('listener.explode',
                          _listener_store(worker_env))
    assert _board_jobs(worker_env) == 0


def start_shared_jobs(env, workers, quick_count):
    """Two workers, two blocked jobs (one held by each), quick jobs queued.

    Each worker runs one job at a time (max_simultaneous_jobs = 1): the
    two blocked jobs must be held by the two workers. Returns the workers,
    the blocked and the quick jobs' stores.
    """
    first = workers(env, 'worker-a')
    second = workers(env, 'worker-b')
    blocked = [_post_blocking_job(env) for _ in range(2)]
    quick = [_listener_store(env) for _ in range(quick_count)]
    for store in quick:
        jobboard.post_factory_job(worker_flows.recording_flow,
                                  'test.recording ' + store['job_key'], store)

    def started(store):
        return [pid for what, pid in worker_flows.records(
            env['record_dir'], store['job_key']) if what == 'block-started']

    wait_until(lambda: all(started(store) for store in blocked),
               'both blocking jobs to start')
    assert {started(store)[0] for store in blocked} == {first.pid,
                                                        second.pid}
    return (first, second), blocked, quick


def finish_shared_jobs(env, pair, blocked, quick):
    """Release the blocked jobs; every job ran once, on one of the pair."""
    for store in blocked:
        _release(env, store['job_key'])
    wait_until(lambda: _board_jobs(env) == 0, 'all jobs to run')
    for store in quick:
        ran = worker_flows.records(env['record_dir'], store['job_key'])
        assert [what for what, _ in ran] == ['work']
        assert ran[0][1] in {worker.pid for worker in pair}
    for store in blocked:
        assert [what for what, _ in worker_flows.records(
            env['record_dir'], store['job_key'])] == [
                'first', 'block-started', 'block-released', 'last']
    for store in blocked + quick:
        assert env['agent'].provisioning(
            'listeners', store['listener']['listener_id']) == ['ACTIVE']


def test_two_workers_share_jobs_each_runs_once(worker_env, workers):
    pair, blocked, quick = start_shared_jobs(worker_env, workers, 10)
    finish_shared_jobs(worker_env, pair, blocked, quick)
    for worker in pair:
        assert worker.stop() == 0


@pytest.mark.parametrize('claim_expiry', [SHORT_CLAIM_EXPIRY])
def test_killed_worker_job_resumes_on_another(worker_env, workers):
    record_dir = worker_env['record_dir']
    doomed = workers(worker_env, 'worker-doomed')
    store = _post_blocking_job(worker_env)
    job_key = store['job_key']
    _wait_for_block(worker_env, doomed, job_key,
                    'the doomed worker to start the job')
    doomed.kill()

    survivor = workers(worker_env, 'worker-survivor')
    # The job stays on the board, claimed by a dead worker until the claim
    # expires; then the survivor takes it and reruns only the task that
    # was running when the first worker died.
    _wait_for_block(worker_env, survivor, job_key,
                    'the survivor to resume the job')
    _release(worker_env, job_key)
    wait_until(lambda: _board_jobs(worker_env) == 0, 'the job to finish')

    assert worker_flows.records(record_dir, job_key) == [
        ('first', doomed.pid),
        ('block-started', doomed.pid),
        ('block-started', survivor.pid),
        ('block-released', survivor.pid),
        ('last', survivor.pid)]
    assert worker_env['agent'].provisioning(
        'listeners', store['listener']['listener_id']) == ['ACTIVE']
    assert survivor.stop() == 0


def test_provider_agent_runs_jobs_until_exit_event(worker_env, pushed):
    # As octavia-driver-agent does: fork, call agent(exit_event), set the
    # event on shutdown.
    context = multiprocessing.get_context('fork')
    exit_event = context.Event()
    process = context.Process(target=agent.provider_agent,
                              args=(exit_event,))
    process.start()
    try:
        store = _listener_store(worker_env)
        jobboard.post_job('listener.create', store)
        listener_id = store['listener']['listener_id']
        wait_until(lambda: worker_env['agent'].provisioning(
            'listeners', listener_id) or not process.is_alive(),
            'the provider agent to run the job')
    finally:
        # A process that died while one of its threads waited on the event
        # never acknowledges set(), which would wait for it for good.
        if process.is_alive():
            exit_event.set()
        process.join(timeout=120)
    assert process.exitcode == 0
    assert worker_env['agent'].provisioning('listeners',
                                            listener_id) == ['ACTIVE']


def test_sigterm_hands_the_job_over_after_the_current_task(worker_env,
                                                           workers):
    record_dir = worker_env['record_dir']
    leaving = workers(worker_env, 'worker-leaving')
    store = _post_blocking_job(worker_env)
    job_key = store['job_key']
    _wait_for_block(worker_env, leaving, job_key,
                    'the first worker to start the job')
    staying = workers(worker_env, 'worker-staying')
    os.kill(leaving.pid, signal.SIGTERM)
    # Release the running task only once the worker has acted on the
    # signal: a task that ends before the worker handles SIGTERM is not its
    # last one, and the worker rightly goes on to the next.
    wait_until(lambda: (leaving.stopping()
                        or leaving.process.poll() is not None),
               'the first worker to stop its conductor')
    assert leaving.stopping(), leaving.log()
    # The running task completes; the flow suspends and its job goes back
    # to the board for the other worker, which runs only what is left.
    _release(worker_env, job_key)
    assert leaving.process.wait(timeout=120) == 0
    wait_until(lambda: _board_jobs(worker_env) == 0, 'the job to finish')
    assert worker_flows.records(record_dir, job_key) == [
        ('first', leaving.pid),
        ('block-started', leaving.pid),
        ('block-released', leaving.pid),
        ('last', staying.pid)]
    assert worker_env['agent'].provisioning(
        'listeners', store['listener']['listener_id']) == ['ACTIVE']
    assert staying.stop() == 0


def test_listener_statistics_reach_the_stats_socket(worker_env):
    stats = {'listeners': [{'id': uuidutils.generate_uuid(),
                            'active_connections': 3, 'bytes_in': 100,
                            'bytes_out': 200, 'request_errors': 0,
                            'total_connections': 7}]}
    status.StatusReporter().update_listener_statistics(stats)
    assert worker_env['agent'].stats_updates == [stats]
