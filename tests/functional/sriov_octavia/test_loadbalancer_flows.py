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
"""Load balancer create and delete through the whole testbed.

A user's ``openstack loadbalancer`` commands go to the real octavia-api;
the driver posts the job, the worker inside the real octavia-driver-agent
boots the amphora in the Nova emulator (a namespace running the real
amphora agent), binds a direct VRRP port in the real Neutron, plugs the
VIP on the VF and puts the firewall in force. The test then looks at what
Neutron, Nova and the amphora agent hold.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from flows.tasks import compute
from flows.tasks import network
from sriov_octavia.amphora import client as agent_client
from testbed import plumbing
from testbed import seed

# 63000: the ports of 69000 would pass 65535; mgmt 198.18.63.0/24.
PORT_BASE = 63000
PREFIX = 'tlb'
PROVIDER = 'amphora-sriov'
# Seconds a create or delete may take here (boot, agent start, plug).
STATUS_TIMEOUT = 180


@pytest.fixture(scope='module')
def tb(testbed_factory):
    return testbed_factory(port_base=PORT_BASE, prefix=PREFIX)


@pytest.fixture(scope='module')
def conn(tb):
    connection = tb.connect()
    yield connection
    connection.close()


def _path():
    return os.pathsep.join([os.path.dirname(sys.executable),
                            os.environ.get('PATH', '')])


def cli(tb, *args, check=True):
    result = subprocess.run(
        ['openstack', *args], env=tb.cli_env({'PATH': _path()}),
        capture_output=True, text=True, timeout=STATUS_TIMEOUT + 60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cli_json(tb, *args):
    return json.loads(cli(tb, *args, '-f', 'json').stdout)


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


def make_flavor(tb, conn, **metadata):
    compute_flavor = conn.compute.find_flavor(seed.SRIOV_FLAVOR,
                                              ignore_missing=False)
    data = json.dumps(dict(metadata, compute_flavor=compute_flavor.id,
                           sriov_vip=True))
    profile = cli_json(tb, 'loadbalancer', 'flavorprofile', 'create',
                       '--name', unique('profile'), '--provider', PROVIDER,
                       '--flavor-data', data)
    return cli_json(tb, 'loadbalancer', 'flavor', 'create',
                    '--name', unique('flavor'), '--flavorprofile',
                    profile['id'], '--enable')


@pytest.fixture(scope='module')
def sriov_flavor(tb, conn):
    return make_flavor(tb, conn)


@pytest.fixture(scope='module')
def active_standby_flavor(tb, conn):
    return make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')


@pytest.fixture
def faults(tb):
    url = tb.url('nova') + '/testbed/faults'

    def inject(**settings):
        requests.post(url, json=settings, timeout=10).raise_for_status()

    yield inject
    requests.delete(url, timeout=10).raise_for_status()


def wait_for_status(tb, lb_id, wanted):
    deadline = time.monotonic() + STATUS_TIMEOUT
    while True:
        lb = cli_json(tb, 'loadbalancer', 'show', lb_id)
        if lb['provisioning_status'] in wanted:
            return lb
        assert time.monotonic() < deadline, lb
        time.sleep(2)


def leftovers(conn, lb_id):
    """Servers and VRRP ports of the load balancer still in the cloud."""
    return ([server.id for server in compute.find_servers(conn, lb_id)],
            [port.id for port in network.find_vrrp_ports(conn, lb_id)])


def agent_for(tb, conn, server):
    fabric = plumbing.Fabric(tb.state_dir, prefix=tb.prefix)
    mgmt = conn.network.find_network(seed.MGMT_NETWORK, ignore_missing=False)
    [mgmt_ip] = [interface.fixed_ips[0]['ip_address'] for interface
                 in conn.compute.server_interfaces(server)
                 if interface.net_id == mgmt.id]
    return agent_client.AgentClient((mgmt_ip, 9443),
                                    fabric.agent_client_cert, fabric.ca_cert)


@contextlib.contextmanager
def client_host(tb, conn, subnet_id):
    """A client namespace on the subnet, with an address Neutron gave."""
    subnet = conn.network.get_subnet(subnet_id)
    port = conn.network.create_port(network_id=subnet.network_id,
                                    fixed_ips=[{'subnet_id': subnet_id}],
                                    name=unique('client'))
    fabric = plumbing.Fabric(tb.state_dir, prefix=tb.prefix)
    try:
        address = port.fixed_ips[0]['ip_address']
        prefixlen = subnet.cidr.split('/')[1]
        yield fabric.add_host('cli', subnet.network_id, port.mac_address,
                              f'{address}/{prefixlen}')
    finally:
        fabric.remove_host('cli')
        conn.network.delete_port(port)


def test_sriov_load_balancer_create_and_delete(tb, conn, sriov_flavor):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet', '--wait')
    lb = cli_json(tb, 'loadbalancer', 'show', lb['id'])
    assert lb['provisioning_status'] == 'ACTIVE'
    vip_address = lb['vip_address']

    # Nova: one amphora, found by its metadata.
    [server] = compute.find_servers(conn, lb['id'])
    assert server.status == 'ACTIVE'
    assert server.metadata['sriov_octavia_role'] == 'STANDALONE'

    # Neutron: a bound direct VRRP port holding the VIP, no security group.
    [port] = network.find_vrrp_ports(conn, lb['id'])
    assert port.binding_vnic_type == 'direct'
    assert port.binding_vif_type == 'hw_veb'
    assert port.binding_profile['pci_slot']
    assert port.device_id == server.id
    assert port.security_group_ids == []
    assert {'ip_address': vip_address, 'mac_address': port.mac_address} in (
        port.allowed_address_pairs)
    vrrp_ip = port.fixed_ips[0]['ip_address']

    # The amphora: the VF plugged with the VRRP address and the VIP, and
    # the firewall in force on it.
    with agent_for(tb, conn, server) as agent:
        [vf] = [interface for interface in agent.get_interfaces()
                if interface['mac_address'] == port.mac_address]
        addresses = json.dumps(vf)
        assert vrrp_ip in addresses and vip_address in addresses
        assert vrrp_ip in json.dumps(agent.get_security_group())
        before = agent.get_counters()['interfaces'][vf['name']]
        # A client on the VIP network: the VF answers ARP for the VIP, and
        # the firewall drops the pings (no listener lets them in).
        with client_host(tb, conn, port.fixed_ips[0]['subnet_id']) as (
                namespace):
            ping = subprocess.run(
                ['ip', 'netns', 'exec', namespace, 'ping', '-c', '3', '-i',
                 '0.2', '-W', '1', vip_address], capture_output=True)
            neighbour = subprocess.run(
                ['ip', '-n', namespace, 'neigh', 'show', vip_address],
                capture_output=True, text=True, check=True).stdout
        after = agent.get_counters()['interfaces'][vf['name']]
    assert ping.returncode != 0
    assert port.mac_address in neighbour
    assert (after['dropped']['packets'] - before['dropped']['packets']) >= 3

    cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
    assert leftovers(conn, lb['id']) == ([], [])
    assert conn.network.find_port(lb['vip_port_id']) is None
    assert lb['id'] not in [row['id'] for row in
                            cli_json(tb, 'loadbalancer', 'list')]


def test_active_standby_pair_on_two_hosts(tb, conn, active_standby_flavor):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', active_standby_flavor['id'],
                  '--vip-subnet-id', 'vip-subnet', '--wait')
    lb = cli_json(tb, 'loadbalancer', 'show', lb['id'])
    assert lb['provisioning_status'] == 'ACTIVE'
    servers = compute.find_servers(conn, lb['id'])
    assert sorted(s.metadata['sriov_octavia_role'] for s in servers) == [
        'BACKUP', 'MASTER']
    # The anti-affinity group spread them over both SR-IOV hosts.
    assert len({s.compute_host for s in servers}) == 2
    [group] = compute.find_server_groups(conn, lb['id'])
    assert group.policy == 'anti-affinity'
    ports = {port.device_id: port
             for port in network.find_vrrp_ports(conn, lb['id'])}
    assert sorted(ports) == sorted(s.id for s in servers)
    vrrp_ips = {server_id: port.fixed_ips[0]['ip_address']
                for server_id, port in ports.items()}
    for server in servers:
        assert ports[server.id].binding_vif_type == 'hw_veb'
        [peer] = [ip for server_id, ip in vrrp_ips.items()
                  if server_id != server.id]
        with agent_for(tb, conn, server) as agent:
            firewall = json.dumps(agent.get_security_group())
        # Each amphora lets VRRP in from its peer only.
        assert peer in firewall

    cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
    assert leftovers(conn, lb['id']) == ([], [])
    assert compute.find_server_groups(conn, lb['id']) == []


def test_vf_attach_failure_leaves_error_and_no_leak(tb, conn, sriov_flavor,
                                                    faults):
    faults(attach='fail')
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet')
    lb = wait_for_status(tb, lb['id'], ('ERROR', 'ACTIVE'))
    assert lb['provisioning_status'] == 'ERROR'
    assert leftovers(conn, lb['id']) == ([], [])
    cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
    assert conn.network.find_port(lb['vip_port_id']) is None


def test_scheduling_failure_leaves_error_and_no_leak(tb, conn, sriov_flavor,
                                                     faults):
    faults(schedule='fail')
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet')
    lb = wait_for_status(tb, lb['id'], ('ERROR', 'ACTIVE'))
    assert lb['provisioning_status'] == 'ERROR'
    assert leftovers(conn, lb['id']) == ([], [])
    log = open(tb.path('logs', 'octavia-driver-agent.log')).read()
    assert 'Nova found no host for amphora' in log
    assert 'host aggregate' in log

    # The user deletes the failed load balancer: its VIP port goes too.
    cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
    assert conn.network.find_port(lb['vip_port_id']) is None


def _firewall_listeners(tb, conn, server):
    with agent_for(tb, conn, server) as agent:
        state = agent.get_security_group()['security_group']
    return [(entry['protocol'], entry['port'], entry['allowed_cidrs'])
            for entry in state['listeners']]


def test_listener_allowed_cidrs_reach_the_amphora_firewall(tb, conn,
                                                           sriov_flavor):
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet', '--wait')
    try:
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
        [server] = compute.find_servers(conn, lb['id'])
        assert _firewall_listeners(tb, conn, server) == []

        listener = cli_json(tb, 'loadbalancer', 'listener', 'create',
                            '--name', unique('listener'), '--protocol',
                            'TCP', '--protocol-port', '80', '--allowed-cidr',
                            '198.51.100.0/24', '--wait', lb['id'])
        listener = cli_json(tb, 'loadbalancer', 'listener', 'show',
                            listener['id'])
        assert listener['provisioning_status'] == 'ACTIVE'
        assert _firewall_listeners(tb, conn, server) == [
            ('TCP', 80, ['198.51.100.0/24'])]

        cli(tb, 'loadbalancer', 'listener', 'delete', listener['id'],
            '--wait')
        assert _firewall_listeners(tb, conn, server) == []
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
    finally:
        cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'], '--wait')
    assert leftovers(conn, lb['id']) == ([], [])
