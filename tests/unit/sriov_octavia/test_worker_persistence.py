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


class _ScriptedCursor:
    """Answers the journal-mode pragmas as a racing database would."""

    def __init__(self, modes, refusals):
        self.modes, self.refusals, self.executed = list(modes), refusals, []

    def execute(self, sql):
        self.executed.append(sql)
        if sql == 'PRAGMA journal_mode=WAL' and self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError('database is locked')
        self._row = (self.modes.pop(0),) if 'journal_mode' in sql else None

    def fetchone(self):
        return self._row

    def close(self):
        pass


def test_a_refused_switch_to_wal_is_tried_again_until_it_is_wal():
    # Two processes open a new database at once, both read "delete" and
    # both switch: SQLite refuses one at once (no busy wait), and the other
    # one's switch is then found done.
    cursor = _ScriptedCursor(['delete', 'wal'], refusals=1)

    persistence._sqlite_pragmas(mock.Mock(cursor=lambda: cursor), None)

    assert cursor.executed == [
        'PRAGMA journal_mode', 'PRAGMA journal_mode=WAL',
        'PRAGMA journal_mode', 'PRAGMA synchronous=NORMAL']


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
