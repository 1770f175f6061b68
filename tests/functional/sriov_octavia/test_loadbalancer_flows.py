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
import subprocess
import uuid

import pytest

from flows.tasks import compute
from flows.tasks import network
from sriov_octavia import amphorae
from sriov_octavia_testbed import plumbing
from tests.functional.sriov_octavia.cloud_state import agent_for
from tests.functional.sriov_octavia.cloud_state import leftovers
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import \
    create_load_balancer
from tests.functional.sriov_octavia.openstack_cli import make_flavor
from tests.functional.sriov_octavia.openstack_cli import wait_for_status
from tests.functional.sriov_octavia.openstack_cli import worker_log

# 63000: the ports of 69000 would pass 65535; mgmt 198.18.63.0/24.
PORT_BASE = 63000
PREFIX = 'tlb'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


@pytest.fixture(scope='module')
def sriov_flavor(tb, conn):
    return make_flavor(tb, conn)


@pytest.fixture(scope='module')
def active_standby_flavor(tb, conn):
    return make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')


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
    lb = create_load_balancer(tb, unique('lb'), sriov_flavor['id'])
    lb = cli_json(tb, 'loadbalancer', 'show', lb['id'])
    assert lb['provisioning_status'] == 'ACTIVE'
    vip_address = lb['vip_address']

    # Nova: one amphora, found by its metadata.
    [server] = amphorae.find_servers(conn, lb['id'])
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
    lb = create_load_balancer(tb, unique('lb'), active_standby_flavor['id'])
    lb = cli_json(tb, 'loadbalancer', 'show', lb['id'])
    assert lb['provisioning_status'] == 'ACTIVE'
    servers = amphorae.find_servers(conn, lb['id'])
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


def test_update_puts_the_vip_qos_policy_on_the_vrrp_port(
        tb, conn, sriov_flavor):
    policy = conn.network.create_qos_policy(name=unique('qos'))
    lb = create_load_balancer(tb, unique('lb'), sriov_flavor['id'])
    try:
        cli(tb, 'loadbalancer', 'set', '--vip-qos-policy-id', policy.id,
            '--name', unique('renamed'), '--wait', lb['id'])
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
        [port] = network.find_vrrp_ports(conn, lb['id'])
        # The VF carries the traffic: the policy goes where the VIP lives.
        assert port.qos_policy_id == policy.id

        cli(tb, 'loadbalancer', 'unset', '--vip-qos-policy-id', '--wait',
            lb['id'])
        [port] = network.find_vrrp_ports(conn, lb['id'])
        assert port.qos_policy_id is None
    finally:
        cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
        conn.network.delete_qos_policy(policy)
    assert leftovers(conn, lb['id']) == ([], [])


@pytest.mark.parametrize('fault, log_lines', [
    # No free VF when the VRRP port is attached.
    ({'attach': 'fail'}, ()),
    # Nova finds no host: the worker names what the operator checks.
    ({'schedule': 'fail'}, ('Nova found no host for amphora',
                            'host aggregate')),
], ids=['vf-attach', 'scheduling'])
def test_cloud_failure_leaves_error_and_no_leak(tb, conn, sriov_flavor,
                                                faults, fault, log_lines):
    faults(**fault)
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', sriov_flavor['id'], '--vip-subnet-id',
                  'vip-subnet')
    lb = wait_for_status(tb, lb['id'], ('ERROR', 'ACTIVE'))
    assert lb['provisioning_status'] == 'ERROR'
    assert leftovers(conn, lb['id']) == ([], [])
    log = worker_log(tb)
    for line in log_lines:
        assert line in log

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
    lb = create_load_balancer(tb, unique('lb'), sriov_flavor['id'])
    try:
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
        [server] = amphorae.find_servers(conn, lb['id'])
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
