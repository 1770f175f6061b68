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
"""Amphorae with their real agent: mTLS on the management network, and the
agent's firewall deciding real packets that arrive on an emulated VF."""

import subprocess
import sys
import time

import pytest
import requests

from sriov_octavia_testbed import certs
from sriov_octavia_testbed import netlab
from sriov_octavia_testbed import plumbing
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import processes
from tests.functional.testbed import fabric_lab

pytestmark = pytest.mark.netns

PREFIX = 'tpl'
MGMT_SUBNET = {'cidr': '203.0.113.240/28', 'gateway_ip': '203.0.113.241'}
VIP_SUBNET = {'cidr': '198.51.100.0/24', 'gateway_ip': '198.51.100.1'}
VIP = '198.51.100.10'
LISTENER_PORT = 8080

_SERVER = '''
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(16)
print('ready', flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(b'hello')
    connection.close()
'''

_CLIENT = '''
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])),
                                  timeout=2) as connection:
        sys.exit(0 if connection.recv(5) == b'hello' else 1)
except OSError:
    sys.exit(1)
'''


_new_id = fabric_lab.new_id
agent_call = fabric_lab.agent_call


fabric = fabric_lab.fabric_fixture(PREFIX, MGMT_SUBNET, stop_grace=5)


@pytest.fixture
def amphora(fabric):
    return fabric_lab.boot_with_agent(fabric, '203.0.113.242',
                                      'fa:16:3e:00:e2:01')


def connects(namespace, address=VIP, port=LISTENER_PORT):
    """Whether a TCP connection from ``namespace`` gets the greeting."""
    return netlab.run(namespace, [sys.executable, '-c', _CLIENT, address,
                                  str(port)], check=False).returncode == 0


def dropped(fabric, amphora, ifname):
    """The agent's drop counter of ``ifname``; None if it filters it not."""
    counters = agent_call(fabric, amphora, 'GET',
                          'security-group/counters').json()
    interface = counters['interfaces'].get(ifname)
    return interface['dropped']['packets'] if interface else None


def listener_packets(fabric, amphora, verdict, port=LISTENER_PORT):
    """Packets the agent counted as ``verdict`` for the TCP listener."""
    counters = agent_call(fabric, amphora, 'GET',
                          'security-group/counters').json()
    return counters['listeners'][f'TCP:{port}'][verdict]['packets']


def wait_until_filtered(fabric, amphora, ifname, timeout=30):
    """Wait for the agent to filter a hot-plugged VF.

    The agent notices new links asynchronously; a real VF carries no
    traffic before the agent plugs it, a test's veth does at once.
    """
    deadline = time.monotonic() + timeout
    while dropped(fabric, amphora, ifname) is None:
        assert time.monotonic() < deadline, f'{ifname} never filtered'
        time.sleep(0.1)


@pytest.fixture
def start_listener():
    """Starts a TCP greeter in a namespace; stops it after the test."""
    servers = []

    def start(namespace, address=VIP, port=LISTENER_PORT):
        server = netlab.popen(namespace, [sys.executable, '-c', _SERVER,
                                          address, str(port)],
                              stdout=subprocess.PIPE, text=True)
        servers.append(server)
        assert server.stdout.readline().strip() == 'ready'
        return server

    yield start
    for server in servers:
        server.kill()
        server.wait()


def test_agent_answers_the_controller_certificate_only(fabric, amphora,
                                                       tmp_path):
    response = agent_call(fabric, amphora, 'GET', 'info')
    assert response.status_code == 200
    # As in a VM: the namespace the agent's configuration names, which is
    # the fabric's data namespace seen from inside the amphora.
    assert response.json()['network_namespace'] == 'amphora-haproxy'
    assert response.json()['amphora_id'] == amphora.server_id

    with pytest.raises(requests.exceptions.SSLError):
        agent_call(fabric, amphora, 'GET', 'info', cert=None)
    stranger_ca = certs.CertificateAuthority.create(
        str(tmp_path / 'stranger-ca.pem'))
    stranger = stranger_ca.issue_client(str(tmp_path / 'stranger.pem'),
                                        'stranger')
    with pytest.raises(requests.exceptions.RequestException):
        agent_call(fabric, amphora, 'GET', 'info', cert=stranger)


def test_the_agent_firewall_filters_packets_arriving_on_a_vf(
        fabric, amphora, start_listener):
    network_id = _new_id()
    ifname = _plug_vip(fabric, amphora, network_id)
    start_listener(amphora.data_namespace)
    wait_until_filtered(fabric, amphora, ifname)
    allowed = fabric.add_host('allowed', network_id, 'fa:16:3e:00:e2:21',
                              '198.51.100.20/24')
    denied = fabric.add_host('denied', network_id, 'fa:16:3e:00:e2:22',
                             '198.51.100.30/24')

    # The agent's drop-all base covers the hot-plugged VF.
    assert not connects(allowed)

    response = agent_call(fabric, amphora, 'POST', 'security-group', json={
        'vip_interfaces': [VIP],
        'listeners': [{'protocol': 'TCP', 'port': LISTENER_PORT,
                       'allowed_cidrs': ['198.51.100.20/32']}]})
    assert response.status_code == 200, response.text

    assert connects(allowed)
    assert listener_packets(fabric, amphora, 'accepted') > 0
    assert listener_packets(fabric, amphora, 'dropped') == 0
    assert not connects(denied)
    # The listener's own rule turned the stranger away.
    assert listener_packets(fabric, amphora, 'dropped') > 0
    # The listener itself is open to everybody: only the firewall decides.
    assert netlab.run(amphora.data_namespace,
                      [sys.executable, '-c', _CLIENT, VIP,
                       str(LISTENER_PORT)], check=False).returncode == 0


def _plug_vip(fabric, amphora, network_id):
    """Attach a VF and configure the VIP on it, as the agent's plug does."""
    ifname = fabric.attach_vf(
        amphora.server_id, {'id': _new_id(), 'network_id': network_id,
                            'mac_address': 'fa:16:3e:00:e2:11'},
        VIP_SUBNET)
    _configure_vip(amphora, ifname)
    return ifname


def _configure_vip(amphora, ifname):
    netlab.add_address(amphora.data_namespace, ifname, f'{VIP}/24')
    netlab.set_up(amphora.data_namespace, ifname)


def test_after_a_reboot_the_persisted_rules_protect_the_vf(
        fabric, amphora, start_listener):
    network_id = _new_id()
    ifname = _plug_vip(fabric, amphora, network_id)
    wait_until_filtered(fabric, amphora, ifname)
    allowed = fabric.add_host('allowed', network_id, 'fa:16:3e:00:e2:21',
                              '198.51.100.20/24')
    denied = fabric.add_host('denied', network_id, 'fa:16:3e:00:e2:22',
                             '198.51.100.30/24')
    rules = {'vip_interfaces': [VIP],
             'listeners': [{'protocol': 'TCP', 'port': LISTENER_PORT,
                            'allowed_cidrs': ['198.51.100.20/32']}]}
    assert agent_call(fabric, amphora, 'POST', 'security-group',
                      json=rules).status_code == 200

    rebooted = fabric.reboot_amphora(amphora.server_id)

    assert rebooted.pid != amphora.pid
    # A reboot forgets the VF's configuration and the kernel's rules.
    assert not links.find(amphora.data_namespace, ifname)['up']
    assert links.addresses(amphora.data_namespace, ifname) == []
    fabric.wait_for_agent(amphora.server_id)
    _configure_vip(amphora, ifname)
    start_listener(amphora.data_namespace)
    wait_until_filtered(fabric, amphora, ifname)
    assert connects(allowed)
    assert not connects(denied)


def test_an_unreachable_agent_times_out_and_comes_back(fabric, amphora):
    fabric.set_agent_reachable(amphora.server_id, False)
    with pytest.raises(requests.exceptions.ConnectionError):
        agent_call(fabric, amphora, 'GET', 'info', timeout=2)
    # The agent itself keeps running, as in a network outage.
    assert fabric.agent_running(amphora.server_id)

    fabric.set_agent_reachable(amphora.server_id, True)
    assert agent_call(fabric, amphora, 'GET', 'info').status_code == 200


def test_delete_stops_the_agent(fabric, amphora):
    started = processes.start_time(amphora.pid)
    fabric.delete_amphora(amphora.server_id)
    assert not processes.is_running(amphora.pid, started)
    assert not netlab.namespace_exists(amphora.namespace)
    assert not netlab.namespace_exists(amphora.data_namespace)


def test_cleanup_after_a_restart_stops_the_agents_it_recorded(fabric,
                                                              amphora):
    started = processes.start_time(amphora.pid)
    restarted = plumbing.Fabric(fabric.state_dir, prefix=PREFIX,
                                stop_grace=5)
    removed = restarted.cleanup()
    assert removed['agents'] == [amphora.pid]
    assert not processes.is_running(amphora.pid, started)
    assert not netlab.namespace_exists(amphora.namespace)
