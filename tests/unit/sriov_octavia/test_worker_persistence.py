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

import contextlib
import sqlite3
from unittest import mock

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from oslo_config import cfg
import pytest
from taskflow import engines
from taskflow import exceptions as tf_exc
from taskflow.patterns import linear_flow
from taskflow.persistence import models
from taskflow import states
from taskflow import task

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import persistence
from tests.unreachable import backlog_full


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([], project='octavia')
    conf.set_override('persistence_connection',
                      'sqlite:///%s' % (tmp_path / 'tf.sqlite'),
                      group='task_flow')
    return conf


def test_sqlite_schema_is_created_and_logbooks_persist(conf, tmp_path):
    book = models.LogBook('listener.create l-1')
    with persistence.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as connection:
            connection.save_logbook(book)
    # Another process would open the file anew.
    with persistence.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as connection:
            assert [b.name for b in connection.get_logbooks()] == [
                'listener.create l-1']
    with contextlib.closing(sqlite3.connect(tmp_path / 'tf.sqlite')) as db:
        assert db.execute('PRAGMA journal_mode').fetchone() == ('wal',)


def test_schema_upgrade_is_retried_when_another_process_races(conf):
    backend = mock.Mock()
    backend.get_connection.return_value.upgrade.side_effect = [
        tf_exc.StorageFailure('table logbooks already exists'), None]
    with mock.patch('time.sleep'):
        persistence._ensure_schema(backend, 'sqlite:///race-test')
    assert backend.get_connection.return_value.upgrade.call_count == 2


class _Made(task.Task):
    def execute(self):
        return 'made'

    def revert(self, *args, **kwargs):
        _Made.reverted = True


class _CallsAnUnreachableService(task.Task):
    def execute(self, address):
        # As openstacksdk does, through a keystoneauth session.
        ks_session.Session().get('http://%s:%d/' % address, timeout=0.5,
                                 connect_retries=0)


def test_a_failure_over_a_connect_timeout_is_stored_and_reverted(conf):
    # keystoneauth raises ConnectTimeout while handling urllib3's error,
    # whose arguments are connection objects: unstorable as they are, the
    # engine could not record the task's failure and never reverted.
    flow = linear_flow.Flow('create').add(_Made(),
                                          _CallsAnUnreachableService())
    _Made.reverted = False
    with backlog_full() as address, persistence.backend(conf) as backend:
        engine = engines.load(flow, store={'address': address},
                              backend=backend)
        with pytest.raises(ks_exceptions.ConnectTimeout):
            engine.run()

        assert engine.storage.get_flow_state() == states.REVERTED
        assert _Made.reverted
        with contextlib.closing(backend.get_connection()) as connection:
            [stored] = [atom for atom in connection.get_atoms_for_flow(
                engine.storage.flow_uuid) if atom.failure]
    assert stored.failure.check(ks_exceptions.ConnectTimeout)
    assert 'timed out' in stored.failure.exception_str


def test_storable_keeps_failures_that_are_json(conf):
    atom = {'name': 'a', 'failure': {'exc_args': ('words', 1), 'causes': []},
            'revert_failure': None}

    assert persistence.storable(dict(atom)) == atom
