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
"""Flow persistence: the SQL database holding taskflow's logbooks.

Every task's state and result is written there while a flow runs, so the
worker that takes over the job of a dead worker continues the flow where it
stopped instead of running finished tasks again.
"""

import contextlib
import sqlite3
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging
from oslo_serialization import jsonutils
import sqlalchemy
from taskflow import exceptions as tf_exc
from taskflow.persistence.backends import impl_sqlalchemy
from taskflow.persistence import models

LOG = logging.getLogger(__name__)

# Schemas this process has already brought up to date: the migration check
# costs a round of queries, a post or a worker start needs it once.
_UPGRADED = set()
_UPGRADE_LOCK = threading.Lock()
_UPGRADE_ATTEMPTS = 5
# Seconds a process waits for another one's schema upgrade on MySQL.
_UPGRADE_LOCK_TIMEOUT = 300
# MySQL's longest user lock name.
_LOCK_NAME_LENGTH = 64

# Octavia's [database] options taskflow's engine takes, as Octavia's own
# taskflow persistence passes them. Not max_retries: octavia-api posts jobs
# through this backend too, and a request must not wait minutes for a
# database that is down; a worker that cannot reach it exits, for its
# supervisor to restart it.
_DATABASE_OPTIONS = (
    ('max_pool_size', 'max_pool_size'),
    ('max_overflow', 'max_overflow'),
    ('pool_timeout', 'pool_timeout'),
    # MySQL closes connections idle longer than its wait_timeout, and
    # proxies in front of a Galera cluster do sooner: recycle them first.
    ('connection_recycle_time', 'idle_timeout'),
    # As oslo.db sets it on Octavia's own database: a value too large for
    # its column fails the write instead of being cut short, which would
    # leave a flow state that cannot be resumed.
    ('mysql_sql_mode', 'mysql_sql_mode'),
)


# Seconds a connection waits for a writer (SQLite's busy timeout), and
# for another one to release a new database while both switch it to WAL.
_BUSY_TIMEOUT = 30


def _sqlite_pragmas(dbapi_connection, connection_record):
    cursor = dbapi_connection.cursor()
    # Every task state change is a commit. With the default rollback
    # journal each one waits for fsync (30 ms and more on a busy VM disk);
    # in WAL mode with synchronous=NORMAL a commit survives a crash of any
    # worker process and only an OS crash may lose the last ones. WAL also
    # lets workers read flow state while another one writes.
    # Switching the journal mode takes an exclusive lock without waiting
    # for it: only the first connection to a new database switches it (WAL
    # is persistent), later ones only read it. Two processes opening a new
    # database at once both try; the one refused finds it switched by the
    # other once the lock is gone. A file system without WAL support
    # answers the mode it kept instead of refusing: that one is kept.
    deadline = time.monotonic() + _BUSY_TIMEOUT
    cursor.execute('PRAGMA journal_mode')
    while cursor.fetchone()[0].lower() != 'wal':
        try:
            cursor.execute('PRAGMA journal_mode=WAL')
            break
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            cursor.execute('PRAGMA journal_mode')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.close()


def _sqlite_engine(url):
    # taskflow opens file SQLite without a pool: a new database connection,
    # and a WAL checkpoint when it closes, for every statement. A pool of
    # open connections avoids both.
    engine = sqlalchemy.create_engine(
        url, connect_args={'check_same_thread': False,
                           # Workers and API processes share the file: wait
                           # for a writer rather than fail at once.
                           'timeout': _BUSY_TIMEOUT})
    sqlalchemy.event.listen(engine, 'connect', _sqlite_pragmas)
    return engine


def _json(value):
    try:
        jsonutils.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _without_arguments(failure):
    """A failure dict without its exceptions' arguments, causes included."""
    return dict(failure, exc_args=(),
                causes=[_without_arguments(cause)
                        for cause in failure.get('causes') or ()])


def storable(atom):
    """``atom`` (an atom detail's dict) with failures SQL can store.

    A failure keeps the arguments of every exception in its chain. One
    raised while handling a transport error (keystoneauth's ConnectFailure
    over urllib3's connect timeout, for instance) carries connection
    objects, which are no JSON: taskflow would fail to record the task's
    end, hand the job back and run the flow again, over and over, instead
    of reverting it. Such a failure is stored without the arguments; its
    exception types, message and traceback text stay.
    """
    for key in ('failure', 'revert_failure'):
        if atom.get(key) and not _json(atom[key]):
            LOG.warning('Storing the %s of atom %s without its exception '
                        'arguments, which are no JSON.', key, atom['name'])
            atom[key] = _without_arguments(atom[key])
    return atom


def backend_options(conf):
    """taskflow's backend configuration from ``conf``.

    The URL is Octavia's ``[task_flow] persistence_connection``; the pool
    of a database server follows Octavia's ``[database]`` options when
    they are registered (octavia's config module does on the global
    CONF).
    """
    options = {'connection': conf.task_flow.persistence_connection}
    for option, key in _DATABASE_OPTIONS:
        try:
            value = conf.database[option]
        except (cfg.NoSuchOptError, KeyError):
            continue
        if value is not None:
            options[key] = value
    return options


@contextlib.contextmanager
def _server_lock(engine, name):
    """Hold MySQL's user lock ``name`` in a session of its own."""
    with engine.connect() as conn:
        try:
            got = conn.execute(
                sqlalchemy.text('SELECT GET_LOCK(:name, :timeout)'),
                {'name': name, 'timeout': _UPGRADE_LOCK_TIMEOUT}).scalar()
        except sqlalchemy.exc.SQLAlchemyError:
            tf_exc.raise_with_cause(tf_exc.StorageFailure,
                                    'Failed taking lock %s' % name)
        if got != 1:
            raise tf_exc.StorageFailure(
                'Timed out waiting for lock %s: another process has been '
                'upgrading the flow persistence schema for %d seconds' %
                (name, _UPGRADE_LOCK_TIMEOUT))
        try:
            yield
        finally:
            # The connection goes back to the pool, not away: the lock
            # would stay with it.
            try:
                conn.execute(sqlalchemy.text('SELECT RELEASE_LOCK(:name)'),
                             {'name': name})
            except sqlalchemy.exc.SQLAlchemyError:
                # A session that is gone took its lock with it.
                LOG.warning('Could not release lock %s.', name,
                            exc_info=True)


class _Connection(impl_sqlalchemy.Connection):
    """taskflow's SQL connection, storing every failure it is given."""

    def upgrade(self):
        if self._engine.dialect.name != 'mysql':
            return super(_Connection, self).upgrade()
        # MySQL commits every DDL statement on its own: processes running
        # taskflow's migrations at once (workers starting together,
        # octavia-api posting its first job) fail on each other's tables,
        # or apply a migration another one has half done. A server lock
        # per database makes them take turns; the later ones find the
        # schema up to date.
        name = ('sriov_octavia.persistence.%s' %
                self._engine.url.database)[:_LOCK_NAME_LENGTH]
        with _server_lock(self._engine, name):
            return super(_Connection, self).upgrade()

    def _insert_atom_details(self, conn, ad, parent_uuid):
        value = storable(ad.to_dict())
        value['parent_uuid'] = parent_uuid
        value['atom_type'] = models.atom_detail_type(ad)
        conn.execute(
            sqlalchemy.insert(self._tables.atomdetails).values(**value))

    def _update_atom_details(self, conn, ad, e_ad):
        e_ad.merge(ad)
        conn.execute(
            sqlalchemy.update(self._tables.atomdetails)
            .where(self._tables.atomdetails.c.uuid == e_ad.uuid)
            .values(storable(e_ad.to_dict())))


class SQLAlchemyBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """taskflow's SQL backend, made cheap per read and write of flow state.

    taskflow asks its backend for a new connection object for every read or
    write of flow state, and each one builds its own table metadata, so
    SQLAlchemy cannot reuse a compiled statement: on a small job that was
    most of the run time. The connection object holds only the (thread
    safe) engine and those tables, and closing it releases nothing, so one
    serves every thread.
    """

    def __init__(self, conf):
        url = sqlalchemy.engine.make_url(conf['connection'])
        self._sqlite = (url.get_backend_name() == 'sqlite' and
                        url.database not in (None, '', ':memory:'))
        engine = _sqlite_engine(url) if self._sqlite else None
        super(SQLAlchemyBackend, self).__init__(conf, engine=engine)
        self._shared = None
        self._shared_lock = threading.Lock()

    def get_connection(self):
        with self._shared_lock:
            if self._shared is None:
                # taskflow's own validates the engine, once per backend.
                super(SQLAlchemyBackend, self).get_connection()
                self._shared = _Connection(self, self._upgrade_lock)
            return self._shared

    def close(self):
        with self._shared_lock:
            self._shared = None
        super(SQLAlchemyBackend, self).close()
        if self._sqlite:
            # An engine handed to taskflow is not disposed by taskflow.
            self.engine.dispose()


def _ensure_schema(backend, url):
    with _UPGRADE_LOCK:
        if url in _UPGRADED:
            return
        for attempt in range(1, _UPGRADE_ATTEMPTS + 1):
            try:
                with contextlib.closing(backend.get_connection()) as conn:
                    # taskflow's own alembic migrations create or upgrade
                    # the tables.
                    conn.upgrade()
                break
            except tf_exc.StorageFailure:
                # Another process (a worker, the API posting) may be
                # creating the same tables right now; once it is done the
                # upgrade finds nothing left to do.
                if attempt == _UPGRADE_ATTEMPTS:
                    raise
                LOG.warning('Flow persistence schema upgrade failed '
                            '(attempt %d), retrying.', attempt,
                            exc_info=True)
                time.sleep(attempt * 0.5)
        _UPGRADED.add(url)
        LOG.debug('Flow persistence schema is up to date.')


@contextlib.contextmanager
def backend(conf):
    """The persistence backend with an up-to-date schema; closed on exit.

    The URL is Octavia's ``[task_flow] persistence_connection``: SQLite
    (tests, a single controller) or MySQL/MariaDB (``mysql+pymysql://``).
    The first use in a process creates or upgrades the schema.
    """
    options = backend_options(conf)
    url = options['connection']
    persistence = SQLAlchemyBackend(options)
    try:
        _ensure_schema(persistence, url)
        yield persistence
    finally:
        persistence.close()
