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
"""The fabric's kernel plumbing, with real namespaces, links and packets.

These amphorae boot without an agent (``start_agent=False``); the agent's
side is in test_plumbing_agent.py.
"""

import concurrent.futures
import ipaddress
import shutil
import subprocess

from pyroute2 import netns as pyroute2_netns
import pytest

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed import plumbing
from sriov_octavia_testbed.plumbing import links
from tests.functional.testbed import controller_files
from tests.functional.testbed import fabric_lab

pytestmark = pytest.mark.netns

PREFIX = 'tpl'
# The root namespace gets this subnet's gateway: it must clash with no
# address of the machine (whose own network is 192.0.2.0/24 here).
MGMT_SUBNET = {'cidr': '203.0.113.240/28', 'gateway_ip': '203.0.113.241'}
MGMT_SUBNET_V6 = {'cidr': '2001:db8:e2::/64', 'gateway_ip': '2001:db8:e2::1'}
VIP_SUBNET = {'cidr': '198.51.100.0/25', 'gateway_ip': '198.51.100.1'}
CLIENT_SUBNET = {'cidr': '198.51.100.128/25', 'gateway_ip': '198.51.100.129'}


_new_id = fabric_lab.new_id


def mgmt_port(ip, mac='fa:16:3e:00:e2:01'):
    return fabric_lab.mgmt_port(ip, mac)


def data_port(network_id, mac):
    return {'id': _new_id(), 'mac_address': mac, 'network_id': network_id,
            'fixed_ips': []}


def leftovers():
    """Every namespace and root-namespace link named with the prefix."""
    owned = f'{PREFIX}-'
    return ([name for name in pyroute2_netns.listnetns()
             if name.startswith(owned)] +
            [name for name in links.names(None) if name.startswith(owned)])


def ping(namespace, address):
    return netlab.run(namespace, ['ping', '-c', '1', '-W', '2', address],
                      check=False).returncode == 0


fabric = fabric_lab.fabric_fixture(PREFIX, MGMT_SUBNET)


def boot(fabric, ip='203.0.113.242', mac='fa:16:3e:00:e2:01'):
    server_id = _new_id()
    return fabric.boot_amphora(server_id, mgmt_port(ip, mac))


def boot_with_vf(fabric, subnet=None):
    """An amphora with a VF on a new network: (amphora, network, ifname)."""
    amphora = boot(fabric)
    network_id = _new_id()
    ifname = fabric.attach_vf(amphora.server_id,
                              data_port(network_id, 'fa:16:3e:00:e2:11'),
                              subnet)
    return amphora, network_id, ifname


def test_boot_creates_both_namespaces_and_the_mgmt_link(fabric):
    amphora = boot(fabric)

    assert netlab.namespace_exists(amphora.namespace)
    assert netlab.namespace_exists(amphora.data_namespace)
    eth0 = links.find(amphora.namespace, 'eth0')
    assert eth0['address'] == 'fa:16:3e:00:e2:01' and eth0['up']
    assert ipaddress.ip_interface('203.0.113.242/28') in links.addresses(
        amphora.namespace, 'eth0')
    peer = links.find(None, fabric.names.mgmt_peer(amphora.server_id))
    assert peer['master'] == f'{PREFIX}-mgmt'
    assert amphora.agent_url == 'https://203.0.113.242:9443'
    # The controller's side (the root namespace) reaches the amphora, and
    # the amphora routes through the gateway.
    assert ping(None, amphora.mgmt_ip)
    routes = netlab.run(amphora.namespace, ['ip', 'route', 'show',
                                            'default']).stdout
    assert 'via 203.0.113.241' in routes


def test_ipv6_management_network(fabric):
    fabric.ensure_mgmt_network(MGMT_SUBNET_V6)
    amphora = fabric.boot_amphora(
        _new_id(), {'mac_address': 'fa:16:3e:00:e2:06',
                    'fixed_ips': [{'ip_address': '2001:db8:e2::10'},
                                  {'ip_address': '203.0.113.250'}]})
    assert amphora.mgmt_ip == '2001:db8:e2::10'
    assert amphora.agent_url == 'https://[2001:db8:e2::10]:9443'
    assert ping(None, '2001:db8:e2::10')
    assert ping(None, '203.0.113.250')


def test_boot_on_an_unknown_mgmt_subnet_creates_nothing(fabric):
    before = leftovers()
    with pytest.raises(plumbing.PlumbingError):
        boot(fabric, ip='198.51.100.77')
    assert leftovers() == before
    assert fabric.amphorae() == []


def test_a_mgmt_subnet_clashing_with_the_machine_routes_is_refused(fabric):
    # Stands in for the machine's own network: were the gateway address
    # added, the machine's traffic to that network would go to the bridge.
    taken = f'{PREFIX}-clash'
    subprocess.run(['ip', 'link', 'add', taken, 'type', 'bridge'],
                   check=True)
    netlab.add_address(None, taken, '203.0.113.225/28')
    netlab.set_up(None, taken)

    with pytest.raises(plumbing.PlumbingError, match=taken):
        fabric.ensure_mgmt_network({'cidr': '203.0.113.224/27',
                                    'gateway_ip': '203.0.113.230'})

    assert ipaddress.ip_interface('203.0.113.230/27') not in links.addresses(
        None, f'{PREFIX}-mgmt')


def test_the_same_server_cannot_boot_twice(fabric):
    amphora = boot(fabric)
    with pytest.raises(plumbing.PlumbingError):
        fabric.boot_amphora(amphora.server_id,
                            mgmt_port('203.0.113.243', 'fa:16:3e:00:e2:02'))
    assert ping(None, amphora.mgmt_ip)


def test_concurrent_boots_get_working_amphorae(fabric):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        amphorae = list(pool.map(
            lambda number: boot(fabric, ip=f'203.0.113.{242 + number}',
                                mac=f'fa:16:3e:00:e2:0{number}'),
            range(4)))
    assert len({amphora.namespace for amphora in amphorae}) == 4
    for amphora in amphorae:
        assert ping(None, amphora.mgmt_ip)


def test_waiting_for_an_agent_that_exits_reports_its_log(tmp_path):
    fab = plumbing.Fabric(str(tmp_path / 'state'), prefix=PREFIX,
                          agent_executable=shutil.which('false'))
    try:
        fab.ensure_mgmt_network(MGMT_SUBNET)
        server_id = _new_id()
        amphora = fab.boot_amphora(
            server_id, mgmt_port('203.0.113.242'),
            user_data=controller_files.user_data(fab, server_id,
                                                 '203.0.113.242'))
        with pytest.raises(plumbing.PlumbingError, match='not running'):
            fab.wait_for_agent(amphora.server_id, timeout=30)
        assert not fab.agent_running(amphora.server_id)
    finally:
        fab.cleanup()


def test_attached_vf_is_in_the_data_namespace_with_the_port_mac(fabric):
    amphora, network_id, ifname = boot_with_vf(fabric, VIP_SUBNET)

    assert ifname == 'eth1'
    vf = links.find(amphora.data_namespace, ifname)
    # As a freshly hot-plugged VF: the port's MAC, down, no address.
    assert vf['address'] == 'fa:16:3e:00:e2:11'
    assert not vf['up']
    assert not [address for address in links.addresses(
        amphora.data_namespace, ifname) if address.version == 4]
    assert links.find(amphora.namespace, ifname) is None
    bridge = fabric.names.network_bridge(network_id)
    (record,) = fabric.vfs(amphora.server_id).values()
    peer = links.find(fabric.names.phys_namespace, record['peer'])
    assert peer['master'] == bridge and peer['up']
    # The phys namespace routes: the subnet's gateway is on the bridge.
    assert ipaddress.ip_interface('198.51.100.1/25') in links.addresses(
        fabric.names.phys_namespace, bridge)


def test_vfs_on_two_networks_get_their_own_bridges(fabric):
    amphora = boot(fabric)
    first, second = _new_id(), _new_id()
    fabric.attach_vf(amphora.server_id, data_port(first, 'fa:16:3e:00:e2:11'))
    ifname = fabric.attach_vf(amphora.server_id,
                              data_port(second, 'fa:16:3e:00:e2:12'))
    assert ifname == 'eth2'
    masters = {vf['network_id']: links.find(fabric.names.phys_namespace,
                                            vf['peer'])['master']
               for vf in fabric.vfs(amphora.server_id).values()}
    assert masters == {first: fabric.names.network_bridge(first),
                       second: fabric.names.network_bridge(second)}


def test_a_host_on_the_network_reaches_an_address_on_the_vf(fabric):
    amphora, network_id, ifname = boot_with_vf(fabric, VIP_SUBNET)
    # What the amphora agent does when it plugs a VIP.
    netlab.add_address(amphora.data_namespace, ifname, '198.51.100.10/25')
    netlab.set_up(amphora.data_namespace, ifname)
    client = fabric.add_host('client', network_id, 'fa:16:3e:00:e2:21',
                             '198.51.100.20/25')

    assert client == f'{PREFIX}-host-client'
    assert ping(client, '198.51.100.10')
    neighbours = netlab.run(client, ['ip', 'neigh', 'show',
                                     '198.51.100.10']).stdout
    assert 'fa:16:3e:00:e2:11' in neighbours


def _sleeper(namespace):
    """A process started in ``namespace``, as a test's server would be."""
    return subprocess.Popen(['ip', 'netns', 'exec', namespace, 'sleep',
                             '600'])


def test_removing_a_host_ends_what_runs_on_it(fabric):
    host = fabric.add_host('server', _new_id(), 'fa:16:3e:00:e2:31',
                           '198.51.100.30/25')
    server = _sleeper(host)
    try:
        fabric.remove_host('server')
        assert server.wait(timeout=30) is not None
        assert not netlab.namespace_exists(host)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_cleanup_ends_what_runs_on_hosts(fabric):
    host = fabric.add_host('server', _new_id(), 'fa:16:3e:00:e2:32',
                           '198.51.100.31/25')
    server = _sleeper(host)
    try:
        removed = fabric.cleanup()
        assert server.wait(timeout=30) is not None
        assert server.pid in removed['processes']
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_hosts_on_other_subnets_are_routed_through_the_phys_namespace(
        fabric):
    amphora = boot(fabric)
    vip_network, client_network = _new_id(), _new_id()
    ifname = fabric.attach_vf(amphora.server_id,
                              data_port(vip_network, 'fa:16:3e:00:e2:11'),
                              VIP_SUBNET)
    netlab.add_address(amphora.data_namespace, ifname, '198.51.100.10/25')
    netlab.set_up(amphora.data_namespace, ifname)
    netlab.add_route(amphora.data_namespace, '0.0.0.0/0', '198.51.100.1')
    client = fabric.add_host('client', client_network, 'fa:16:3e:00:e2:21',
                             '198.51.100.130/25', gateway='198.51.100.129')
    assert ping(client, '198.51.100.10')


def test_ipv6_hosts_are_routed_to_the_vf_too(fabric):
    amphora = boot(fabric)
    vip_network, client_network = _new_id(), _new_id()
    ifname = fabric.attach_vf(
        amphora.server_id, data_port(vip_network, 'fa:16:3e:00:e2:11'),
        {'cidr': '2001:db8:e2:1::/64', 'gateway_ip': '2001:db8:e2:1::1'})
    netlab.add_address(amphora.data_namespace, ifname, '2001:db8:e2:1::10/64')
    netlab.set_up(amphora.data_namespace, ifname)
    netlab.add_route(amphora.data_namespace, '::/0', '2001:db8:e2:1::1')
    client = fabric.add_host('client6', client_network, 'fa:16:3e:00:e2:21',
                             '2001:db8:e2:2::20/64',
                             gateway='2001:db8:e2:2::1')
    assert ping(client, '2001:db8:e2:1::10')


def test_detach_removes_the_vf_and_its_peer(fabric):
    amphora = boot(fabric)
    port = data_port(_new_id(), 'fa:16:3e:00:e2:11')
    ifname = fabric.attach_vf(amphora.server_id, port)
    peer = fabric.vfs(amphora.server_id)[port['id']]['peer']

    fabric.detach_vf(amphora.server_id, port['id'])

    assert links.find(amphora.data_namespace, ifname) is None
    assert links.find(fabric.names.phys_namespace, peer) is None
    assert fabric.vfs(amphora.server_id) == {}
    with pytest.raises(plumbing.PlumbingError):
        fabric.detach_vf(amphora.server_id, port['id'])


def test_a_port_is_attached_once(fabric):
    amphora = boot(fabric)
    other = boot(fabric, ip='203.0.113.243', mac='fa:16:3e:00:e2:02')
    port = data_port(_new_id(), 'fa:16:3e:00:e2:11')
    fabric.attach_vf(amphora.server_id, port)
    for server_id in (amphora.server_id, other.server_id):
        with pytest.raises(plumbing.PlumbingError):
            fabric.attach_vf(server_id, port)
    assert fabric.vfs(other.server_id) == {}


def test_an_unreachable_agent_is_cut_off_and_comes_back(fabric):
    amphora = boot(fabric)
    fabric.set_agent_reachable(amphora.server_id, False)
    assert not ping(None, amphora.mgmt_ip)
    fabric.set_agent_reachable(amphora.server_id, True)
    assert ping(None, amphora.mgmt_ip)


def test_an_amphora_without_agent_cannot_reboot(fabric):
    amphora = boot(fabric)
    with pytest.raises(plumbing.PlumbingError, match='without an agent'):
        fabric.reboot_amphora(amphora.server_id)


def test_delete_removes_the_amphora_and_is_idempotent(fabric):
    amphora, network_id, _ifname = boot_with_vf(fabric)

    fabric.delete_amphora(amphora.server_id)

    remaining = leftovers()
    assert amphora.namespace not in remaining
    assert amphora.data_namespace not in remaining
    assert fabric.names.mgmt_peer(amphora.server_id) not in remaining
    # Only the network's bridge stays: other amphorae may use it.
    assert sorted(links.names(fabric.names.phys_namespace)) == [
        fabric.names.network_bridge(network_id), 'lo']
    assert fabric.amphora(amphora.server_id) is None
    fabric.delete_amphora(amphora.server_id)


def test_a_new_fabric_on_the_same_state_finds_everything(fabric):
    amphora = boot(fabric)
    port = data_port(_new_id(), 'fa:16:3e:00:e2:11')
    fabric.attach_vf(amphora.server_id, port)

    # As after a restart of the emulator.
    restarted = plumbing.Fabric(fabric.state_dir, prefix=PREFIX)
    assert restarted.amphora(amphora.server_id) == amphora
    restarted.detach_vf(amphora.server_id, port['id'])
    assert fabric.vfs(amphora.server_id) == {}
    restarted.delete_amphora(amphora.server_id)
    assert not netlab.namespace_exists(amphora.namespace)


def test_cleanup_removes_everything_with_the_prefix_and_nothing_else(
        fabric):
    # A namespace and a link whose names merely start like the prefix.
    bystander = f'{PREFIX}keep-e2'
    pyroute2_netns.create(bystander)
    try:
        subprocess.run(['ip', 'link', 'add', bystander, 'type', 'bridge'],
                       check=True)
        network_id = _new_id()
        for number in (2, 3):
            amphora = boot(fabric, ip=f'203.0.113.24{number}',
                           mac=f'fa:16:3e:00:e2:0{number}')
            fabric.attach_vf(amphora.server_id,
                             data_port(network_id,
                                       f'fa:16:3e:00:e2:1{number}'))
        fabric.add_host('client', network_id, 'fa:16:3e:00:e2:21',
                        '198.51.100.20/25')
        assert leftovers()

        removed = fabric.cleanup()

        assert leftovers() == []
        assert f'{PREFIX}-phys' in removed['namespaces']
        assert f'{PREFIX}-mgmt' in removed['links']
        assert fabric.amphorae() == []
        assert netlab.namespace_exists(bystander)
        assert links.find(None, bystander) is not None
    finally:
        subprocess.run(['ip', 'link', 'del', bystander], check=False)
        pyroute2_netns.remove(bystander)
