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
"""Failover and the non-SR-IOV security group through the whole testbed.

``openstack loadbalancer failover`` goes to the real octavia-api, which
sets the load balancer PENDING_UPDATE and calls the driver; the worker in
the real octavia-driver-agent replaces each amphora in the Nova emulator
with a new server and a new direct VRRP port in the real Neutron. The test
then looks at what Nova, Neutron and the new amphorae's agents hold.
"""

import json
import time

from octavia import opts as octavia_opts
from openstack import exceptions as os_exceptions
from oslo_config import cfg
import pytest

from flows.tasks import compute
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import amphorae
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor_lib
from sriov_octavia import naming
from sriov_octavia.worker import jobboard
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.cloud_state import agent_for
from tests.functional.sriov_octavia.cloud_state import leftovers
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 30000
PREFIX = 'tfo'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
CIDR = '198.51.100.0/24'


@pytest.fixture(scope='module')
def sriov_flavor(tb, conn):
    return osc.make_flavor(tb, conn)


@pytest.fixture(scope='module')
def active_standby_flavor(tb, conn):
    return osc.make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')


def _wait_settled(tb, lb_id):
    """The load balancer once its failover job ended (ACTIVE or ERROR)."""
    deadline = time.monotonic() + osc.TIMEOUT
    while True:
        lb = osc.cli_json(tb, 'loadbalancer', 'show', lb_id)
        if not lb['provisioning_status'].startswith('PENDING'):
            return lb
        assert time.monotonic() < deadline, lb
        time.sleep(2)


def _create_with_listener(tb, flavor):
    lb = osc.cli_json(tb, 'loadbalancer', 'create', '--name',
                      osc.unique(tb, 'lb'), '--flavor', flavor['id'],
                      '--vip-subnet-id', 'vip-subnet', '--wait')
    osc.cli(tb, 'loadbalancer', 'listener', 'create', '--name',
            osc.unique(tb, 'listener'), '--protocol', 'TCP', '--protocol-port',
            '80', '--allowed-cidr', CIDR, '--wait', lb['id'])
    lb = osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])
    assert lb['provisioning_status'] == 'ACTIVE'
    return lb


def _amphorae(conn, lb_id):
    """``{role: (server, VRRP port)}`` as Nova and Neutron hold them."""
    ports = {port.device_id: port
             for port in network.find_vrrp_ports(conn, lb_id)}
    # A failover's new server has no port of the role's name before its
    # commit: it is not the role's amphora yet.
    return {server.metadata[naming.META_ROLE]: (server, ports[server.id])
            for server in amphorae.find_servers(conn, lb_id)
            if server.id in ports}


def _firewall(tb, conn, server):
    with agent_for(tb, conn, server) as agent:
        return agent.get_security_group()['security_group']


def _gone(conn, server_id, port_id):
    try:
        conn.compute.get_server(server_id)
        server_gone = False
    except os_exceptions.NotFoundException:
        server_gone = True
    return server_gone and conn.network.find_port(port_id) is None


def _no_replacement_leftovers(conn, lb_id):
    return network.find_replacement_vrrp_ports(conn, lb_id) == []


@pytest.mark.parametrize('topology', ['SINGLE', 'ACTIVE_STANDBY'])
def test_failover_replaces_amphorae_and_vrrp_ports(
        tb, conn, sriov_flavor, active_standby_flavor, topology):
    flavor = (sriov_flavor if topology == 'SINGLE'
              else active_standby_flavor)
    lb = _create_with_listener(tb, flavor)
    try:
        before = _amphorae(conn, lb['id'])
        firewalls = {role: _firewall(tb, conn, server)
                     for role, (server, _) in before.items()}
        for state in firewalls.values():
            assert [(entry['protocol'], entry['port'],
                     entry['allowed_cidrs'])
                    for entry in state['listeners']] == [('TCP', 80, [CIDR])]

        osc.cli(tb, 'loadbalancer', 'failover', lb['id'])
        assert _wait_settled(tb, lb['id'])['provisioning_status'] == 'ACTIVE'

        after = _amphorae(conn, lb['id'])
        assert sorted(after) == sorted(before)
        vrrp_ips = {role: port.fixed_ips[0]['ip_address']
                    for role, (_, port) in after.items()}
        for role, (server, port) in after.items():
            old_server, old_port = before[role]
            assert server.id != old_server.id
            assert port.id != old_port.id
            assert _gone(conn, old_server.id, old_port.id)
            assert server.status == 'ACTIVE'
            assert port.binding_vnic_type == 'direct'
            assert port.binding_vif_type == 'hw_veb'
            assert port.security_group_ids == []
            assert {'ip_address': lb['vip_address'],
                    'mac_address': port.mac_address} in (
                port.allowed_address_pairs)
            # The new amphora holds the same firewall, its peer being the
            # other new amphora, and the VIP is plugged on its new VF.
            state = _firewall(tb, conn, server)
            assert state['listeners'] == firewalls[role]['listeners']
            # The agent answers with prefixes (a.b.c.d/32).
            assert sorted(peer.split('/')[0]
                          for peer in state['vrrp_peers']) == sorted(
                ip for other, ip in vrrp_ips.items() if other != role)
            with agent_for(tb, conn, server) as agent:
                [vf] = [interface for interface in agent.get_interfaces()
                        if interface['mac_address'] == port.mac_address]
            assert vrrp_ips[role] in json.dumps(vf)
            if topology == 'SINGLE':
                assert lb['vip_address'] in json.dumps(vf)
        assert _no_replacement_leftovers(conn, lb['id'])
        if topology == 'ACTIVE_STANDBY':
            [group] = compute.find_server_groups(conn, lb['id'])
            hosts = {server.compute_host for server, _ in after.values()}
            assert len(hosts) == 2
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')
    assert leftovers(conn, lb['id']) == ([], [])
    assert _no_replacement_leftovers(conn, lb['id'])


def test_failover_whose_boot_fails_leaves_error_and_no_leak(
        tb, conn, sriov_flavor, faults):
    lb = _create_with_listener(tb, sriov_flavor)
    try:
        before = _amphorae(conn, lb['id'])
        servers = {server.id for server in conn.compute.servers()}
        ports = {port.id for port in conn.network.ports()}
        faults(boot='fail')

        osc.cli(tb, 'loadbalancer', 'failover', lb['id'])
        assert _wait_settled(tb, lb['id'])['provisioning_status'] == 'ERROR'

        # Nothing of the replacement is left; the old amphora still is.
        assert {server.id for server in conn.compute.servers()} == servers
        assert {port.id for port in conn.network.ports()} == ports
        assert {role: (server.id, port.id) for role, (server, port)
                in _amphorae(conn, lb['id']).items()} == {
            role: (server.id, port.id)
            for role, (server, port) in before.items()}
        log = osc.worker_log(tb)
        assert 'spawning on the hypervisor failed' in log
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')
    assert leftovers(conn, lb['id']) == ([], [])


def _plain_flavor(tb, conn):
    compute_flavor = conn.compute.find_flavor(seed.PLAIN_FLAVOR,
                                              ignore_missing=False)
    data = json.dumps({'compute_flavor': compute_flavor.id,
                       'sriov_vip': False,
                       'loadbalancer_topology': 'ACTIVE_STANDBY'})
    profile = osc.cli_json(tb, 'loadbalancer', 'flavorprofile', 'create',
                           '--name', osc.unique(tb, 'profile'), '--provider',
                           osc.PROVIDER, '--flavor-data', data)
    return osc.cli_json(tb, 'loadbalancer', 'flavor', 'create', '--name',
                        osc.unique(tb, 'flavor'), '--flavorprofile',
                        profile['id'], '--enable')


def _ingress_rules(conn, group_id):
    return sorted((rule.ether_type, rule.protocol, rule.port_range_min,
                   rule.remote_ip_prefix, rule.remote_group_id)
                  for rule in conn.network.security_group_rules(
                      security_group_id=group_id, direction='ingress'))


def test_non_sriov_load_balancer_has_its_security_group(tb, conn):
    lb = _create_with_listener(tb, _plain_flavor(tb, conn))
    try:
        [group] = security_group.find_security_groups(conn, lb['id'])
        assert _ingress_rules(conn, group.id) == [
            ('IPv4', '112', None, None, group.id),
            ('IPv4', 'tcp', 80, CIDR, None)]
        ports = network.find_vrrp_ports(conn, lb['id'])
        assert len(ports) == 2
        for port in ports:
            assert port.binding_vnic_type == 'normal'
            assert port.security_group_ids == [group.id]

        [listener] = osc.cli_json(tb, 'loadbalancer', 'listener', 'list',
                                  '--loadbalancer', lb['id'])
        osc.cli(tb, 'loadbalancer', 'listener', 'set', '--allowed-cidr',
                '203.0.113.0/25', '--wait', listener['id'])
        assert _ingress_rules(conn, group.id) == [
            ('IPv4', '112', None, None, group.id),
            ('IPv4', 'tcp', 80, '203.0.113.0/25', None)]
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')
    assert security_group.find_security_groups(conn, lb['id']) == []
    assert leftovers(conn, lb['id']) == ([], [])


def _testbed_conf(tb):
    """The testbed's octavia.conf, as the driver and the workers read it."""
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf.register_opts(dict(octavia_opts.list_opts())['controller_worker'],
                       group='controller_worker')
    conf([], project='octavia', default_config_files=[tb.octavia_conf])
    return conf


def test_amphora_failover_job_replaces_one_amphora(tb, conn,
                                                   active_standby_flavor):
    lb = _create_with_listener(tb, active_standby_flavor)
    try:
        before = _amphorae(conn, lb['id'])
        master, master_port = before[naming.ROLE_MASTER]
        profile = osc.cli_json(tb, 'loadbalancer', 'flavorprofile', 'show',
                               active_standby_flavor['flavor_profile_id'])
        loadbalancer = {'loadbalancer_id': lb['id'],
                        'vip_address': lb['vip_address'],
                        'vip_network_id': lb['vip_network_id'],
                        'vip_subnet_id': lb['vip_subnet_id'],
                        'vip_port_id': lb['vip_port_id'],
                        'additional_vips': lb['additional_vips'] or []}
        # What a health check posts: the store every job has (the flavor
        # with the same defaults the driver gives it), and the amphora.
        conf = _testbed_conf(tb)
        job_id = jobboard.post_job('amphora.failover', {
            'loadbalancer': loadbalancer, 'loadbalancer_id': lb['id'],
            'flavor': sriov_flavor_lib.with_defaults(
                json.loads(profile['flavor_data']), conf=conf),
            'availability_zone': {},
            'amphora': {'id': master.id, 'role': naming.ROLE_MASTER}},
            conf=conf)

        # No API call locked the load balancer: the worker's log says when
        # the job is done.
        finished = f'Job {job_id} (amphora.failover {lb["id"]}) finished.'
        deadline = time.monotonic() + osc.TIMEOUT
        while finished not in osc.worker_log(tb):
            assert time.monotonic() < deadline
            time.sleep(2)
        assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
        after = _amphorae(conn, lb['id'])
        new_master, new_port = after[naming.ROLE_MASTER]
        backup = after[naming.ROLE_BACKUP][0]
        # The backup lets VRRP in from the new master only.
        peers = _firewall(tb, conn, backup)['vrrp_peers']
        assert [peer.split('/')[0] for peer in peers] == [
            new_port.fixed_ips[0]['ip_address']]
        assert new_master.id != master.id and new_port.id != master_port.id
        assert _gone(conn, master.id, master_port.id)
        assert backup.id == before[naming.ROLE_BACKUP][0].id
        assert after[naming.ROLE_BACKUP][1].id == (
            before[naming.ROLE_BACKUP][1].id)
        assert _no_replacement_leftovers(conn, lb['id'])
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')
    assert leftovers(conn, lb['id']) == ([], [])
