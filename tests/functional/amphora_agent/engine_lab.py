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
"""Agents with the load-balancing engine, and what the engine tests need.

Agents run as the real console script over mutual TLS (conftest's
AgentProcess) on ports 19480-19499 (below the kernel's range for outgoing
connections, which could hold the port of an agent the test restarts),
with a short engine base path under /run of their own. Their data
namespaces hold veths that are not taken for VFs, so the firewall leaves
them alone: these tests are about haproxy and keepalived.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import types

from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest

PREFIX = f'teng-{os.getpid()}'
AGENT_PORTS = range(19480, 19500)
# The addresses of amphora_lab's VIP and client.
VIP = '203.0.113.10'
CLIENT = '203.0.113.20'
# How long something that must happen may take on a busy machine; every
# wait returns as soon as it happened.
PATIENCE = 30.0


def start_agent(workdir, pki, namespace, name):
    """An engine agent on ``namespace``.

    Its ``base_path``, ``base_cert_dir`` and ``ping_wrapper`` are set, all
    under /run: haproxy's workers, unprivileged, run the PING script, and
    pytest's directories are closed to them.
    """
    os.makedirs(workdir, exist_ok=True)
    base_path = f'/run/{PREFIX}-{name}'
    for _ in range(len(AGENT_PORTS)):
        agent = conftest.AgentProcess(workdir, pki, namespace,
                                      conftest.free_port(AGENT_PORTS),
                                      name=name)
        ping_wrapper = f'{base_path}/ping-wrapper.sh'
        base_cert_dir = f'{base_path}/certs'
        with open(agent.config_file) as conf:
            text = conf.read()
        with open(agent.config_file, 'w') as conf:
            conf.write(text.replace('vf_link_kinds = veth\n', '').replace(
                f'ping_wrapper_path = {agent.ping_wrapper}\n',
                f'ping_wrapper_path = {ping_wrapper}\n').replace(
                '[haproxy_amphora]\n',
                f'[haproxy_amphora]\nbase_path = {base_path}\n'
                f'base_cert_dir = {base_cert_dir}\n').replace(
                '[amphora_agent]\n',
                '[amphora_agent]\nengine_verify_interval = 1\n'))
        agent.base_path = base_path
        agent.base_cert_dir = base_cert_dir
        agent.ping_wrapper = ping_wrapper
        try:
            return agent.start()
        except conftest.PortTaken:
            continue
    raise AssertionError('no port of the engine tests stayed free')


def loadbalancer_ids(tag):
    """``(LB, LISTENER, POOL, AMPHORA)`` of a test module's load balancer.

    The ids end in ``tag`` (12 characters at most), so that modules never
    share one; AMPHORA is the amphora dict the controller renders for.
    """
    def uuid(head):
        return f'{head}-0000-4000-8000-{tag:0>12}'
    return (uuid('5e1c0000'), uuid('a0000000'), uuid('b0000000'),
            {'id': uuid('f0000000'), 'role': 'MASTER',
             'mgmt_ip': '198.18.35.5'})


def namespace_pids(namespace):
    result = netlab.run(None, ['ip', 'netns', 'pids', namespace],
                        check=False)
    return [int(pid) for pid in result.stdout.split()]


def _command(pid):
    try:
        with open(f'/proc/{pid}/comm') as comm:
            return comm.read().strip()
    except FileNotFoundError:
        return None


def end_processes(namespace, program=None):
    """SIGKILL what runs in ``namespace`` (or only ``program``), by PID."""
    if not netlab.namespace_exists(namespace):
        return
    for pid in namespace_pids(namespace):
        if program and _command(pid) != program:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_agent(agent):
    agent.stop()
    shutil.rmtree(agent.base_path, ignore_errors=True)


@contextlib.contextmanager
def amphora_lab(tmp_path_factory, pki, name, clients=(f'{CLIENT}/24',),
                members=(), gateways=('198.51.100.1/24',)):
    """An engine agent's data namespace between a client and members.

    Namespaces ``<name>amp``, ``<name>cli`` and, with ``members``,
    ``<name>mem``: the amphora's vf0 holds the VIP and is linked to the
    client's eth0, which holds ``clients``; its vf1 holds ``gateways`` and
    is linked to the member's eth0, which holds ``members``. The agent
    (``start_agent``) runs on the amphora. Yields ``lab`` (the netlab.Lab),
    ``amp``, ``client``, ``member`` (None without members) and ``agent``;
    after, the agent is stopped, what runs in the namespaces is SIGKILLed,
    by PID, and the lab closed.
    """
    names = [f'{name}amp', f'{name}cli'] + ([f'{name}mem'] if members
                                            else [])
    lab = netlab.Lab(PREFIX)
    agent = None
    try:
        amp, client = lab.namespace(names[0]), lab.namespace(names[1])
        lab.veth(amp, 'vf0', client, 'eth0')
        netlab.add_address(amp, 'vf0', f'{VIP}/24')
        for cidr in clients:
            netlab.add_address(client, 'eth0', cidr)
        member = None
        if members:
            member = lab.namespace(names[2])
            lab.veth(amp, 'vf1', member, 'eth0')
            for cidr in gateways:
                netlab.add_address(amp, 'vf1', cidr)
            for cidr in members:
                netlab.add_address(member, 'eth0', cidr)
        agent = start_agent(str(tmp_path_factory.mktemp(f'{name}-agent')),
                            pki, amp, name)
        yield types.SimpleNamespace(lab=lab, amp=amp, client=client,
                                    member=member, agent=agent)
    finally:
        if agent is not None:
            stop_agent(agent)
        for namespace in names:
            end_processes(lab.name(namespace))
        lab.close()


def wait_until(condition, patience=PATIENCE):
    """Poll ``condition`` until it returns something true; return that."""
    deadline = time.monotonic() + patience
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.2)


class HttpServer:
    """``python -m http.server`` serving ``directory``; stopped by PID."""

    def __init__(self, namespace, address, port, directory):
        self.process = netlab.popen(
            namespace, [sys.executable, '-m', 'http.server', str(port),
                        '--bind', address, '--directory', directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.namespace = namespace
        self.address = address
        self.port = port
        if not wait_until(self.listening):
            self.stop()
            raise AssertionError('http.server did not start listening')

    def listening(self):
        result = netlab.run(self.namespace,
                            ['ss', '-Hltn', f'sport = :{self.port}'],
                            check=False)
        return self.address in result.stdout

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def http_get(namespace, url, timeout=5):
    """GET ``url`` with curl from ``namespace``: (HTTP status, body)."""
    result = netlab.run(namespace,
                        ['curl', '-s', '-m', str(timeout), '-o', '-',
                         '-w', '\n%{http_code}', url],
                        check=False, timeout=timeout + 30)
    body, _, status = result.stdout.rpartition('\n')
    return int(status or 0), body


def addresses(namespace, ifname):
    result = netlab.run(namespace, ['ip', '-o', 'addr', 'show', 'dev',
                                    ifname], check=False)
    return result.stdout
