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
"""Keep the kernel from giving a testbed's ports to outgoing connections.

Linux takes the local port of an outgoing connection from
``net.ipv4.ip_local_port_range`` (32768-60999 by default): a client
connection that happens to hold a testbed's port when the service starts
makes its bind fail ("Address already in use"). The test instances and the
benchmarks therefore have their ports outside that range. Ports listed in
``net.ipv4.ip_local_reserved_ports`` are never picked that way either,
while a service can still bind them: a testbed reserves its ports while it
is up, which covers an instance an operator puts inside the range, though
not from a connection that held one before ``up``.

Several testbeds (pytest-xdist workers) change the list at once: each
change is a read and a write under a lock file. Only the ports a testbed
added are taken out again.
"""

import contextlib
import fcntl
import os
import tempfile

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

RESERVED_PORTS = '/proc/sys/net/ipv4/ip_local_reserved_ports'
_LOCK_NAME = 'sriov-octavia-reserved-ports.lock'


def _lock_path():
    directory = '/run/lock' if os.path.isdir('/run/lock') else (
        tempfile.gettempdir())
    return os.path.join(directory, _LOCK_NAME)


@contextlib.contextmanager
def _locked():
    with open(_lock_path(), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def parse(text):
    """The ports of a list such as ``"8000-8002,9000"``."""
    ports = set()
    for item in text.strip().split(','):
        if not item:
            continue
        first, _, last = item.partition('-')
        ports.update(range(int(first), int(last or first) + 1))
    return ports


def render(ports):
    """The shortest list of ``ports``: ``{1, 2, 3, 7}`` is ``"1-3,7"``."""
    ranges = []
    for port in sorted(ports):
        if ranges and ranges[-1][1] == port - 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return ','.join(str(first) if first == last else f'{first}-{last}'
                    for first, last in ranges)


def current(path=RESERVED_PORTS):
    """The ports reserved now."""
    with open(path) as reserved:
        return parse(reserved.read())


def _change(update, path):
    with _locked():
        before = current(path)
        after = update(before)
        if after != before:
            with open(path, 'w') as new:
                # A newline even for none: an empty write changes nothing.
                new.write(render(after) + '\n')
        return before


def reserve(ports, path=RESERVED_PORTS):
    """Reserve ``ports``; return those that were not reserved yet.

    Without the right to change the list (not root, a read-only /proc) the
    ports stay as they are, with a warning: only the rare collision
    remains possible.
    """
    ports = set(ports)
    try:
        before = _change(lambda reserved: reserved | ports, path)
    except OSError as error:
        LOG.warning('Cannot reserve ports %s against outgoing connections: '
                    '%s', render(ports), error)
        return set()
    return ports - before


def release(ports, path=RESERVED_PORTS):
    """Take ``ports`` (those ``reserve`` returned) out of the list again."""
    ports = set(ports)
    if not ports:
        return
    try:
        _change(lambda reserved: reserved - ports, path)
    except OSError as error:
        LOG.warning('Cannot release reserved ports %s: %s', render(ports),
                    error)


@contextlib.contextmanager
def reserved(ports, path=RESERVED_PORTS):
    """``ports`` reserved for the time of the block."""
    added = reserve(ports, path)
    try:
        yield
    finally:
        release(added, path)
