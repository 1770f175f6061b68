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
"""Worker processes sharing their flow persistence: SQLite and MariaDB.

Production controllers keep the flows' state in MySQL/MariaDB, as
Octavia's own ``[task_flow] persistence_connection`` does; the tests run
the same scenarios on a SQLite file and on a real MariaDB server
(mariadb_server.py), with the real Redis jobboard and driver-agent sockets
of test_worker_jobboard.py.
"""

import multiprocessing
import os

from alembic import migration as alembic_migration
from alembic import script as alembic_script
from oslo_config import cfg
import pytest
import sqlalchemy
from taskflow.persistence.backends.sqlalchemy import migration

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import persistence
from tests.functional.sriov_octavia import test_worker_jobboard as redis_tests
from tests.functional.sriov_octavia import worker_fixtures
from tests.functional.sriov_octavia import worker_flows
from tests.functional.sriov_octavia.mariadb_server import mariadb_server  # noqa
from tests.functional.sriov_octavia.test_worker_jobboard import claim_expiry  # noqa
from tests.functional.sriov_octavia.test_worker_jobboard import worker_env  # noqa
from tests.functional.sriov_octavia.test_worker_jobboard import workers  # noqa
from tests.functional.sriov_octavia.worker_fixtures import driver_agent  # noqa

pytestmark = pytest.mark.services

wait_until = worker_fixtures.wait_until
SQLITE = 'sqlite'
MARIADB = 'mariadb'
# A Redis of this module's own: test_worker_jobboard.py's, on
# worker_fixtures.REDIS_PORT, may be running beside it (another session).
REDIS_PORT = 62384


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    yield from worker_fixtures.private_redis(tmp_path_factory, REDIS_PORT)


@pytest.fixture(params=[SQLITE, MARIADB])
def persistence_url(request, tmp_path):
    """A new, empty flow persistence; MariaDB's server only when asked."""
    if request.param == SQLITE:
        return 'sqlite:///' + str(tmp_path / 'tf.sqlite')
    return request.getfixturevalue('mariadb_server').database()


@pytest.fixture
def shared_env(worker_env, persistence_url):  # noqa: F811
    """worker_env, the flow persistence of its workers at persistence_url.

    The test process, posting and inspecting, uses the same one.
    """
    options = worker_env['options']
    options['persistence_connection'] = persistence_url
    worker_fixtures.override(worker_env['conf'],
                             {'persistence_connection': persistence_url})
    worker_env['conf_file'] = worker_fixtures.write_worker_config(
        worker_env['tmp'], options)
    return worker_env


def _flow_states(conf):
    """``{job name: {task name: state}}`` of the flows persisted now."""
    return {book.name: {atom.name: atom.state
                        for flow in book for atom in flow}
            for book in redis_tests._logbooks(conf)}


def _blocked_state(states, store):
    book = states['test.blocking ' + store['job_key']]
    return book['first'], book['block'], book['last']


def test_two_workers_share_the_persistence(shared_env,
                                           workers):  # noqa: F811
    env = shared_env
    pair, blocked, quick = redis_tests.start_shared_jobs(env, workers, 4)
    # Each worker's progress is in the one database, where any worker
    # (and this process) reads it.
    states = _flow_states(env['conf'])
    for store in blocked:
        assert _blocked_state(states, store) == (
            'SUCCESS', 'RUNNING', 'PENDING')

    redis_tests.finish_shared_jobs(env, pair, blocked, quick)
    # Finished jobs leave no flow state behind, whichever worker ran them.
    wait_until(lambda: _flow_states(env['conf']) == {},
               'the finished flows to leave the persistence')
    for worker in pair:
        assert worker.stop() == 0


# The survivor takes the job over once the dead worker's claim expires.
@pytest.mark.parametrize('claim_expiry', [redis_tests.SHORT_CLAIM_EXPIRY])
def test_killed_worker_job_resumes_from_the_persistence(
        shared_env, workers):  # noqa: F811
    env = shared_env
    record_dir = env['record_dir']
    doomed = workers(env, 'worker-doomed')
    store = redis_tests._post_blocking_job(env)
    job_key = store['job_key']
    redis_tests._wait_for_block(env, doomed, job_key,
                                'the doomed worker to start the job')
    assert _blocked_state(_flow_states(env['conf']), store) == (
        'SUCCESS', 'RUNNING', 'PENDING')
    doomed.kill()

    survivor = workers(env, 'worker-survivor')
    # Once the dead worker's claim expires the survivor takes the job and
    # reads where the flow stood from the persistence: the finished task
    # does not run again, the one that was running does.
    redis_tests._wait_for_block(env, survivor, job_key,
                                'the survivor to resume the job')
    redis_tests._release(env, job_key)
    wait_until(lambda: redis_tests._board_jobs(env) == 0,
               'the job to finish')
    assert worker_flows.records(record_dir, job_key) == [
        ('first', doomed.pid),
        ('block-started', doomed.pid),
        ('block-started', survivor.pid),
        ('block-released', survivor.pid),
        ('last', survivor.pid)]
    assert env['agent'].provisioning(
        'listeners', store['listener']['listener_id']) == ['ACTIVE']
    wait_until(lambda: _flow_states(env['conf']) == {},
               'the finished flow to leave the persistence')
    assert survivor.stop() == 0


def _upgrade(url, barrier):
    backend = persistence.SQLAlchemyBackend({'connection': url})
    # Connected before the barrier, so that the upgrades start together.
    connection = backend.get_connection()
    barrier.wait(timeout=60)
    connection.upgrade()
    backend.close()


def test_processes_upgrading_a_new_mariadb_schema_take_turns(
        mariadb_server):  # noqa: F811
    # Workers and octavia-api processes starting together all upgrade the
    # schema; MySQL's DDL is no transaction, so unserialised migrations
    # fail on each other's tables. Each process's first attempt must
    # succeed, without the retries that cover SQLite.
    url = mariadb_server.database()
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(3)
    processes = [context.Process(target=_upgrade, args=(url, barrier))
                 for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0]

    # taskflow's alembic migrations made the schema, not create_all.
    script = alembic_script.ScriptDirectory(
        os.path.join(os.path.dirname(migration.__file__), 'alembic'))
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            revision = alembic_migration.MigrationContext.configure(
                conn).get_current_revision()
    finally:
        engine.dispose()
    assert revision == script.get_current_head()


def test_mariadb_pool_follows_octavias_database_options(
        mariadb_server):  # noqa: F811
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    conf.set_override('persistence_connection', mariadb_server.database(),
                      group='task_flow')
    try:
        with persistence.backend(conf) as backend:
            engine = backend.engine
            assert engine.dialect.driver == 'pymysql'
            assert engine.pool.size() == conf.database.max_pool_size
            assert engine.pool.timeout() == conf.database.pool_timeout
    finally:
        conf.clear_override('persistence_connection', group='task_flow')
