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
"""Start, find and stop one background process through a pid file.

The pid file records the process start time next to the pid, so a pid that
the kernel reused for somebody else's process is never taken for ours.
"""

import os
import signal
import subprocess
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class StartError(RuntimeError):
    """A service exited or did not become ready in time."""


def _start_time(pid):
    """Kernel start time of ``pid`` in clock ticks, None if it is gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after it.
    fields = stat.rsplit(')', 1)[1].split()
    if fields[0] == 'Z':
        return None
    return int(fields[19])


def _reap(pid):
    # Our own children stay zombies until waited for; other processes'
    # children are not ours to wait for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _kill_group(pid, signum):
    # The group id is the pid (start_new_session): this reaches the
    # workers a master forked, and nothing else.
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _group_alive(pid):
    _reap(pid)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    # A group whose only members are zombies is gone too.
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pid and _start_time(
                        int(entry)) is not None:
                    return True
            except OSError:
                continue
    return False


class Process:
    """One supervised process of a testbed instance."""

    def __init__(self, name, argv, run_dir, logs_dir, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.pid_file = os.path.join(run_dir, f'{name}.pid')
        self.log_file = os.path.join(logs_dir, f'{name}.log')

    def pid(self):
        """The pid of the running process, or None."""
        try:
            with open(self.pid_file) as f:
                pid, started = (int(v) for v in f.read().split())
        except (OSError, ValueError):
            return None
        _reap(pid)
        if _start_time(pid) != started:
            return None
        return pid

    def start(self):
        """Start the process unless it runs already; return its pid."""
        pid = self.pid()
        if pid:
            return pid
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.log_file, 'ab') as log:
            # A session of its own: the process and its workers form one
            # process group that stop() ends, and a terminal's Ctrl-C on
            # the caller does not reach them.
            child = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                start_new_session=True)
        started = _start_time(child.pid)
        if started is None:
            raise StartError(f'{self.name} exited at once; see '
                             f'{self.log_file}')
        with open(self.pid_file, 'w') as f:
            f.write(f'{child.pid} {started}\n')
        LOG.info('started %s (pid %d)', self.name, child.pid)
        return child.pid

    def stop(self, grace=10.0):
        """Stop the process (see ``stop_all``); True if it ran."""
        return bool(stop_all([self], grace=grace))

    def forget(self):
        """Drop the pid file (the process is gone)."""
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass

    def log_tail(self, lines=20):
        try:
            with open(self.log_file, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''


def stop_all(processes, grace=10.0):
    """Stop processes side by side; return those that were running.

    SIGTERM goes to each process alone, so a master shuts its workers down
    in its own order; after ``grace`` seconds, or once it is gone, whatever
    is left of its process group gets SIGKILL.
    """
    running = [(proc, proc.pid()) for proc in processes]
    running = [(proc, pid) for proc, pid in running if pid]
    for proc, pid in running:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while (any(proc.pid() for proc, _ in running)
           and time.monotonic() < deadline):
        time.sleep(0.1)
    for proc, pid in running:
        if proc.pid():
            LOG.warning('%s (pid %d) ignored SIGTERM for %.0f s, killing it',
                        proc.name, pid, grace)
        while _group_alive(pid):
            _kill_group(pid, signal.SIGKILL)
            time.sleep(0.05)
        LOG.info('stopped %s (pid %d)', proc.name, pid)
    for proc in processes:
        proc.forget()
    return [proc for proc, _ in running]


def wait_until(check, process, what, timeout):
    """Poll ``check()`` until true; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        # Alive first: a port answering for a process that died may be
        # somebody else's.
        if not process.pid():
            raise StartError(f'{process.name} exited before {what}; last '
                             f'log lines of {process.log_file}:\n'
                             f'{process.log_tail()}')
        if check():
            return
        if time.monotonic() > deadline:
            raise StartError(f'{process.name}: no {what} after {timeout} s; '
                             f'see {process.log_file}')
        time.sleep(0.2)
