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
"""Running the engine's programs in the data namespace, and finding them.

haproxy and keepalived daemonize: the agent is not their parent and keeps
no handle on them, only the pid files they write. A pid counts as the
program only while /proc says it is that program and not a zombie, so a
stale pid file reused by another process is never signalled.
"""

import os
import signal
import subprocess
import tempfile
import time

from oslo_log import log as logging

from amphora_agent.engine import errors

LOG = logging.getLogger(__name__)

_POLL_INTERVAL = 0.05


def in_namespace(namespace, argv):
    if not namespace:
        return list(argv)
    return ['ip', 'netns', 'exec', namespace] + list(argv)


def run(namespace, argv, timeout):
    """Run ``argv`` to completion; ``(returncode, combined output)``.

    The output goes to a file rather than a pipe: a program that
    daemonizes hands the pipe to its daemon, and reading the pipe to its
    end would wait for the daemon to exit.
    """
    argv = in_namespace(namespace, argv)
    with tempfile.TemporaryFile(mode='w+', errors='replace') as output:
        try:
            completed = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                       stdout=output,
                                       stderr=subprocess.STDOUT,
                                       timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            raise errors.CommandFailed(
                f'{argv[0]} did not finish within {timeout} s') from error
        except OSError as error:
            raise errors.CommandFailed(
                f'cannot run {argv[0]}: {error}') from error
        output.seek(0)
        return completed.returncode, output.read().strip()


def read_pid(path):
    try:
        with open(path) as pid_file:
            return int(pid_file.read().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def is_program(pid, program):
    """Whether ``pid`` is a live (not zombie) process of ``program``."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            content = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # "<pid> (<comm>) <state> ..."; comm is cut to 15 characters.
    comm = content[content.index('(') + 1:content.rindex(')')]
    state = content[content.rindex(')') + 2:].split()[0]
    return comm == os.path.basename(program)[:15] and state != 'Z'


def running_pid(pid_file, program):
    """The pid in ``pid_file`` if it is a running ``program``, else None."""
    pid = read_pid(pid_file)
    if pid and is_program(pid, program):
        return pid
    return None


def wait_for_pid(pid_file, program, timeout):
    """Wait until ``pid_file`` names a running ``program``; its pid."""
    deadline = time.monotonic() + timeout
    while True:
        pid = running_pid(pid_file, program)
        if pid or time.monotonic() >= deadline:
            return pid
        time.sleep(_POLL_INTERVAL)


def children(pid):
    """The pids of the processes ``pid`` started that still run."""
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as listing:
            return {int(child) for child in listing.read().split()}
    except (FileNotFoundError, ProcessLookupError):
        return set()


def wait_for_new_child(pid, known, timeout):
    """Wait until ``pid`` has a child not in ``known``; True if it came."""
    deadline = time.monotonic() + timeout
    while not children(pid) - known:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _wait_gone(pid, program, timeout):
    deadline = time.monotonic() + timeout
    while is_program(pid, program):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def send_signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def terminate(pid, program, timeout):
    """SIGTERM ``pid``, SIGKILL it after ``timeout`` s; wait until gone."""
    if not send_signal(pid, signal.SIGTERM):
        return
    if _wait_gone(pid, program, timeout):
        return
    LOG.warning('%s (pid %d) ignored SIGTERM for %d s, killing it',
                program, pid, timeout)
    send_signal(pid, signal.SIGKILL)
    if not _wait_gone(pid, program, timeout):
        raise errors.CommandFailed(
            f'{program} (pid {pid}) survived SIGKILL for {timeout} s')
