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
"""haproxy's ``show stat`` over its stats socket, as the API reports it.

``show stat`` answers CSV: a header line ``# pxname,svname,...`` and one
row per frontend (svname FRONTEND), backend (svname BACKEND) and server.
A ``listen`` section appears both as a frontend and a backend.
"""

import csv
import socket

from amphora_agent.engine import errors

_FRONTEND_COUNTERS = ('scur', 'stot', 'bin', 'bout', 'ereq')
# haproxy's "type" column: 0 frontend, 1 backend, 2 server, 3 listener.
_SERVER = '2'


def show_stat(socket_path, timeout):
    """The raw ``show stat`` answer of the haproxy behind ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stats:
            stats.settimeout(timeout)
            stats.connect(socket_path)
            stats.sendall(b'show stat\n')
            chunks = []
            # haproxy closes the connection after answering one command.
            while True:
                chunk = stats.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as error:
        raise errors.NotRunning(
            f'haproxy stats socket {socket_path} does not answer: '
            f'{error}') from error
    return b''.join(chunks).decode('utf-8', errors='replace')


def _count(value):
    return int(value) if value else 0


def parse(text):
    """``{"frontends": {...}, "backends": {...}}`` from ``show stat`` CSV."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith('# '):
        raise errors.EngineError('haproxy answered "show stat" with no CSV '
                                 'header', output=text[:500])
    lines[0] = lines[0][2:]
    frontends = {}
    backends = {}
    servers = {}
    for row in csv.DictReader(line for line in lines if line):
        proxy, name = row['pxname'], row['svname']
        if name == 'FRONTEND':
            frontends[proxy] = dict(
                {'status': row['status']},
                **{key: _count(row[key]) for key in _FRONTEND_COUNTERS})
        elif name == 'BACKEND':
            backends[proxy] = {'status': row['status']}
        elif row['type'] == _SERVER:
            servers.setdefault(proxy, {})[name] = {
                'status': row['status'],
                'check_status': row['check_status']}
    for proxy, backend in backends.items():
        backend['servers'] = servers.get(proxy, {})
    return {'frontends': frontends, 'backends': backends}
