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
"""The guest's PID 1: mounts the rest, then obeys the host's commands.

One JSON object a line each way over the virtio-serial port named
``PORT_NAME``. The guest announces itself with ``{"event": "ready"}``;
then each request ``{"op": ..., ...}`` gets one answer:

- ``run``: ``argv``, optional ``input`` and ``timeout`` → ``returncode``,
  ``stdout``, ``stderr``;
- ``spawn``: ``argv`` and ``log`` (a path) → ``pid``, for programs that
  outlive the request (an agent, a server);
- ``signal``: ``pid``, ``signum``, optional ``wait`` (seconds) → the exit
  code if it ended within ``wait``;
- ``poweroff``: answers, then powers the guest off.

A request that cannot be carried out gets ``{"error": ...}``. Only the
standard library is used: this runs before anything else is set up.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback

PORT_NAME = 'sriov-guest'
_LINUX_REBOOT_CMD_POWER_OFF = 0x4321FEDC
_MOUNTS = (
    ('proc', '/proc', 'proc', ''),
    ('sysfs', '/sys', 'sysfs', ''),
    ('dev', '/dev', 'devtmpfs', ''),
    ('devpts', '/dev/pts', 'devpts', 'ptmxmode=0666'),
    ('run', '/run', 'tmpfs', 'mode=0755'),
)


def _mount(source, target, fstype, options):
    libc = ctypes.CDLL(None, use_errno=True)
    os.makedirs(target, exist_ok=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0,
                  options.encode() or None) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'mount {fstype} on {target}: '
                             f'{os.strerror(error)}')


def _port():
    for name in sorted(os.listdir('/sys/class/virtio-ports')):
        with open(f'/sys/class/virtio-ports/{name}/name') as label:
            if label.read().strip() == PORT_NAME:
                return f'/dev/{name}'
    raise RuntimeError(f'no virtio-serial port named {PORT_NAME}')


def _prepare():
    for mount in _MOUNTS:
        _mount(*mount)
    socket.sethostname('sriov-guest')
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)


class Console:

    def __init__(self, reader, writer):
        self._reader = reader
        self._writer = writer
        self._children = {}
        self._poweroff = False

    def send(self, message):
        self._writer.write(json.dumps(message).encode() + b'\n')

    def serve(self):
        self.send({'event': 'ready', 'kernel': os.uname().release})
        for line in self._reader:
            self._reap_orphans()
            request = json.loads(line)
            operation = getattr(self, 'op_' + request.pop('op'), None)
            try:
                if operation is None:
                    raise ValueError('unknown operation')
                answer = operation(**request)
            except Exception as error:  # noqa: B902 - told to the host
                answer = {'error': f'{type(error).__name__}: {error}'}
            self.send(answer)
            if self._poweroff:
                return

    def op_run(self, argv, input=None, timeout=60, env=None):
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True,
            errors='replace', timeout=timeout, check=False,
            env=dict(os.environ, **(env or {})))
        return {'returncode': result.returncode, 'stdout': result.stdout,
                'stderr': result.stderr}

    def op_spawn(self, argv, log, env=None):
        with open(log, 'ab') as out:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, **(env or {})))
        self._children[child.pid] = child
        return {'pid': child.pid}

    def op_signal(self, pid, signum, wait=0):
        child = self._children.get(pid)
        if child is None:
            raise ValueError(f'{pid} was not spawned by this console')
        if child.poll() is None:
            child.send_signal(signum)
        try:
            returncode = child.wait(wait) if wait else child.poll()
        except subprocess.TimeoutExpired:
            returncode = None
        if returncode is not None:
            del self._children[pid]
        return {'returncode': returncode}

    def op_poweroff(self):
        self._poweroff = True
        return {'poweroff': True}

    def _reap_orphans(self):
        """Collect daemons that outlived their parent: PID 1's duty."""
        # Anywhere else (a unit test) the others' children are not ours.
        while os.getpid() == 1:
            try:
                info = os.waitid(os.P_ALL, 0,
                                 os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in self._children:
                return
            os.waitpid(info.si_pid, 0)


def main():
    _prepare()
    os.environ.setdefault('PATH', '/usr/local/sbin:/usr/local/bin:'
                                  '/usr/sbin:/usr/bin:/sbin:/bin')
    console = None
    try:
        # A virtio-serial port opens once: one descriptor, both ways.
        port = os.open(_port(), os.O_RDWR)
        with open(port, 'rb', closefd=False) as reader, \
                open(port, 'wb', buffering=0, closefd=False) as writer:
            console = Console(reader, writer)
            console.serve()
    except BaseException:
        # Printed now: the power-off below ends the guest before Python
        # would print it on its way out.
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        if console is not None:
            for child in console._children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            time.sleep(0.5)
        os.sync()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.reboot(_LINUX_REBOOT_CMD_POWER_OFF)
        # Only reached if the reboot call failed: PID 1 ending panics the
        # kernel, and qemu, started with -no-reboot, exits all the same.
        sys.exit(1)


if __name__ == '__main__':
    main()
