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
"""keepalived for VRRP between the amphorae of a load balancer.

keepalived runs in the data namespace (where the VIP interface is) with
pid files of its own: amphorae of a test bed share a file system, and
keepalived's default pid files would let one amphora's keepalived refuse
to start because another's is running.
"""

import os
import signal
import threading

from oslo_log import log as logging

from amphora_agent.engine import errors
from amphora_agent.engine import files
from amphora_agent.engine import process

LOG = logging.getLogger(__name__)

ACTIONS = ('start', 'stop', 'reload')
_CHILDREN = ('vrrp', 'checkers', 'bfd')


class Keepalived:
    def __init__(self, layout, namespace, keepalived_cmd, command_timeout,
                 stop_timeout):
        self.layout = layout
        self.namespace = namespace
        self.keepalived_cmd = keepalived_cmd
        self.command_timeout = command_timeout
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()

    def store(self, text):
        """Check ``text`` with ``keepalived -t``; keep it if valid.

        The check runs in the data namespace, where the interfaces the
        configuration names are. Returns keepalived's output.
        """
        path = self.layout.keepalived_config
        with self._lock:
            candidate = files.candidate(path, text)
            try:
                returncode, output = process.run(
                    self.namespace,
                    [self.keepalived_cmd, '-t', '-f', candidate],
                    self.command_timeout)
                if returncode != 0:
                    raise errors.ConfigRejected(
                        'keepalived refused the configuration',
                        output=output)
                files.accept(candidate, path)
            finally:
                files.remove(candidate)
        LOG.info('keepalived configuration stored')
        return output

    def running_pid(self):
        return process.running_pid(self.layout.keepalived_pid_file(),
                                   self.keepalived_cmd)

    def act(self, action):
        """start, reload or stop; returns what was done, in words."""
        with self._lock:
            if action == 'stop':
                return self._stop()
            return self._start_or_reload()

    def _start_or_reload(self):
        config = self.layout.keepalived_config
        if not os.path.exists(config):
            raise errors.NoConfiguration(
                'no keepalived configuration uploaded yet')
        pid = self.running_pid()
        if pid:
            process.send_signal(pid, signal.SIGHUP)
            LOG.info('keepalived (pid %d) reloaded', pid)
            return f'keepalived (pid {pid}) reloaded'
        pid_file = self.layout.keepalived_pid_file()
        pid_files = [pid_file] + [self.layout.keepalived_pid_file(child)
                                  for child in _CHILDREN]
        # keepalived exits at once, with status 0 and not a word, while any
        # of its pid files names a live process: a killed keepalived's own
        # child not reaped yet, or its pid reused since. None of them is a
        # running keepalived here, so none of them is of any use.
        for path in pid_files:
            files.remove(path)
        argv = [self.keepalived_cmd, '-f', config]
        for option, path in zip(('-p', '-r', '-c', '-b'), pid_files):
            argv += [option, path]
        returncode, output = process.run(self.namespace, argv,
                                         self.command_timeout)
        pid = process.wait_for_pid(pid_file, self.keepalived_cmd,
                                   self.command_timeout)
        if returncode != 0 or not pid:
            raise errors.CommandFailed('keepalived did not start',
                                       output=output)
        LOG.info('keepalived started (pid %d)', pid)
        return f'keepalived started (pid {pid})'

    def resume(self):
        """Start keepalived again if it was started and is not running."""
        if not os.path.exists(self.layout.keepalived_pid_file()) or (
                self.running_pid()):
            return
        try:
            self.act('start')
        except errors.EngineError as error:
            LOG.error('Cannot start keepalived again: %s %s', error.message,
                      error.output)

    def verify(self):
        """Undo hand changes and restart it if it died; what was repaired."""
        repaired = []
        with self._lock:
            path = self.layout.keepalived_config
            started = os.path.exists(self.layout.keepalived_pid_file())
            running = self.running_pid()
            accepted = files.changed_by_hand(path)
            if accepted is not None:
                files.write_atomically(path, accepted)
                repaired.append('keepalived configuration changed')
            if started and not running:
                repaired.append('keepalived not running')
            if started and (accepted is not None or not running):
                self._start_or_reload()
        return repaired

    def _stop(self):
        pid = self.running_pid()
        # Without a pid file, resume() leaves it stopped.
        files.remove(self.layout.keepalived_pid_file())
        if not pid:
            return 'keepalived was not running'
        # keepalived removes the VIPs it holds as it stops, so the peer
        # takes them over.
        process.terminate(pid, self.keepalived_cmd, self.stop_timeout)
        LOG.info('keepalived (pid %d) stopped', pid)
        return f'keepalived (pid {pid}) stopped'
