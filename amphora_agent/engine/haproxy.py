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
"""One haproxy per load balancer, in master-worker mode.

The master (``-W``) stays up across reloads: SIGUSR2 makes it re-read the
stored configuration and start new workers, which take the listening
sockets over from the old ones (haproxy passes them itself in
master-worker mode), while the old workers finish the connections they
have. So a reload neither refuses new connections nor cuts established
ones.
"""

import os
import re
import shutil
import signal
import threading

from oslo_log import log as logging

from amphora_agent.engine import errors
from amphora_agent.engine import files
from amphora_agent.engine import process
from amphora_agent.engine import stats

LOG = logging.getLogger(__name__)

ACTIONS = ('start', 'stop', 'reload')
_VERSION = re.compile(r'version (\d+(?:\.\d+)*)', re.IGNORECASE)
# What haproxy needs of the data namespace. The backup of an
# active/standby pair binds VIPs it does not hold yet. PING health
# monitors run ping as haproxy's unprivileged user with no_new_privs set
# (haproxy sets it), so ping's file capability does not apply: it needs
# ICMP datagram sockets, which the range of groups allowed them opens (as
# systemd's defaults do on upstream's amphorae; a new namespace has none).
_NAMESPACE_SYSCTLS = ('net.ipv4.ip_nonlocal_bind=1',
                      'net.ipv6.ip_nonlocal_bind=1',
                      'net.ipv4.ping_group_range=0 2147483647')


class Haproxy:
    def __init__(self, layout, namespace, haproxy_cmd, command_timeout,
                 stop_timeout):
        self.layout = layout
        self.namespace = namespace
        self.haproxy_cmd = haproxy_cmd
        self.command_timeout = command_timeout
        self.stop_timeout = stop_timeout
        # Requests arrive on several threads; one change at a time keeps a
        # start from racing a delete of the same files.
        self._lock = threading.Lock()

    def version(self):
        """haproxy's version number (``2.6.12``), or None if it fails."""
        try:
            returncode, output = process.run(None, [self.haproxy_cmd, '-v'],
                                             self.command_timeout)
        except errors.CommandFailed as error:
            LOG.warning('Cannot learn the haproxy version: %s', error)
            return None
        found = _VERSION.search(output)
        return found.group(1) if returncode == 0 and found else None

    def _check(self, path):
        returncode, output = process.run(
            self.namespace, [self.haproxy_cmd, '-c', '-f', path],
            self.command_timeout)
        if returncode != 0:
            raise errors.ConfigRejected(
                'haproxy refused the configuration', output=output)
        return output

    def store(self, loadbalancer_id, text):
        """Check ``text`` with ``haproxy -c``; keep it if valid.

        Returns haproxy's output. An invalid configuration raises
        ConfigRejected and leaves the stored one as it was.
        """
        path = self.layout.haproxy_config(loadbalancer_id)
        with self._lock:
            candidate = files.candidate(path, text)
            try:
                output = self._check(candidate)
                files.accept(candidate, path)
            finally:
                files.remove(candidate)
        LOG.info('haproxy configuration of load balancer %s stored',
                 loadbalancer_id)
        return output

    def running_pid(self, loadbalancer_id):
        """The pid of the load balancer's haproxy master, or None."""
        return process.running_pid(
            self.layout.haproxy_pid_file(loadbalancer_id), self.haproxy_cmd)

    def _config(self, loadbalancer_id):
        path = self.layout.haproxy_config(loadbalancer_id)
        if not os.path.exists(path):
            raise errors.UnknownLoadBalancer(loadbalancer_id)
        return path

    def act(self, loadbalancer_id, action):
        """start, reload or stop; returns what was done, in words."""
        with self._lock:
            config = self._config(loadbalancer_id)
            if action == 'stop':
                return self._stop(loadbalancer_id)
            return self._start_or_reload(loadbalancer_id, config)

    def _start_or_reload(self, loadbalancer_id, config):
        # Whatever was asked, the stored configuration ends up serving:
        # "start" of a running haproxy reloads it, "reload" of a stopped
        # one starts it.
        pid = self.running_pid(loadbalancer_id)
        if pid:
            return self._reload(loadbalancer_id, pid)
        pid_file = self.layout.haproxy_pid_file(loadbalancer_id)
        files.remove(pid_file)
        returncode, output = process.run(
            self.namespace,
            ['sysctl', '-q', '-w'] + list(_NAMESPACE_SYSCTLS),
            self.command_timeout)
        if returncode != 0:
            LOG.warning('Cannot allow non-local binds and ICMP sockets in '
                        '%s: %s', self.namespace, output)
        returncode, output = process.run(
            self.namespace,
            [self.haproxy_cmd, '-W', '-D', '-p', pid_file, '-f', config],
            self.command_timeout)
        pid = process.wait_for_pid(pid_file, self.haproxy_cmd,
                                   self.command_timeout)
        if returncode != 0 or not pid:
            raise errors.CommandFailed('haproxy did not start',
                                       output=output)
        LOG.info('haproxy of load balancer %s started (pid %d)',
                 loadbalancer_id, pid)
        return f'haproxy started (pid {pid})'

    def _reload(self, loadbalancer_id, pid):
        # The master forks a worker with the new configuration and soft-stops
        # the old ones; a configuration that "haproxy -c" accepted can still
        # fail at start (the open-file limit its connection limits need, an
        # address it cannot bind), and then the master keeps the old workers
        # serving and says nothing on the agent's side.
        workers = process.children(pid)
        process.send_signal(pid, signal.SIGUSR2)
        if not process.wait_for_new_child(pid, workers,
                                          self.command_timeout):
            LOG.error('haproxy of load balancer %s (pid %d) kept its '
                      'previous configuration: the new one did not start',
                      loadbalancer_id, pid)
            raise errors.CommandFailed(
                'haproxy kept its previous configuration: the new one '
                'passed "haproxy -c" but did not start (a limit of the '
                'amphora, such as the open files the connection limits '
                'need, or an address it cannot bind)')
        LOG.info('haproxy of load balancer %s (pid %d) reloaded',
                 loadbalancer_id, pid)
        return f'haproxy (pid {pid}) reloaded'

    def _stop(self, loadbalancer_id):
        pid = self.running_pid(loadbalancer_id)
        # Without a pid file the check script no longer expects it to run.
        files.remove(self.layout.haproxy_pid_file(loadbalancer_id))
        if not pid:
            return 'haproxy was not running'
        process.terminate(pid, self.haproxy_cmd, self.stop_timeout)
        LOG.info('haproxy of load balancer %s (pid %d) stopped',
                 loadbalancer_id, pid)
        return f'haproxy (pid {pid}) stopped'

    def delete(self, loadbalancer_id):
        """Stop the load balancer's haproxy and forget its configuration."""
        with self._lock:
            directory = self.layout.loadbalancer_dir(loadbalancer_id)
            if not os.path.isdir(directory):
                return 'no such load balancer'
            details = self._stop(loadbalancer_id)
            shutil.rmtree(directory)
            files.remove(self.layout.stats_socket(loadbalancer_id))
        LOG.info('Load balancer %s deleted: %s', loadbalancer_id, details)
        return details

    def resume(self):
        """Start again every haproxy that was started but is not running.

        After a reboot (or a crash) the pid files of the load balancers
        that were started are still there, and nothing else brings them
        back: upstream's amphora has systemd units for that.
        """
        for loadbalancer_id in self.layout.loadbalancer_ids():
            pid_file = self.layout.haproxy_pid_file(loadbalancer_id)
            if not os.path.exists(pid_file) or self.running_pid(
                    loadbalancer_id):
                continue
            try:
                self.act(loadbalancer_id, 'start')
            except errors.EngineError as error:
                LOG.error('Cannot start haproxy of load balancer %s again: '
                          '%s %s', loadbalancer_id, error.message,
                          error.output)

    def verify(self):
        """Undo hand changes and restart what died; what was repaired."""
        repaired = []
        with self._lock:
            for loadbalancer_id in self.layout.loadbalancer_ids():
                path = self.layout.haproxy_config(loadbalancer_id)
                started = os.path.exists(
                    self.layout.haproxy_pid_file(loadbalancer_id))
                running = self.running_pid(loadbalancer_id)
                accepted = files.changed_by_hand(path)
                if accepted is not None:
                    files.write_atomically(path, accepted)
                    repaired.append(f'haproxy configuration of load '
                                    f'balancer {loadbalancer_id} changed')
                if started and not running:
                    repaired.append(f'haproxy of load balancer '
                                    f'{loadbalancer_id} not running')
                if started and (accepted is not None or not running):
                    self._start_or_reload(loadbalancer_id, path)
        return repaired

    def status(self, loadbalancer_id):
        """Frontends, backends and servers as haproxy reports them.

        Raises NotRunning when the load balancer has no running haproxy
        (or it has no stats socket where the controller renders it).
        """
        if not self.running_pid(loadbalancer_id):
            raise errors.NotRunning(
                f'load balancer {loadbalancer_id} has no running haproxy')
        return stats.parse(stats.show_stat(
            self.layout.stats_socket(loadbalancer_id),
            self.command_timeout))
