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
"""sriov_octavia_testbed.sqlite_locking on real SQLite files.

Through oslo.db's engines, which Octavia's API and driver-agent use.
"""

import contextlib
import multiprocessing
import sqlite3
import threading

from oslo_db.sqlalchemy import engines
import pytest
import sqlalchemy

from sriov_octavia_testbed import sqlite_locking

WRITERS = 4
INCREMENTS = 150


def _database(path):
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)')
        db.execute('INSERT INTO counter VALUES (1, 0)')
        db.commit()
    return str(path)


def _increment(engine):
    """Octavia's pattern: read a row, then write it, in one transaction."""
    with engine.begin() as conn:
        n = conn.execute(sqlalchemy.text(
            'SELECT n FROM counter WHERE id = 1')).scalar()
        conn.execute(sqlalchemy.text(
            'UPDATE counter SET n = :n WHERE id = 1'), {'n': n + 1})


def _count(path):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute('SELECT n FROM counter').fetchone()[0]


@contextlib.contextmanager
def _write_lock(path):
    """Another process's writer between its first write and its commit."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute('BEGIN IMMEDIATE')
        yield
        db.execute('COMMIT')


@pytest.fixture
def serialised(tmp_path):
    """A database whose transactions this process serialises."""
    path = _database(tmp_path / 'octavia.sqlite')
    undo = sqlite_locking.serialise_transactions(path)
    yield path
    undo()


def _increment_in_thread(engine):
    """Starts an increment; its outcome: ``done`` and ``errors``."""
    done, errors = threading.Event(), []

    def run():
        try:
            _increment(engine)
        except sqlalchemy.exc.OperationalError as e:
            errors.append(e)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done, errors


def test_without_it_a_read_then_write_fails_at_once(tmp_path):
    # The failure the API met in CI: SQLite does not wait when a
    # transaction that has read asks for the lock another writer holds.
    path = _database(tmp_path / 'plain.sqlite')
    engine = engines.create_engine('sqlite:///' + path)
    with _write_lock(path):
        thread, done, errors = _increment_in_thread(engine)
        assert done.wait(30)
    thread.join()
    assert 'database is locked' in str(errors[0])
    assert _count(path) == 0


def test_a_read_then_write_waits_for_another_writer(serialised):
    engine = engines.create_engine('sqlite:///' + serialised)
    with _write_lock(serialised):
        thread, done, errors = _increment_in_thread(engine)
        assert not done.wait(1.0)
    thread.join(timeout=30)
    assert done.is_set() and not errors
    assert _count(serialised) == 1


def test_a_second_session_of_the_same_thread_reads_at_once(serialised):
    # Octavia's API reads the flavor in a new session while its load
    # balancer insert is not committed yet.
    engine = engines.create_engine('sqlite:///' + serialised)
    with engine.begin() as outer:
        outer.execute(sqlalchemy.text('UPDATE counter SET n = 5'))
        with engine.begin() as inner:
            assert inner.execute(sqlalchemy.text(
                'SELECT n FROM counter')).scalar() == 0
    assert _count(serialised) == 5


def test_another_thread_of_the_same_process_queues(serialised):
    engine = engines.create_engine('sqlite:///' + serialised)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text('SELECT n FROM counter')).scalar()
        thread, done, errors = _increment_in_thread(engine)
        assert not done.wait(1.0)
        conn.execute(sqlalchemy.text('UPDATE counter SET n = n + 10'))
    thread.join(timeout=30)
    assert done.is_set() and not errors
    assert _count(serialised) == 11


def _other_writer_can_begin(path, engine):
    """Whether another connection can take the write lock.

    Asked inside a transaction of ``engine`` that has only read.
    """
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text('SELECT n FROM counter')).scalar()
        with contextlib.closing(sqlite3.connect(
                path, timeout=0, isolation_level=None)) as other:
            try:
                other.execute('BEGIN IMMEDIATE')
            except sqlite3.OperationalError:
                return False
            other.execute('ROLLBACK')
            return True


def test_the_write_lock_is_taken_when_the_transaction_begins(serialised):
    engine = engines.create_engine('sqlite:///' + serialised)
    assert not _other_writer_can_begin(serialised, engine)


def test_other_databases_keep_deferred_transactions(serialised, tmp_path):
    # taskflow's store lives in the same processes.
    other = _database(tmp_path / 'taskflow.sqlite')
    engine = engines.create_engine('sqlite:///' + other)
    assert _other_writer_can_begin(other, engine)


def _increments(path, failures):
    engine = engines.create_engine('sqlite:///' + path)
    for _ in range(INCREMENTS):
        try:
            _increment(engine)
        except sqlalchemy.exc.OperationalError:
            failures.put(1)
    engine.dispose()


def test_processes_writing_at_once_lose_no_update(serialised):
    # Forked like octavia-driver-agent's listeners: they inherit it.
    context = multiprocessing.get_context('fork')
    failures = context.SimpleQueue()
    writers = [context.Process(target=_increments,
                               args=(serialised, failures))
               for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0] * WRITERS
    assert failures.empty()
    assert _count(serialised) == WRITERS * INCREMENTS
