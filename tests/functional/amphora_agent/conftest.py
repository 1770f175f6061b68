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
"""Fixtures for the amphora agent's functional tests.

Certificates come from testbed.certs; the agent runs as the real console
script in a subprocess, filtering a network namespace the test creates,
and is stopped by its PID.
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import types

import pytest
import requests

from amphora_agent.engine import layout
from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs
from sriov_octavia_testbed import netlab

AGENT = os.path.join(sys.prefix, 'bin', 'amphora-sriov-agent')
# Ports 19440-19459 belong to the agent API tests: the in-process servers
# use the lower half, the subprocess agents the upper half.
IN_PROCESS_PORTS = range(19440, 19450)
AGENT_PORTS = range(19450, 19460)
STARTUP_DEADLINE = 60
STOP_DEADLINE = 30
# Two runs of these tests at once (two people, two terminals) must not
# share namespaces: the prefix carries this run's PID.
NAMESPACE_PREFIX = f'tapi-{os.getpid()}'


def free_port(ports):
    """The first port of ``ports`` nothing listens on (IPv4 or IPv6)."""
    for port in ports:
        try:
            for family, host in ((socket.AF_INET, '127.0.0.1'),
                                 (socket.AF_INET6, '::')):
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    # As the agent does: connections it closed linger in
                    # TIME_WAIT and must not make the port look taken.
                    probe.setsockopt(socket.SOL_SOCKET,
                                     socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError(f'ports {ports.start}-{ports.stop - 1} all in use')


def tls_connection(pki, port):
    """A TLS socket to an agent on 127.0.0.1, with the client certificate."""
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client)
    plain = socket.create_connection(('127.0.0.1', port), 30)
    return context.wrap_socket(plain, server_hostname='127.0.0.1')


@pytest.fixture(scope='session')
def pki(tmp_path_factory):
    """A CA with a server and a client certificate, and a foreign CA."""
    path = tmp_path_factory.mktemp('pki')
    ca = certs.CertificateAuthority.create(str(path / 'ca.pem'),
                                           'tapi controller CA')
    foreign = certs.CertificateAuthority.create(str(path / 'foreign.pem'),
                                                'tapi foreign CA')
    return types.SimpleNamespace(
        ca=ca.path,
        server=ca.issue_server(str(path / 'server.pem'),
                               hostnames=['localhost'],
                               ips=['127.0.0.1', '::1']),
        client=ca.issue_client(str(path / 'client.pem'), 'controller'),
        foreign_client=foreign.issue_client(str(path / 'foreign-client.pem'),
                                            'intruder'))


class PortTaken(AssertionError):
    """The agent exited because its port was taken after we chose it."""


class AgentProcess:
    """The ``amphora-sriov-agent`` console script run as a subprocess."""

    def __init__(self, workdir, pki, namespace, port, name='agent',
                 host='127.0.0.1', max_body=4096, read_timeout=30):
        self.workdir = workdir
        self.pki = pki
        self.host = host
        self.port = port
        # Agents of one test share the state file, as an amphora's agent
        # does across restarts.
        self.state_file = os.path.join(workdir, 'firewall-state.json')
        self.log_file = os.path.join(workdir, f'{name}.log')
        self.config_file = os.path.join(workdir, f'{name}.conf')
        self.ping_wrapper = os.path.join(workdir, 'ping-wrapper.sh')
        with open(self.config_file, 'w') as conf:
            conf.write(
                '[DEFAULT]\n'
                'debug = true\n'
                '[amphora_agent]\n'
                f'agent_server_ca = {pki.ca}\n'
                f'agent_server_cert = {pki.server}\n'
                f'network_namespace = {namespace}\n'
                f'firewall_state_file = {self.state_file}\n'
                # Not the host's /var/lib/octavia.
                f'ping_wrapper_path = {self.ping_wrapper}\n'
                'vf_link_kinds = veth\n'
                f'max_request_body_size = {max_body}\n'
                f'agent_request_read_timeout = {read_timeout}\n'
                '[haproxy_amphora]\n'
                f'bind_host = {host}\n'
                f'bind_port = {port}\n')
        self.process = None
        self.returncode = None

    @property
    def url(self):
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'https://{host}:{self.port}'

    def request(self, method, path, cert=None, **kwargs):
        kwargs.setdefault('timeout', 30)
        return requests.request(method, self.url + path,
                                cert=cert or self.pki.client,
                                verify=self.pki.ca, **kwargs)

    def start(self):
        with open(self.log_file, 'ab') as log:
            self.process = subprocess.Popen(
                [AGENT, '--config-file', self.config_file],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            if self.process.poll() is not None:
                log = self.log()
                error = (PortTaken if 'Cannot listen on' in log
                         else AssertionError)
                raise error(f'agent exited with {self.process.returncode}:'
                            f'\n{log}')
            try:
                self.request('GET', '/1.0/info', timeout=5)
                return self
            except requests.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def remove_engine_files(self):
        """Remove the engine's files, kept outside ``workdir``.

        They live in a short directory of the agent's own under /run, where
        haproxy's socket paths fit; an agent restarted in the same test
        finds them again, so only the test's end removes them.
        """
        shutil.rmtree(layout.default_base_path(self.state_file),
                      ignore_errors=True)

    def run_to_exit(self):
        """Run an agent expected to give up at start; return its code."""
        with open(self.log_file, 'ab') as log:
            return subprocess.run(
                [AGENT, '--config-file', self.config_file], stdout=log,
                stderr=subprocess.STDOUT, timeout=STARTUP_DEADLINE,
                check=False).returncode

    def stop(self, signum=signal.SIGTERM):
        """Signal the agent by PID and return its exit code."""
        if self.process is None:
            return self.returncode
        self.process.send_signal(signum)
        try:
            self.returncode = self.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process = None
        return self.returncode

    def log(self):
        with open(self.log_file, errors='replace') as log:
            return log.read()

    def state(self):
        with open(self.state_file) as state:
            return json.load(state)


def agent_api(agent, pki):
    """An AgentClient of ``agent`` (a context manager), without retries."""
    return agent_client.AgentClient(agent.url, pki.client, pki.ca,
                                    retries=0)


@pytest.fixture
def api(lab, pki):
    """The AgentClient of the agent of the test module's ``lab`` fixture.

    For the engine tests, whose module-scoped ``lab`` (engine_lab) holds
    the agent they drive.
    """
    with agent_api(lab.agent, pki) as client:
        yield client


@pytest.fixture
def amphora():
    """An amphora namespace with a veth "VF" to a client namespace.

    The VF ``vf0`` holds the VIP 203.0.113.10 (and 2001:db8:10::10); the
    client side ``eth0`` holds 203.0.113.20 and .21 and 2001:db8:10::20 so a
    test can connect from an allowed and a denied source.
    """
    lab = netlab.Lab(NAMESPACE_PREFIX)
    try:
        amp = lab.namespace('amp')
        client = lab.namespace('cli')
        lab.veth(amp, 'vf0', client, 'eth0')
        netlab.add_address(amp, 'vf0', '203.0.113.10/24')
        netlab.add_address(amp, 'vf0', '2001:db8:10::10/64')
        for cidr in ('203.0.113.20/24', '203.0.113.21/24',
                     '2001:db8:10::20/64'):
            netlab.add_address(client, 'eth0', cidr)
        yield types.SimpleNamespace(lab=lab, namespace=amp, client=client,
                                    vip='203.0.113.10',
                                    vip6='2001:db8:10::10')
    finally:
        lab.close()


@pytest.fixture
def agent_factory(tmp_path, pki, amphora):
    """Start agents on the test's amphora; stop what is left by PID.

    ``start=False`` returns the configured agent unstarted.
    """
    started = []

    def factory(start=True, port=None, **kwargs):
        # Another run of these tests may take the free port found before
        # this agent binds it; then the next free one is tried.
        for _ in range(len(AGENT_PORTS)):
            agent = AgentProcess(str(tmp_path), pki, amphora.namespace,
                                 port or free_port(AGENT_PORTS),
                                 name=f'agent{len(started)}', **kwargs)
            started.append(agent)
            if not start:
                return agent
            try:
                return agent.start()
            except PortTaken:
                if port:
                    raise
        raise AssertionError('no port of the agent tests stayed free')

    yield factory
    for agent in started:
        agent.stop()
        agent.remove_engine_files()


@pytest.fixture
def agent(agent_factory):
    return agent_factory()


_LISTEN = '''
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.socket(family, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(16)
print("listening", flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(b"hello from the amphora\\n")
    connection.close()
'''

_CONNECT = '''
import socket, sys
source, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in target else socket.AF_INET
client = socket.socket(family, socket.SOCK_STREAM)
client.settimeout(float(sys.argv[4]))
client.bind((source, 0))
client.connect((target, port))
sys.stdout.write(client.recv(100).decode())
'''


class TcpService:
    """A TCP server in a namespace that greets every connection."""

    def __init__(self, namespace, address, port):
        self.process = netlab.popen(
            namespace, [sys.executable, '-c', _LISTEN, address, str(port)],
            stdout=subprocess.PIPE, text=True)
        # The server prints once it listens.
        assert self.process.stdout.readline().strip() == 'listening'

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def connect(namespace, source, target, port, timeout=2):
    """Connect from ``source`` to ``target``; True if the greeting came.

    ``timeout`` bounds a connection the firewall silently drops.
    """
    result = netlab.run(namespace,
                        [sys.executable, '-c', _CONNECT, source, target,
                         str(port), str(timeout)],
                        check=False, timeout=timeout + 30)
    return result.returncode == 0 and 'hello' in result.stdout


@pytest.fixture
def tcp_service():
    """Start TcpService(namespace, address, port); stopped by PID after."""
    services = []

    def start(namespace, address, port):
        services.append(TcpService(namespace, address, port))
        return services[-1]

    yield start
    for service in services:
        service.stop()
