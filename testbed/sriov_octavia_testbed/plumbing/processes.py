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
"""Start a program inside a namespace and stop exactly that program later.

A process is identified by its PID together with its start time (field 22
of ``/proc/<pid>/stat``), so that a PID recorded before an emulator restart
can never lead to signalling an unrelated process that got the same PID.
"""

import os
import signal
import subprocess
import time

from oslo_log import log as logging

from sriov_octavia_testbed import netlab

LOG = logging.getLogger(__name__)

_POLL_INTERVAL = 0.05


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name, or None."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            content = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself hold spaces or
    # parentheses; everything after the last ')' is plain fields.
    return content[content.rindex(')') + 2:].split()


def start_time(pid):
    """The start time (clock ticks since boot) of ``pid``, or None."""
    fields = _stat_fields(pid)
    # Field 22 overall; the fields list starts at field 3 (the state).
    return int(fields[19]) if fields else None


def is_running(pid, started):
    """Whether ``pid`` is the process that started at ``started``.

    A zombie has finished: it only waits for its parent to collect it.
    """
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != 'Z' and int(fields[19]) == started


def start(namespace, argv, log_path):
    """Start ``argv`` in ``namespace`` with its output appended to a log.

    ``ip netns exec`` replaces itself with the program, so the PID returned
    is the program's. The program gets its own session: a testbed service
    stopping (or being interrupted) must not take the amphorae with it.
    Returns the Popen object.
    """
    with open(log_path, 'ab') as log:
        return netlab.popen(namespace, argv, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT,
                            close_fds=True, start_new_session=True)


def _wait_gone(pid, started, timeout):
    deadline = time.monotonic() + timeout
    while is_running(pid, started):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def stop(pid, started, grace=10.0, child=None):
    """SIGTERM the process, SIGKILL it after ``grace`` seconds.

    Does nothing when ``pid`` is no longer the process started at
    ``started``. ``child`` is the Popen object when this process started
    it, so that it is reaped rather than left a zombie. Returns True when
    a signal was sent.
    """
    if not is_running(pid, started):
        _reap(child)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, started, grace):
            LOG.warning('Process %s ignored SIGTERM for %s s, killing it',
                        pid, grace)
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, started, grace)
    except ProcessLookupError:
        pass
    _reap(child)
    return True


def _reap(child):
    if child is not None:
        child.wait()
