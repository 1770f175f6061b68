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
"""The amphora image's part: its first boot and the agent its unit runs.

The agent starts as the image's unit starts it from the files its boot
request's user data carried (``cloud_init``), in a file system view of its
own (``amphora_init``), in the amphora's root namespace.
"""

import configparser
import ipaddress
import os
import socket
import ssl
import sys
import time

from sriov_octavia.amphora import bootstrap
from sriov_octavia_testbed.plumbing import cloud_init
from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import processes

AGENT_EXECUTABLE = 'amphora-sriov-agent'
# The image's contract (elements/amphora-sriov-agent): where the agent's
# configuration is, and the directory of the image's own settings.
AGENT_CONF = bootstrap.AGENT_CONF
AGENT_CONF_DIR = bootstrap.AGENT_CONF_DIR
AGENT_PORT = 9443
DATA_NAMESPACE = bootstrap.DATA_NAMESPACE
# What this platform's amphora image knows of its hardware: its "VFs" are
# veth ends (a real image finds real VFs through their physical function).
IMAGE_SETTINGS = {'emulated-vfs.conf': {'amphora_agent': {
    'vf_link_kinds': 'veth'}}}
_POLL_INTERVAL = 0.2


def agent_url(ip, port=AGENT_PORT):
    host = f'[{ip}]' if ipaddress.ip_address(ip).version == 6 else ip
    return 'https://%s:%d' % (host, port)


class Agents:
    """The agents of the amphorae, found through their records."""

    def __init__(self, records, certificates, executable=None,
                 stop_grace=10.0):
        self._records = records
        self._certificates = certificates
        # The agent installed beside the running interpreter: the testbed
        # runs from the project's virtualenv, which is not on PATH.
        self.executable = executable or os.path.join(
            os.path.dirname(sys.executable), AGENT_EXECUTABLE)
        self._stop_grace = stop_grace
        # Agents started by this process, kept to reap them when stopped.
        self._children = {}

    def first_boot(self, record, user_data):
        """cloud-init's files, the image's settings, then the agent."""
        server_id = record['server_id']
        console = record['agent']['log_file']
        written = []
        if user_data:
            try:
                written = cloud_init.write_files(
                    user_data, self._records.root(server_id))
            except cloud_init.UserDataError as error:
                _console(console, f'cloud-init: {error}')
        _console(console, f'cloud-init wrote {written or "nothing"}')
        for name, sections in IMAGE_SETTINGS.items():
            config = configparser.ConfigParser(interpolation=None)
            config.read_dict(sections)
            path = self._records.root(server_id, AGENT_CONF_DIR, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as settings:
                config.write(settings)
        self.spawn(record)

    def configured(self, server_id):
        """Whether the amphora has the agent's configuration file."""
        return os.path.exists(self._records.root(server_id, AGENT_CONF))

    def _settings(self, server_id):
        """(data namespace name, port) from the agent's configuration."""
        config = configparser.ConfigParser(interpolation=None)
        config.read(self._records.root(server_id, AGENT_CONF))
        return (config.get('amphora_agent', 'network_namespace',
                           fallback=DATA_NAMESPACE),
                config.getint('haproxy_amphora', 'bind_port',
                              fallback=AGENT_PORT))

    def spawn(self, record):
        """Start the agent as the image's unit would, if it would."""
        server_id = record['server_id']
        agent = record['agent']
        if not self.configured(server_id):
            # The unit's ConditionPathExists: no configuration, no agent.
            _console(agent['log_file'],
                     f'{AGENT_CONF} does not exist: the agent does not '
                     f'start')
            agent.update(pid=None, start_time=None)
            self._records.save(record)
            return
        data_name, port = self._settings(server_id)
        agent['url'] = agent_url(record['mgmt']['ip'], port)
        child = processes.start(
            record['namespace'],
            [sys.executable, '-m',
             'sriov_octavia_testbed.plumbing.amphora_init',
             '--root', self._records.root(server_id),
             '--netns', f"{record['data_namespace']}:{data_name}", '--',
             self.executable, '--config-file', AGENT_CONF,
             '--config-dir', AGENT_CONF_DIR],
            agent['log_file'])
        self._children[child.pid] = child
        agent.update(pid=child.pid,
                     start_time=processes.start_time(child.pid))
        self._records.save(record)

    def stop(self, record):
        """Stop the recorded agent; True if it was running."""
        pid = record['agent']['pid']
        if not pid:
            return False
        return processes.stop(pid, record['agent']['start_time'],
                              grace=self._stop_grace,
                              child=self._children.pop(pid, None))

    def running(self, server_id):
        agent = self._records.get(server_id)['agent']
        return bool(agent['pid']) and processes.is_running(
            agent['pid'], agent['start_time'])

    def wait(self, server_id, timeout=60.0):
        """Wait until the agent completes a TLS handshake on its mgmt IP.

        The handshake is the controller's: its client certificate, and the
        agent's certificate checked against the CA (the name it carries is
        the controller's to check), so a certificate mix-up shows here
        rather than in the first API call. Raises PlumbingError, with the
        end of the agent's log, if the agent exits or does not answer
        within ``timeout`` seconds.
        """
        record = self._records.get(server_id)
        address = (record['mgmt']['ip'], self._settings(server_id)[1])
        context = ssl.create_default_context(
            cafile=self._certificates.ca_cert)
        context.check_hostname = False
        context.load_cert_chain(self._certificates.agent_client_cert)
        deadline = time.monotonic() + timeout
        while True:
            if not self.running(server_id):
                raise errors.PlumbingError(
                    f'the agent of amphora {server_id} is not running:\n'
                    f'{_log_tail(record)}')
            try:
                with socket.create_connection(address, timeout=2) as sock:
                    with context.wrap_socket(sock,
                                             server_hostname=address[0]):
                        return
            except ssl.SSLCertVerificationError as error:
                # Retrying cannot fix a wrong certificate.
                raise errors.PlumbingError(
                    f'the agent of amphora {server_id} presents a '
                    f'certificate that does not verify: {error}') from error
            except OSError as error:
                if time.monotonic() >= deadline:
                    raise errors.PlumbingError(
                        f'the agent of amphora {server_id} does not answer '
                        f'on {address} ({error}):\n'
                        f'{_log_tail(record)}') from error
            time.sleep(_POLL_INTERVAL)


def _console(path, line):
    with open(path, 'a') as console:
        console.write(f'{line}\n')


def _log_tail(record, lines=20):
    path = record['agent'].get('log_file')
    if not path or not os.path.exists(path):
        return '(no agent log)'
    with open(path, errors='replace') as log:
        return ''.join(log.readlines()[-lines:])
