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
"""A failover seen from the VIP subnet: the VIP comes back at a new MAC.

A client namespace on the VIP subnet's bridge still holds the VIP at the
failed amphora's MAC; the real agent plugs the replacement's veth "VF" and
the client must hold the new MAC within a second, as it would learn only
from the agent's gratuitous ARP and unsolicited Neighbor Advertisement:
through a bridge the kernel's own announcement, sent as the link comes up,
goes before the bridge port forwards, and a link already up gets none.
"""

import os
import time
import types

from pyroute2 import IPRoute
import pytest

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest

# The plug tests' ports (test_plug.py); the two never run in one process
# at once, and a port another run took is retried.
PORTS = range(19460, 19480)
PREFIX = f'tpn-{os.getpid()}'
VF_MAC = 'fa:16:3e:61:00:01'
FAILED_MAC = 'fa:16:3e:61:00:ff'
VIP = '192.0.2.10'
VRRP_IP = '192.0.2.5'
VIP6 = '2001:db8:60::10'
# The announcement's first round is immediate; a second is the bound.
LEARN_DEADLINE = 1.0


@pytest.fixture
def lab():
    """Data namespace ``amp``, bridge ``br0`` in ``phys``, client ``cli``."""
    lab = netlab.Lab(PREFIX)
    try:
        amp = lab.namespace('amp')
        phys = lab.namespace('phys')
        cli = lab.namespace('cli')
        lab.bridge(phys, 'br0')
        lab.veth(phys, 'cli0', cli, 'eth0')
        with IPRoute(netns=amp) as ipr:
            ipr.link('add', ifname='eth1', kind='veth', address=VF_MAC,
                     peer={'ifname': 'vf1', 'net_ns_fd': phys})
        with IPRoute(netns=phys) as ipr:
            bridge = ipr.link_lookup(ifname='br0')[0]
            for port in ('cli0', 'vf1'):
                ipr.link('set', index=ipr.link_lookup(ifname=port)[0],
                         master=bridge, state='up')
        netlab.add_address(cli, 'eth0', '192.0.2.1/24')
        netlab.add_address(cli, 'eth0', '2001:db8:60::1/64')
        yield types.SimpleNamespace(lab=lab, namespace=amp, client=cli)
    finally:
        lab.close()


@pytest.fixture
def client(tmp_path, pki, lab):
    """An AgentClient to the real agent on ``amp``, stopped by PID after."""
    for _ in range(len(PORTS)):
        agent = conftest.AgentProcess(
            str(tmp_path), pki, lab.namespace, conftest.free_port(PORTS),
            name=f'agent-{PREFIX}')
        try:
            agent.start()
            break
        except conftest.PortTaken:
            continue
    else:
        pytest.fail(f'ports {PORTS.start}-{PORTS.stop - 1} all taken')
    try:
        with agent_client.AgentClient(('127.0.0.1', agent.port), pki.client,
                                      pki.ca, timeout=(5, 30),
                                      retries=1) as client:
            yield client
    finally:
        agent.stop()
        agent.remove_engine_files()


def lladdr(namespace, address):
    """The MAC ``namespace`` holds for ``address`` on eth0, or None."""
    with IPRoute(netns=namespace) as ipr:
        entries = ipr.get_neighbours(dst=address)
    return next((entry.get_attr('NDA_LLADDR') for entry in entries), None)


def wait_for_lladdr(namespace, addresses, mac, started):
    """Seconds after ``started`` at which each address was at ``mac``."""
    learnt = {}
    deadline = started + LEARN_DEADLINE
    while True:
        for address in addresses:
            if address not in learnt and lladdr(namespace, address) == mac:
                learnt[address] = time.monotonic() - started
        if len(learnt) == len(addresses) or time.monotonic() > deadline:
            return learnt
        time.sleep(0.01)


@pytest.mark.parametrize('vf_up, nud', [
    (False, 'stale'), (False, 'reachable'),
    (True, 'stale'), (True, 'reachable'),
], ids=['hot-plugged-stale', 'hot-plugged-reachable',
        'already-up-stale', 'already-up-reachable'])
def test_client_learns_the_vips_new_mac(client, lab, vf_up, nud):
    if vf_up:
        # Then only the agent's announcement can tell the client.
        netlab.set_up(lab.namespace, 'eth1')
    for address in (VIP, VIP6):
        netlab.run(lab.client, ['ip', 'neigh', 'replace', address, 'lladdr',
                                FAILED_MAC, 'dev', 'eth0', 'nud', nud])
    assert lladdr(lab.client, VIP) == FAILED_MAC

    started = time.monotonic()
    client.plug_vip(VIP, VF_MAC, VRRP_IP, '192.0.2.0/24', gateway=None,
                    additional_vips=[{'ip_address': VIP6,
                                      'subnet_cidr': '2001:db8:60::/64'}])

    learnt = wait_for_lladdr(lab.client, (VIP, VIP6), VF_MAC, started)
    assert set(learnt) == {VIP, VIP6}, (
        f'after {LEARN_DEADLINE} s the client has {VIP} at '
        f'{lladdr(lab.client, VIP)} and {VIP6} at '
        f'{lladdr(lab.client, VIP6)}, not {VF_MAC}')


def test_active_standby_announces_the_vrrp_address_only(client, lab):
    # keepalived owns the VIP and announces it as it takes it.
    netlab.set_up(lab.namespace, 'eth1')
    for address in (VRRP_IP, VIP):
        netlab.run(lab.client, ['ip', 'neigh', 'replace', address, 'lladdr',
                                FAILED_MAC, 'dev', 'eth0', 'nud', 'stale'])

    started = time.monotonic()
    client.plug_vip(VIP, VF_MAC, VRRP_IP, '192.0.2.0/24',
                    vip_on_interface=False)

    assert set(wait_for_lladdr(lab.client, (VRRP_IP,), VF_MAC,
                               started)) == {VRRP_IP}
    assert lladdr(lab.client, VIP) == FAILED_MAC
