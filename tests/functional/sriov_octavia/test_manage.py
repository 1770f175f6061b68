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
"""sriov-octavia-manage against the whole testbed.

The console script runs as an operator runs it, in its own process with
the testbed's octavia.conf: it reads Nova, Neutron and Octavia's database,
asks the amphora's agent over mutual TLS, and posts its failover to the
jobboard the real octavia-driver-agent's worker serves. What it prints is
checked against what Nova and Neutron hold.
"""

import datetime
import json
import os
import subprocess
import sys
import uuid

import pytest

from flows.tasks import network
from sriov_octavia import amphorae
from sriov_octavia import naming
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.cloud_state import leftovers
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 17000
PREFIX = 'tmg'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
CIDR = '198.51.100.0/24'
COMMAND = os.path.join(os.path.dirname(sys.executable),
                       'sriov-octavia-manage')


def _argv(tb, args):
    return [COMMAND, '--config-file', tb.octavia_conf, 'amphora', *args]


def manage(tb, *args):
    """Run the command against ``tb``; the completed process."""
    return subprocess.run(_argv(tb, args), capture_output=True, text=True,
                          timeout=osc.TIMEOUT + 60)


def manage_json(tb, *args):
    done = manage(tb, *args, '--format', 'json')
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def table_rows(out):
    """The cells of every line of the tables ``out`` holds."""
    return [[cell.strip() for cell in line.strip()[1:-1].split('|')]
            for line in out.splitlines() if line.startswith('|')]


@pytest.fixture(scope='module')
def lb(tb, conn):
    """A SINGLE SR-IOV load balancer with a TCP listener."""
    flavor = osc.make_flavor(tb, conn)
    created = osc.create_load_balancer(tb, osc.unique(tb, 'lb'),
                                       flavor['id'])
    osc.cli(tb, 'loadbalancer', 'listener', 'create', '--name',
            osc.unique(tb, 'listener'), '--protocol', 'TCP',
            '--protocol-port', '80', '--allowed-cidr', CIDR, '--wait',
            created['id'])
    yield osc.cli_json(tb, 'loadbalancer', 'show', created['id'])
    osc.cli(tb, 'loadbalancer', 'delete', '--cascade', created['id'],
            '--wait')
    assert leftovers(conn, created['id']) == ([], [])


def _expected(conn, lb_id):
    """What Nova and Neutron say of the load balancer's one amphora."""
    [server] = amphorae.find_servers(conn, lb_id)
    [vrrp] = network.find_vrrp_ports(conn, lb_id)
    mgmt = conn.network.find_network(seed.MGMT_NETWORK, ignore_missing=False)
    [mgmt_ip] = [interface.fixed_ips[0]['ip_address'] for interface
                 in conn.compute.server_interfaces(server)
                 if interface.net_id == mgmt.id]
    return server, vrrp, mgmt_ip


def test_list_shows_the_amphora(tb, conn, lb):
    server, vrrp, mgmt_ip = _expected(conn, lb['id'])

    done = manage(tb, 'list', '--loadbalancer', lb['id'])
    assert done.returncode == 0, done.stderr[-4000:]
    print(done.stdout)
    [row] = [row for row in table_rows(done.stdout) if row[0] == server.id]
    assert row[1:8] == [lb['id'], naming.ROLE_STANDALONE, 'ACTIVE',
                        server.compute_host, mgmt_ip,
                        f'{vrrp.binding_profile["pci_slot"]} {vrrp.id}',
                        'ok']

    [amphora] = manage_json(tb, 'list', '--loadbalancer', lb['id'])
    print(json.dumps(amphora, indent=2))
    assert amphora['id'] == server.id
    assert amphora['amphora_id'] == server.metadata[naming.META_AMPHORA_ID]
    assert amphora['role'] == naming.ROLE_STANDALONE
    assert amphora['loadbalancer_status'] == 'ACTIVE'
    assert amphora['compute_host'] == server.compute_host
    assert amphora['mgmt_ip'] == mgmt_ip
    assert amphora['vf_ports'] == [{
        'id': vrrp.id, 'name': vrrp.name, 'network_id': vrrp.network_id,
        'mac_address': vrrp.mac_address, 'vnic_type': 'direct',
        'pci_slot': vrrp.binding_profile['pci_slot']}]
    assert amphora['health'] == 'ok'
    expiry = datetime.datetime.fromisoformat(amphora['cert_expiry'])
    assert expiry > datetime.datetime.now(datetime.timezone.utc)
    assert row[8] == amphora['cert_expiry']

    # Without --loadbalancer: every amphora of the provider, this one too.
    assert amphora in manage_json(tb, 'list')


def test_show_by_amphora_id(tb, conn, lb):
    server, _vrrp, _mgmt_ip = _expected(conn, lb['id'])
    amphora = manage_json(tb, 'show',
                          server.metadata[naming.META_AMPHORA_ID])
    assert amphora['id'] == server.id
    assert amphora['health'] == 'ok'

    done = manage(tb, 'show', server.id)
    assert done.returncode == 0, done.stderr[-4000:]
    assert ['Server ID', server.id] in table_rows(done.stdout)


def test_stats_shows_firewall_counters_and_haproxy(tb, conn, lb):
    server, _vrrp, _mgmt_ip = _expected(conn, lb['id'])
    [listener] = osc.cli_json(tb, 'loadbalancer', 'listener', 'list',
                              '--loadbalancer', lb['id'])

    stats = manage_json(tb, 'stats', server.id)
    assert set(stats['firewall']['listeners']['TCP:80']) == {'accepted',
                                                             'dropped'}
    assert stats['firewall']['interfaces']
    assert stats['firewall']['vrrp']['accepted']['packets'] >= 0
    assert stats['haproxy']['frontends'][listener['id']]['status'] == 'OPEN'

    done = manage(tb, 'stats', server.id)
    assert done.returncode == 0, done.stderr[-4000:]
    print(done.stdout)
    rows = table_rows(done.stdout)
    assert any(row[0] == 'listener TCP:80 accepted' for row in rows)
    assert any(row[:2] == [listener['id'], 'OPEN'] for row in rows)


@pytest.mark.parametrize('action', ['show', 'failover'])
def test_an_unknown_id_is_named(tb, action):
    unknown = str(uuid.uuid4())
    done = manage(tb, action, unknown)
    assert done.returncode == 1
    assert done.stdout == ''
    assert (f'amphora {unknown} not found: no server of the amphora-sriov '
            f'provider has that server id or amphora id') in done.stderr


def test_an_unknown_load_balancer_is_named(tb):
    unknown = str(uuid.uuid4())
    done = manage(tb, 'list', '--loadbalancer', unknown)
    assert done.returncode == 1
    assert (f'load balancer {unknown} not found: Octavia has no load '
            f'balancer of the amphora-sriov provider') in done.stderr


def test_failover_replaces_the_amphora(tb, conn, lb, faults):
    old, old_vrrp, _mgmt_ip = _expected(conn, lb['id'])
    # Agents out of reach hold the failover at its replacement's boot, so
    # that its load balancer stays PENDING_UPDATE while the test looks.
    faults(agent='unreachable')
    waiting = subprocess.Popen(
        _argv(tb, ['failover', old.metadata[naming.META_AMPHORA_ID],
                   '--wait']),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        osc.wait_for_status(tb, lb['id'], ('PENDING_UPDATE',), timeout=60)
        # The claim keeps a second failover out while the first runs.
        busy = manage(tb, 'failover', old.id)
        assert busy.returncode == 1
        assert (f'load balancer {lb["id"]} is PENDING_UPDATE: a failover '
                f'starts only from ACTIVE or ERROR') in busy.stderr, (
            busy.stderr[-3000:])
        during = {amphora['id']: amphora for amphora in manage_json(
            tb, 'list', '--loadbalancer', lb['id'], '--agent-timeout', '2')}
        assert during[old.id]['health'] == 'agent unreachable'
        assert during[old.id]['loadbalancer_status'] == 'PENDING_UPDATE'
        assert 'unreachable' in during[old.id]['health_detail']
        assert during[old.id]['cert_expiry'] is None
        for amphora in during.values():
            if amphora['id'] != old.id:
                assert amphora['replaces'] == old.id
        faults(agent='reachable')
        out, err = waiting.communicate(timeout=osc.TIMEOUT + 60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, (out, err[-4000:],
                                     osc.worker_log_tail(tb))
    print(out)
    assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
        'provisioning_status'] == 'ACTIVE'
    new, new_vrrp, _mgmt_ip = _expected(conn, lb['id'])
    assert new.id != old.id and new_vrrp.id != old_vrrp.id
    assert f'is server {new.id}.' in out

    [amphora] = manage_json(tb, 'list', '--loadbalancer', lb['id'])
    assert amphora['id'] == new.id
    assert amphora['health'] == 'ok'
    assert amphora['vf_ports'][0]['id'] == new_vrrp.id
