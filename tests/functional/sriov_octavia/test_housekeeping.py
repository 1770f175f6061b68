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
"""Housekeeping removes orphans through the whole testbed.

A server, a server group, a security group and VRRP and member ports are
made in the Nova emulator and the real Neutron under this provider's names
and metadata for a load balancer the real Octavia never had, beside a real
load balancer. Housekeeping rounds with a short grace period then run
against the testbed's octavia.conf, in a process of their own (Octavia
configures its database engine once per process: running this module as
``python -m tests.functional.sriov_octavia.test_housekeeping`` is that
process). They remove the orphans, log each removal, and leave the live
load balancer's amphora and ports alone; once that load balancer is
deleted (DELETED in Octavia's database), a leftover of it goes too. The
live amphora's firewall is changed by hand meanwhile: its agent repairs it
and the round reports the repair.
"""

import json
import os
import subprocess
import sys
import time
import uuid

from openstack import exceptions as os_exceptions
import pytest

from flows.tasks import network
from sriov_octavia import amphorae
from sriov_octavia import naming
from sriov_octavia_testbed import netlab
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.cloud_state import agent_for
from tests.functional.sriov_octavia import openstack_cli as osc

PORT_BASE = 18000
PREFIX = 'thk'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
GRACE = 3
# The agents' [amphora_agent] firewall_verify_interval, as amphorae boot.
AGENT_VERIFY_INTERVAL = 30
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def housekeeping_rounds(tb, grace, pauses):
    """Rounds in a child process: one, then one after each pause.

    Returns each round's summary and what the child logged.
    """
    result = subprocess.run(
        [sys.executable, '-W', 'ignore', '-m', __name__, tb.octavia_conf,
         str(grace)] + [str(pause) for pause in pauses],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-6000:]
    rounds = [json.loads(line) for line in result.stdout.splitlines()
              if line.startswith('{')]
    assert len(rounds) == len(pauses) + 1, result.stdout
    return rounds, result.stderr


def _gone(find):
    try:
        return find() is None
    except os_exceptions.NotFoundException:
        return True


def _repairs(tb, conn, server):
    with agent_for(tb, conn, server) as agent:
        return agent.get_counters()['repairs']


def _wait_gone(find, limit=60):
    """Poll until ``find`` finds nothing; a limit, not a timing check."""
    deadline = time.monotonic() + limit
    while not _gone(find):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    return True


@pytest.fixture(scope='module')
def flavor(tb, conn):
    return osc.make_flavor(tb, conn)


@pytest.fixture(scope='module')
def vip_network(conn):
    return conn.network.find_subnet('vip-subnet',
                                    ignore_missing=False).network_id


def _orphans_of(conn, lb_id, vip_network):
    """Everything this provider makes for a load balancer, made by hand."""
    group = conn.compute.create_server_group(
        name=naming.server_group_name(lb_id), policy='anti-affinity')
    compute_flavor = conn.compute.find_flavor(seed.PLAIN_FLAVOR,
                                              ignore_missing=False)
    image = conn.image.find_image(seed.AMPHORA_IMAGE, ignore_missing=False)
    # No management port: the emulator keeps it API state, no amphora.
    server = conn.compute.create_server(
        name=naming.server_name(lb_id, naming.ROLE_MASTER),
        flavor_id=compute_flavor.id, image_id=image.id, networks='none',
        scheduler_hints={'group': group.id},
        metadata={naming.META_LOADBALANCER: lb_id,
                  naming.META_ROLE: naming.ROLE_MASTER,
                  naming.META_AMPHORA_ID: str(uuid.uuid4())})
    conn.compute.wait_for_server(server, wait=120)
    security_group = conn.network.create_security_group(
        name=naming.security_group_name(lb_id))
    ports = [conn.network.create_port(network_id=vip_network, name=name)
             for name in (
                 naming.vrrp_port_name(lb_id, naming.ROLE_MASTER),
                 naming.replacement_vrrp_port_name(lb_id,
                                                   naming.ROLE_BACKUP),
                 naming.member_port_name(lb_id, naming.ROLE_MASTER,
                                         vip_network))]
    return {'server': server, 'server group': group,
            'security group': security_group, 'ports': ports}


def test_orphans_go_and_a_live_load_balancer_stays(tb, conn, fabric,
                                                   flavor, vip_network):
    lb = osc.create_load_balancer(tb, osc.unique(tb, 'lb'), flavor['id'])
    try:
        [amphora] = amphorae.find_servers(conn, lb['id'])
        live_servers = [amphora.id]
        live_ports = sorted(port.id for port
                            in network.find_vrrp_ports(conn, lb['id']))
        assert live_ports
        # By hand, in the amphora: whatever reaches the essentials chain
        # is accepted, which opens the VF to everything.
        netlab.run(fabric.amphora(amphora.id).data_namespace, [
            'nft', 'add', 'rule', 'inet', 'sriov_octavia', 'essentials',
            'accept'])
        gone_lb = str(uuid.uuid4())
        orphans = _orphans_of(conn, gone_lb, vip_network)
        deadline = time.monotonic() + AGENT_VERIFY_INTERVAL + 30
        while _repairs(tb, conn, amphora)['count'] < 1:
            assert time.monotonic() < deadline
            time.sleep(1)

        # The first round only sees them; after the grace period the next
        # removes them, but the server group, which still holds the
        # server: that goes in the round after.
        rounds, log = housekeeping_rounds(tb, GRACE, [GRACE + 1.5, 3])

        assert rounds[0]['removed'] == 0
        assert rounds[0]['orphans'] == 6
        assert [one['firewall_repairs'] for one in rounds] == [1, 0, 0]
        assert (f'(server {amphora.id}) of load balancer {lb["id"]}: its '
                f'agent found its firewall changed and repaired it 1 more '
                f'time(s)') in log
        assert 'chain essentials: unexpected rule at 7' in log
        assert rounds[1]['removed'] == 5
        assert rounds[1]['removed'] + rounds[2]['removed'] == 6
        server = orphans['server']
        assert _wait_gone(lambda: conn.compute.get_server(server.id))
        group = orphans['server group']
        assert _gone(lambda: conn.compute.get_server_group(group.id))
        assert _gone(lambda: conn.network.get_security_group(
            orphans['security group'].id))
        for port in orphans['ports']:
            assert _gone(lambda: conn.network.get_port(port.id))
            kind = 'member' if 'member' in port.name else 'VRRP'
            assert (f'Removed orphaned {kind} port {port.id} ({port.name}) '
                    f'of load balancer {gone_lb}') in log
        assert (f'Removed orphaned server {server.id} ({server.name}) of '
                f'load balancer {gone_lb}') in log
        assert (f'Removed orphaned server group {group.id}') in log

        # The live load balancer: all there, and still serving.
        assert sorted(server.id for server in amphorae.find_servers(
            conn, lb['id'])) == live_servers
        assert sorted(port.id for port in network.find_vrrp_ports(
            conn, lb['id'])) == live_ports
        assert f'of load balancer {lb["id"]}, which' not in log
        assert osc.cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'
    finally:
        osc.cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'],
                '--wait')

    # DELETED in Octavia's database now: what it left behind is an orphan.
    leftover = conn.network.create_port(
        network_id=vip_network,
        name=naming.vrrp_port_name(lb['id'], naming.ROLE_STANDALONE))
    rounds, log = housekeeping_rounds(tb, 0, [])
    assert rounds[0]['removed'] == 1
    assert _gone(lambda: conn.network.get_port(leftover.id))
    assert (f'Removed orphaned VRRP port {leftover.id} ({leftover.name}) of '
            f'load balancer {lb["id"]}') in log


def test_a_young_orphan_stays(tb, conn, vip_network):
    port = conn.network.create_port(
        network_id=vip_network,
        name=naming.vrrp_port_name(str(uuid.uuid4()), naming.ROLE_MASTER))
    try:
        rounds, _ = housekeeping_rounds(tb, 600, [1])
        assert [one['removed'] for one in rounds] == [0, 0]
        assert [one['waiting'] for one in rounds] == [1, 1]
        assert conn.network.get_port(port.id).id == port.id
    finally:
        conn.network.delete_port(port, ignore_missing=True)


def main(argv):
    """The child: ``OCTAVIA_CONF GRACE [PAUSE ...]``, a round each."""
    from octavia.common import config as octavia_config
    from oslo_config import cfg
    from oslo_log import log as logging

    # Registers this provider's options before the file is parsed.
    from sriov_octavia.worker import housekeeping

    conf_file, grace, pauses = argv[0], int(argv[1]), argv[2:]
    octavia_config.init(['--config-file', conf_file])
    # oslo.db on file SQLite uses a NullPool, which refuses a pool timeout.
    cfg.CONF.set_override('pool_timeout', None, group='database')
    cfg.CONF.set_override('orphan_grace_period', grace,
                          group='sriov_worker')
    logging.setup(cfg.CONF, 'thk-housekeeping')
    keeper = housekeeping.Housekeeper(cfg.CONF)
    print(json.dumps(keeper.run_once()), flush=True)
    for pause in pauses:
        time.sleep(float(pause))
        print(json.dumps(keeper.run_once()), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
