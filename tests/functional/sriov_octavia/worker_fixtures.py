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
"""Real redis-server, SQLite persistence and driver-agent sockets for the
worker's functional tests.

The driver-agent stand-in serves the same unix-socket protocol as
octavia-driver-agent (a decimal length, a newline, JSON; the answer framed
the same way), records every status and statistics update and answers get
requests from a load balancer the test describes.
"""

import json
import os
import shutil
import socketserver
import subprocess
import threading
import time

import pytest
import redis

from sriov_octavia_testbed import ports

REDIS_PORT = 62380
REDIS_SERVER = shutil.which('redis-server') or '/usr/bin/redis-server'


def _wait_until(predicate, what, timeout=60.0):
    # A bound so that a broken worker fails the test instead of hanging it;
    # nothing is asserted about how long it took.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail('gave up waiting for ' + what)


wait_until = _wait_until


def stop_process(process, timeout):
    """Stop ``process`` and return its exit code.

    SIGTERM first; SIGKILL if it is still there after ``timeout`` seconds.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    return process.returncode


class RedisServer(object):
    def __init__(self, directory, port=REDIS_PORT):
        self.port = port
        self.process = subprocess.Popen(
            [REDIS_SERVER, '--port', str(port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host='127.0.0.1', port=port)

        def _up():
            # The server answering must be this one: when the port is
            # taken (another test run's redis) ours exits, and the tests
            # would share the other's, which goes away with its run.
            assert self.process.poll() is None, (
                'redis-server could not serve port %d: is it taken?' % port)
            try:
                info = self.client.info('server')
            except redis.exceptions.ConnectionError:
                return False
            assert info['process_id'] == self.process.pid, (
                'port %d is served by another redis-server' % port)
            return True
        _wait_until(_up, 'redis-server on port %d' % port)

    def stop(self):
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)


_CLOSED = 'peer closed the socket'


def _recv(sock):
    size = b''
    while True:
        char = sock.recv(1)
        if not char:
            raise EOFError(_CLOSED)
        if char == b'\n':
            break
        size += char
    payload = b''
    while len(payload) < int(size):
        chunk = sock.recv(int(size) - len(payload))
        if not chunk:
            raise EOFError(_CLOSED)
        payload += chunk
    return json.loads(payload)


def _send(sock, data):
    payload = json.dumps(data).encode()
    sock.sendall(b'%d\n' % len(payload) + payload)


class DriverAgentSockets(object):
    """Status, stats and get sockets like octavia-driver-agent's."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.status_path = os.path.join(self.directory, 'status.sock')
        self.stats_path = os.path.join(self.directory, 'stats.sock')
        self.get_path = os.path.join(self.directory, 'get.sock')
        self.status_updates = []
        self.stats_updates = []
        self.loadbalancers = {}
        self._lock = threading.Lock()
        self._servers = []
        self._serve(self.status_path, self._on_status)
        self._serve(self.stats_path, self._on_stats)
        self._serve(self.get_path, self._on_get)

    def _serve(self, path, handle):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                _send(self.request, handle(_recv(self.request)))

        server = socketserver.ThreadingUnixStreamServer(path, Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._servers.append((server, thread))

    def _on_status(self, status):
        with self._lock:
            self.status_updates.append(status)
        return {'status_code': 200}

    def _on_stats(self, stats):
        with self._lock:
            self.stats_updates.append(stats)
        return {'status_code': 200}

    def _on_get(self, request):
        if request['object'] == 'loadbalancers':
            return self.loadbalancers.get(request['id'], {})
        return {}

    def provisioning(self, kind, obj_id):
        """Every provisioning_status reported for one object, in order."""
        with self._lock:
            return [record['provisioning_status']
                    for update in self.status_updates
                    for record in update.get(kind, [])
                    if record['id'] == obj_id]

    def close(self):
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join()


def worker_config(conf_dir, redis_port, sockets, db_path, board_name,
                  expiration=5):
    """Options for the tests' workers, as a dict and as an octavia.conf."""
    options = {
        'jobboard_backend_hosts': ['127.0.0.1'],
        'jobboard_backend_port': redis_port,
        'jobboard_name': board_name,
        'jobboard_expiration_time': expiration,
        'persistence_connection': 'sqlite:///' + str(db_path),
        'status_socket_path': sockets.status_path,
        'stats_socket_path': sockets.stats_path,
        'get_socket_path': sockets.get_path,
        'poll_interval': 0.1,
        'max_simultaneous_jobs': 1,
    }
    return options, write_worker_config(conf_dir, options)


# The worker options that are Octavia's own (its jobboard and persistence).
TASK_FLOW_OPTIONS = frozenset((
    'jobboard_backend_driver', 'jobboard_backend_hosts',
    'jobboard_backend_port', 'jobboard_expiration_time',
    'persistence_connection', 'engine', 'max_workers'))


def option_group(key):
    return 'task_flow' if key in TASK_FLOW_OPTIONS else 'sriov_worker'


def override(conf, options):
    for key, value in options.items():
        conf.set_override(key, value, group=option_group(key))


def clear_overrides(conf, options):
    for key in options:
        conf.clear_override(key, group=option_group(key))


def write_worker_config(conf_dir, options):
    """Write ``options`` as an octavia.conf, each in its group."""
    path = os.path.join(str(conf_dir), 'octavia.conf')
    sections = {}
    for key, value in options.items():
        if isinstance(value, list):
            value = ','.join(value)
        sections.setdefault(option_group(key), []).append(
            '%s = %s\n' % (key, value))
    with open(path, 'w') as conf_file:
        conf_file.write('[DEFAULT]\nuse_stderr = true\ndebug = true\n')
        for group, lines in sorted(sections.items()):
            conf_file.write('[%s]\n%s' % (group, ''.join(lines)))
    return path


def private_redis(tmp_path_factory, port):
    """A redis-server of one module's own on ``port``; a generator.

    For a module-scoped ``redis_server`` fixture of a module that may run
    beside another one using REDIS_PORT.
    """
    with ports.reserved([port]):
        server = RedisServer(tmp_path_factory.mktemp(f'redis-{port}'),
                             port=port)
        yield server
        server.stop()


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    with ports.reserved([REDIS_PORT]):
        server = RedisServer(tmp_path_factory.mktemp('redis'))
        yield server
        server.stop()


@pytest.fixture
def driver_agent(tmp_path_factory):
    # Unix socket paths must stay short: a directory of our own in /tmp.
    directory = tmp_path_factory.mktemp('twk-sock')
    sockets = DriverAgentSockets(directory)
    yield sockets
    sockets.close()
