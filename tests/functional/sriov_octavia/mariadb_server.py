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
"""A private MariaDB server (Debian's mariadb-server) for the tests.

Its own data directory, initialised by mariadb-install-db, its own unix
socket and a free TCP port on 127.0.0.1: it neither needs nor touches the
system's MariaDB service. The test connects as an ``octavia`` user over TCP
with a password, as controllers do; the fixture administers the server as
root over the socket. Stopped by its PID and deleted after the module.
"""

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import pymysql
import pytest

from tests.functional.sriov_octavia import worker_fixtures

USER = 'octavia'
# The slowest start seen on a loaded 2-core VM is a few seconds; this bound
# only keeps a broken server from hanging the test run.
START_TIMEOUT = 120.0
_START_ATTEMPTS = 3
_PORT_IN_USE = 'Address already in use'

# For the bootstrap run of mariadb-install-db and for the server alike.
_SERVER_OPTIONS = (
    # Small files: initialising the data directory writes them out.
    '--innodb-buffer-pool-size=32M',
    '--innodb-log-file-size=16M',
    # Linux AIO contexts are a machine-wide limit (fs.aio-max-nr) that
    # other servers on a CI host may have used up.
    '--innodb-use-native-aio=0',
    # The character set Debian's configuration gives the server, which
    # --no-defaults leaves out.
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    '--skip-name-resolve',
)


def _binary(*names):
    for name in names:
        for path in (shutil.which(name), os.path.join('/usr/sbin', name),
                     os.path.join('/usr/bin', name)):
            if path and os.access(path, os.X_OK):
                return path
    return None


def binaries():
    """``(server, install_db)``, or None when MariaDB is not installed."""
    server = _binary('mariadbd', 'mysqld')
    install_db = _binary('mariadb-install-db', 'mysql_install_db')
    if server and install_db:
        return server, install_db
    return None


def _free_port():
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _tail(path, lines=30):
    try:
        with open(path, errors='replace') as log:
            return ''.join(log.readlines()[-lines:])
    except OSError:
        return '(no log)'


class MariaDBServer(object):
    def __init__(self, server, install_db, directory):
        self.directory = str(directory)
        self.datadir = os.path.join(self.directory, 'data')
        self.socket = os.path.join(self.directory, 'mysqld.sock')
        self.error_log = os.path.join(self.directory, 'error.log')
        self.password = secrets.token_hex(12)
        self.port = None
        self.process = None
        # The server refuses to run as root unless told to; as anybody
        # else the option names the user it already runs as.
        self._user = pwd.getpwuid(os.getuid()).pw_name
        self._server = server
        self._install_db = install_db

    def start(self):
        self._install(self._install_db)
        for _attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            if self._start():
                break
            # Another process bound the port between our probe and the
            # server's bind: take another one.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.error_log)
        else:
            pytest.fail('mariadbd found its port taken %d times' %
                        _START_ATTEMPTS)
        self._admin('CREATE USER %s@%s IDENTIFIED BY %s',
                    (USER, '127.0.0.1', self.password))

    def _install(self, install_db):
        os.makedirs(os.path.join(self.directory, 'tmp'))
        done = subprocess.run(
            [install_db, '--no-defaults', '--datadir=' + self.datadir,
             '--user=' + self._user,
             # root without a password, on a socket in a directory only
             # its owner may enter: the fixture needs no client plugin.
             '--auth-root-authentication-method=normal',
             '--skip-test-db'] + list(_SERVER_OPTIONS),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=START_TIMEOUT)
        if done.returncode:
            pytest.fail('%s failed:\n%s' % (install_db, done.stdout))

    def _start(self):
        """Start the server; False when its port was taken."""
        self.process = subprocess.Popen(
            [self._server, '--no-defaults', '--datadir=' + self.datadir,
             '--socket=' + self.socket, '--port=%d' % self.port,
             '--bind-address=127.0.0.1', '--user=' + self._user,
             '--pid-file=' + os.path.join(self.directory, 'mysqld.pid'),
             '--log-error=' + self.error_log,
             '--tmpdir=' + os.path.join(self.directory, 'tmp'),
             '--skip-log-bin',
             # Every task state change is a commit; the tests kill
             # workers, never the server, so a commit need not wait for
             # the disk.
             '--innodb-flush-log-at-trx-commit=2'] + list(_SERVER_OPTIONS),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if _PORT_IN_USE in _tail(self.error_log):
                    return False
                pytest.fail('mariadbd exited with %d:\n%s' % (
                    self.process.returncode, _tail(self.error_log)))
            # Ready is when it answers, which the log would tell later.
            try:
                self._admin('SELECT 1')
                return True
            except pymysql.err.OperationalError:
                time.sleep(0.05)
        self.stop()
        pytest.fail('mariadbd did not answer within %d s:\n%s' % (
            START_TIMEOUT, _tail(self.error_log)))

    def _admin(self, statement, args=None):
        with contextlib.closing(pymysql.connect(
                unix_socket=self.socket, user='root',
                connect_timeout=10)) as conn:
            with conn.cursor() as cursor:
                cursor.execute(statement, args)
                return cursor.fetchall()

    def version(self):
        return self._admin('SELECT VERSION()')[0][0]

    def url(self, database):
        return 'mysql+pymysql://%s:%s@127.0.0.1:%d/%s' % (
            USER, self.password, self.port, database)

    def database(self, prefix='tf'):
        """A new empty database the octavia user owns; its URL."""
        name = '%s_%s' % (prefix, secrets.token_hex(6))
        self._admin('CREATE DATABASE `%s`' % name)
        self._admin('GRANT ALL ON `%s`.* TO %%s@%%s' % name,
                    (USER, '127.0.0.1'))
        return self.url(name)

    def stop(self):
        if self.process is not None:
            worker_fixtures.stop_process(self.process, 60)


@pytest.fixture(scope='module')
def mariadb_server():
    found = binaries()
    if found is None:
        pytest.skip('MariaDB is not installed (mariadbd and '
                    'mariadb-install-db, Debian package mariadb-server): '
                    'run tools/install.sh')
    # Not in pytest's deeper tmp dir: a unix socket path has at most 107
    # bytes.
    directory = tempfile.mkdtemp(prefix='sriov-mariadb-')
    server = MariaDBServer(*found, directory=directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
