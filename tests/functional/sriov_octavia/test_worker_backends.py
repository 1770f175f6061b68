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
"""The worker on the jobboards an operator may choose instead of Redis.

A real ZooKeeper (Debian's package, run by the test) and a real etcd serve
the jobboard; the flows, the persistence and the driver-agent sockets are
the same as in test_worker_jobboard.py.
"""

import contextlib
import os
import shutil
import socket
import subprocess

from oslo_config import cfg
from oslo_utils import uuidutils
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import jobboard
from sriov_octavia.worker import persistence
from tests.functional.sriov_octavia import test_worker_jobboard as redis_tests
from tests.functional.sriov_octavia import worker_fixtures
from tests.functional.sriov_octavia import worker_flows
from tests.functional.sriov_octavia.worker_fixtures import driver_agent  # noqa

pytestmark = pytest.mark.services

ZOOKEEPER_PORT = 61181
ETCD_PORT = 61379
ETCD_PEER_PORT = 61380
ZOOKEEPER_CLASSPATH = '/etc/zookeeper/conf:/usr/share/java/zookeeper.jar'
wait_until = worker_fixtures.wait_until


def _listening(port):
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(('127.0.0.1', port)) == 0


class _Server(object):
    """A server process the test started, stopped by its PID."""

    def __init__(self, argv, port, log_path):
        self.port = port
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(argv, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        wait_until(lambda: _listening(port) or
                   self.process.poll() is not None,
                   '%s on port %d' % (argv[0], port))
        assert self.process.poll() is None, open(log_path).read()

    def stop(self):
        worker_fixtures.stop_process(self.process, 30)
        self._log.close()


def _zookeeper(directory):
    java = shutil.which('java')
    if not java or not os.path.exists('/usr/share/java/zookeeper.jar'):
        pytest.fail('ZooKeeper is not installed: run tools/install.sh')
    return _Server(
        [java, '-cp', ZOOKEEPER_CLASSPATH,
         '-Dzookeeper.admin.enableServer=false',
         # taskflow's board asks the server's version with "envi", one of
         # the four-letter commands ZooKeeper 3.5+ refuses by default.
         '-Dzookeeper.4lw.commands.whitelist=envi,ruok,srvr',
         'org.apache.zookeeper.server.ZooKeeperServerMain',
         str(ZOOKEEPER_PORT), str(directory / 'data')],
        ZOOKEEPER_PORT, directory / 'zookeeper.log')


def _etcd(directory):
    etcd = shutil.which('etcd')
    if not etcd:
        pytest.fail('etcd is not installed: run tools/install.sh')
    client_url = 'http://127.0.0.1:%d' % ETCD_PORT
    return _Server(
        [etcd, '--data-dir', str(directory / 'data'),
         '--listen-client-urls', client_url,
         '--advertise-client-urls', client_url,
         '--listen-peer-urls', 'http://127.0.0.1:%d' % ETCD_PEER_PORT],
        ETCD_PORT, directory / 'etcd.log')


BACKENDS = {
    jobboard.ZOOKEEPER: _zookeeper,
    jobboard.ETCD: _etcd,
}


@pytest.fixture(scope='module', params=sorted(BACKENDS))
def backend(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param.split('_')[0])
    server = BACKENDS[request.param](directory)
    yield request.param, server.port
    server.stop()


@pytest.fixture
def board_env(tmp_path, backend, driver_agent):  # noqa: F811
    """As test_worker_jobboard.worker_env, on ZooKeeper or etcd."""
    driver, port = backend
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    options, _ = worker_fixtures.worker_config(
        tmp_path, port, driver_agent, tmp_path / 'tf.sqlite',
        'tbk-' + uuidutils.generate_uuid()[:8])
    options['jobboard_backend_driver'] = driver
    path = worker_fixtures.write_worker_config(tmp_path, options)
    worker_fixtures.override(conf, options)
    record_dir = tmp_path / 'records'
    record_dir.mkdir()
    yield {'conf': conf, 'conf_file': path, 'record_dir': str(record_dir),
           'tmp': tmp_path, 'options': options, 'agent': driver_agent}
    worker_fixtures.clear_overrides(conf, options)


def _board_jobs(env):
    with persistence.backend(env['conf']) as backend:
        with jobboard.open_board(env['conf'], backend) as board:
            return jobboard.jobs_on_board(board)


def test_job_runs_to_active_and_leaves_the_board(board_env):
    store = redis_tests._listener_store(board_env)
    listener_id = store['listener']['listener_id']
    agent = board_env['agent']
    with redis_tests.worker_thread(board_env['conf']):
        jobboard.post_factory_job(worker_flows.recording_flow,
                                  'test.recording ' + store['job_key'],
                                  store)
        wait_until(lambda: agent.provisioning('listeners', listener_id),
                   'the listener status')
        wait_until(lambda: _board_jobs(board_env) == 0,
                   'the job to be consumed')
    assert agent.provisioning('listeners', listener_id) == ['ACTIVE']
    assert [what for what, _ in worker_flows.records(
        board_env['record_dir'], store['job_key'])] == ['work']


def test_a_new_connection_counts_the_jobs_already_posted(board_env):
    # Nobody runs them, so they stay on the board; a board opened after the
    # posts, as a worker starting later opens one, must see them.
    for _ in range(2):
        store = redis_tests._listener_store(board_env)
        jobboard.post_factory_job(worker_flows.recording_flow,
                                  'test.recording ' + store['job_key'],
                                  store)
    assert _board_jobs(board_env) == 2


def test_killed_worker_job_resumes_on_another(board_env):
    record_dir = board_env['record_dir']
    started = []

    def start(name):
        worker = redis_tests.WorkerProcess(board_env, name)
        started.append(worker)
        wait_until(lambda: worker.ready() or
                   worker.process.poll() is not None,
                   'worker %s to start' % name)
        assert worker.process.poll() is None, worker.log()
        return worker

    try:
        doomed = start('worker-doomed')
        store = redis_tests._post_blocking_job(board_env)
        job_key = store['job_key']
        redis_tests._wait_for_block(board_env, doomed, job_key,
                                    'the doomed worker to start the job')
        doomed.kill()
        survivor = start('worker-survivor')
        # ZooKeeper drops the dead worker's claim with its session, etcd
        # with its lease; either way the survivor takes the job over.
        redis_tests._wait_for_block(board_env, survivor, job_key,
                                    'the survivor to resume the job',
                                    timeout=120)
        redis_tests._release(board_env, job_key)
        wait_until(lambda: ('last', survivor.pid) in worker_flows.records(
            record_dir, job_key), 'the job to finish')
        wait_until(lambda: _board_jobs(board_env) == 0,
                   'the job to leave the board')
        assert [what for what, _ in worker_flows.records(
            record_dir, job_key)] == ['first', 'block-started',
                                      'block-started', 'block-released',
                                      'last']
        assert board_env['agent'].provisioning(
            'listeners', store['listener']['listener_id']) == ['ACTIVE']
    finally:
        for worker in started:
            worker.stop()
