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
"""Octavia's transactions on SQLite queue for the lock instead of failing.

Octavia reads a row and then writes it in one transaction (the API's
test-and-set of a provisioning status, the driver-agent's status updates).
oslo.db begins SQLite transactions DEFERRED: the read takes a shared lock,
the write then asks for the reserved one. When the API and the driver-agent
do that at the same moment, SQLite sees a deadlock and fails one of them
with "database is locked" at once; its busy timeout never applies. MySQL,
Octavia's production database, locks rows and waits instead.

BEGIN IMMEDIATE takes the write lock before the first read, so the
transactions of every process queue on the busy timeout, one at a time.
Octavia also opens a second session inside a transaction of the same
thread (the API reads the flavor while its new load balancer is not yet
committed); that one begins DEFERRED, as it would otherwise wait for its
own thread's lock.
"""

import functools
import threading
import weakref

import sqlalchemy
from sqlalchemy import event

# How long a statement waits for another process's transaction (SQLite's
# default is 5 s; a loaded CI machine can hold the queue longer).
BUSY_TIMEOUT_MS = 60000
# oslo.db's own "begin" listener emits a plain BEGIN unless the connection
# carries this marker; it removes the marker on commit and rollback.
OSLO_DB_IN_TRANSACTION = 'in_transaction'


class _ThreadLocks(threading.local):
    """The connections of this thread that began with BEGIN IMMEDIATE."""

    def __init__(self):
        self.connections = weakref.WeakSet()

    def held(self):
        """Whether one of them still holds the write lock."""
        for conn in list(self.connections):
            if conn.closed or conn.invalidated:
                continue
            if conn.connection.dbapi_connection.in_transaction:
                return True
        return False


def serialise_transactions(database_file):
    """Make this process's transactions on ``database_file`` IMMEDIATE.

    Other SQLite files (taskflow's store) keep their DEFERRED transactions.
    Listeners on the Engine class run before those oslo.db adds to each
    engine, so this one begins the transaction and oslo.db's sees it begun.
    Returns a function that undoes it.
    """
    locks = _ThreadLocks()

    def ours(url):
        return (url.get_backend_name() == 'sqlite'
                and url.database == database_file)

    def begin_immediate(conn):
        if (not ours(conn.engine.url)
                or OSLO_DB_IN_TRANSACTION in conn.info):
            return
        conn.exec_driver_sql(f'PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}')
        if locks.held():
            conn.exec_driver_sql('BEGIN')
        else:
            conn.exec_driver_sql('BEGIN IMMEDIATE')
            locks.connections.add(conn)
        conn.info[OSLO_DB_IN_TRANSACTION] = True

    event.listen(sqlalchemy.engine.Engine, 'begin', begin_immediate)
    return functools.partial(event.remove, sqlalchemy.engine.Engine, 'begin',
                             begin_immediate)
