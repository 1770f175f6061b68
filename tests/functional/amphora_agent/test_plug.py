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
"""Plugging hot-plugged "VFs" through the real agent, over real mTLS.

The controller's AgentClient talks to the ``amphora-sriov-agent`` console
script; the agent's data namespace receives veth "VFs" the way Nova hands
over a VF (down, without addresses, with the port's MAC), their peers on a
bridge in a "physical network" namespace, where a client namespace holds
the VIP subnet's gateway and a client address behind it.
"""

import os
import types

from pyroute2 import IPRoute
import pytest

from octavia_lib.api.drivers import data_models

from amphora_agent.network import interfaces
from amphora_agent.network import model
from sriov_octavia.amphora import client as agent_client
from sriov_octavia.amphora import firewall_rules
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest

PORTS = range(19460, 19480)
PREFIX = f'tpg-{os.getpid()}'
VIP_MAC = 'fa:16:3e:60:00:01'
MEMBER_MAC = 'fa:16:3e:60:00:02'
LISTENER_PORT = 8080

VIP = '192.0.2.10'
VRRP_IP = '192.0.2.5'
VIP6 = '2001:db8:60::10'
GATEWAY = '192.0.2.1'
GATEWAY6 = '2001:db8:60::1'
# Behind the gateway: replies reach it only through the plugged routes.
CLIENT = '198.51.100.20'
CLIENT6 = '2001:db8:61::20'
MEMBER_IP = '203.0.113.5'


def plug_vip_args(**changes):
    args = {
        'vip': VIP, 'mac_address': VIP_MAC, 'vrrp_ip': VRRP_IP,
        'subnet_cidr': '192.0.2.0/24', 'gateway': GATEWAY,
        'host_routes': [{'destination': '203.0.113.128/25',
                         'nexthop': '192.0.2.254'}],
        'mtu': 1400,
        'additional_vips': [{'ip_address': VIP6,
                             'subnet_cidr': '2001:db8:60::/64',
                             'gateway': GATEWAY6}],
    }
    args.update(changes)
    return args


def add_vf(data_namespace, phys, ifname, peer, mac):
    """A veth "VF": ``ifname`` down with ``mac``, ``peer`` on br0, up.

    ``data_namespace`` None puts the VF into this process's namespace.
    """
    with IPRoute(netns=data_namespace) if data_namespace else IPRoute() as ipr:
        ipr.link('add', ifname=ifname, kind='veth', address=mac,
                 peer={'ifname': peer, 'net_ns_fd': phys})
    with IPRoute(netns=phys) as ipr:
        ipr.link('set', index=ipr.link_lookup(ifname=peer)[0],
                 master=ipr.link_lookup(ifname='br0')[0], state='up')


@pytest.fixture
def amphora():
    """Data namespace ``amp``, bridge namespace ``phys``, client ``cli``.

    ``cli`` is the router of the VIP subnet (192.0.2.1, 2001:db8:60::1)
    and holds the client addresses behind it.
    """
    lab = netlab.Lab(PREFIX)
    try:
        amp = lab.namespace('amp')
        phys = lab.namespace('phys')
        cli = lab.namespace('cli')
        lab.bridge(phys, 'br0')
        lab.veth(phys, 'cli0', cli, 'eth0')
        with IPRoute(netns=phys) as ipr:
            ipr.link('set', index=ipr.link_lookup(ifname='cli0')[0],
                     master=ipr.link_lookup(ifname='br0')[0])
        for cidr in (f'{GATEWAY}/24', f'{GATEWAY6}/64', '203.0.113.1/24'):
            netlab.add_address(cli, 'eth0', cidr)
        for cidr in (f'{CLIENT}/32', f'{CLIENT6}/128'):
            netlab.add_address(cli, 'lo', cidr)
        add_vf(amp, phys, 'eth1', 'vf1', VIP_MAC)
        yield types.SimpleNamespace(lab=lab, namespace=amp, phys=phys,
                                    client=cli)
    finally:
        lab.close()


@pytest.fixture
def agent(tmp_path, pki, amphora):
    """The real agent on the test's data namespace; stopped by PID."""
    for _ in range(len(PORTS)):
        process = conftest.AgentProcess(
            str(tmp_path), pki, amphora.namespace,
            conftest.free_port(PORTS), name=f'agent-{PREFIX}')
        try:
            process.start()
            break
        except conftest.PortTaken:
            continue
    else:
        pytest.fail(f'ports {PORTS.start}-{PORTS.stop - 1} all taken')
    yield process
    process.stop()
    process.remove_engine_files()


@pytest.fixture
def client(agent, pki):
    with agent_client.AgentClient(('127.0.0.1', agent.port), pki.client,
                                  pki.ca, timeout=(5, 30),
                                  retries=1) as client:
        yield client


def kernel_view(namespace, mac):
    """What the kernel holds for the interface with ``mac``."""
    with IPRoute(netns=namespace) as ipr:
        index = ipr.link_lookup(address=mac)[0]
        link = ipr.get_links(index)[0]
        table = model.TABLE_BASE + index
        addresses = sorted(
            f"{message.get_attr('IFA_ADDRESS')}/{message['prefixlen']}"
            for message in ipr.get_addr(index=index)
            if not message.get_attr('IFA_ADDRESS').startswith('fe80:'))
        routes = set()
        for message in ipr.route('dump'):
            route_table = message.get_attr('RTA_TABLE')
            if (route_table in (table, 254) and
                    message.get_attr('RTA_OIF') == index and
                    message['proto'] != 2):  # not the kernel's own
                routes.add((route_table, message.get_attr('RTA_DST'),
                            message['dst_len'],
                            message.get_attr('RTA_GATEWAY')))
        rules = {(message.get_attr('FRA_SRC'), message.get_attr('FRA_TABLE'))
                 for message in ipr.get_rules()
                 if message.get_attr('FRA_PRIORITY') == model.RULE_PRIORITY
                 and message.get_attr('FRA_TABLE') == table}
        return types.SimpleNamespace(
            ifname=link.get_attr('IFLA_IFNAME'), table=table,
            up=bool(link['flags'] & 1), mtu=link.get_attr('IFLA_MTU'),
            addresses=addresses, routes=routes, rules=rules)


def security_group(allowed):
    return {'vip_interfaces': [VRRP_IP],
            'listeners': [{'protocol': 'TCP', 'port': LISTENER_PORT,
                           'allowed_cidrs': list(allowed)}],
            'vrrp_peers': [], 'members': []}


def test_plugged_vf_arrives_configured(client, amphora):
    before = kernel_view(amphora.namespace, VIP_MAC)
    assert not before.up and before.addresses == []

    interface = client.plug_vip(**plug_vip_args())

    view = kernel_view(amphora.namespace, VIP_MAC)
    assert view.up
    assert view.mtu == 1400
    assert view.addresses == sorted(['192.0.2.5/24', '192.0.2.10/32',
                                     '2001:db8:60::10/128'])
    table = view.table
    assert view.rules == {(VRRP_IP, table), (VIP, table), (VIP6, table)}
    assert view.routes == {
        (table, '192.0.2.0', 24, None),
        (table, None, 0, GATEWAY),
        (254, None, 0, GATEWAY),
        (table, '203.0.113.128', 25, '192.0.2.254'),
        (254, '203.0.113.128', 25, '192.0.2.254'),
        (table, '2001:db8:60::', 64, None),
        (254, '2001:db8:60::', 64, None),
        (table, None, 0, GATEWAY6),
        (254, None, 0, GATEWAY6),
    }
    assert interface['name'] == 'eth1'
    assert interface['mac_address'] == VIP_MAC
    assert interface['routing_table'] == table
    assert interface['vf'] is True


def test_vip_reachable_once_the_firewall_allows_it(client, amphora,
                                                   tcp_service):
    client.plug_vip(**plug_vip_args())
    tcp_service(amphora.namespace, '::', LISTENER_PORT)
    # The drop-all base filters the new VF until rules arrive.
    assert not conftest.connect(amphora.client, CLIENT, VIP, LISTENER_PORT)

    applied = client.set_security_group(
        security_group([f'{CLIENT}/32', f'{CLIENT6}/128']))

    assert applied['interfaces'] == {'eth1': 'vip'}
    assert conftest.connect(amphora.client, CLIENT, VIP, LISTENER_PORT)
    assert conftest.connect(amphora.client, CLIENT6, VIP6, LISTENER_PORT)
    # The gateway address is on the subnet but not allowed.
    assert not conftest.connect(amphora.client, GATEWAY, VIP, LISTENER_PORT)
    interfaces = {item['name']: item for item in client.get_interfaces()}
    assert interfaces['eth1']['firewall_role'] == 'vip'


def test_body_from_the_load_balancer_filters_real_traffic(
        client, amphora, tcp_service):
    listeners = [
        data_models.Listener(listener_id='l-http', protocol='HTTP',
                             protocol_port=LISTENER_PORT,
                             allowed_cidrs=[f'{CLIENT}/32']),
        data_models.Listener(listener_id='l-off', protocol='TCP',
                             protocol_port=LISTENER_PORT + 1,
                             admin_state_up=False)]
    loadbalancer = data_models.LoadBalancer(
        loadbalancer_id='lb', vip_address=VIP,
        listeners=listeners).to_dict(recurse=True, render_unsets=False)
    client.plug_vip(**plug_vip_args())
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT + 1)

    client.set_security_group(firewall_rules.security_group_body(
        loadbalancer, [VRRP_IP], VRRP_IP))

    assert conftest.connect(amphora.client, CLIENT, VIP, LISTENER_PORT)
    assert not conftest.connect(amphora.client, GATEWAY, VIP, LISTENER_PORT)
    assert not conftest.connect(amphora.client, CLIENT, VIP,
                                LISTENER_PORT + 1)


def test_replies_from_the_vip_follow_the_vip_table(client, amphora,
                                                   tcp_service):
    client.plug_vip(**plug_vip_args())
    client.set_security_group(security_group([f'{CLIENT}/32']))
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)
    # Take the default route out of the main table: replies from the VIP
    # must still find the gateway through the VIP's own table.
    with IPRoute(netns=amphora.namespace) as ipr:
        ipr.route('del', dst='0.0.0.0/0', gateway=GATEWAY, table=254)

    assert conftest.connect(amphora.client, CLIENT, VIP, LISTENER_PORT)


def test_neighbours_learn_the_vips_new_mac(client, amphora):
    # A failover: the router still has the VIP at the failed amphora's MAC.
    # The kernel announces the addresses when the plug brings the VF up;
    # the router sits on the VF's peer here, as a bridge port would only
    # forward once it noticed the new carrier.
    router = amphora.lab.namespace('nbr')
    mac = 'fa:16:3e:60:00:04'
    with IPRoute(netns=router) as ipr:
        ipr.link('add', ifname='eth0', kind='veth',
                 peer={'ifname': 'eth3', 'net_ns_fd': amphora.namespace,
                       'address': mac})
    netlab.set_up(router, 'eth0')
    netlab.add_address(router, 'eth0', f'{GATEWAY}/24')
    netlab.run(router, ['sysctl', '-qw', 'net.ipv4.neigh.eth0.locktime=0'])
    netlab.run(router, ['ip', 'neigh', 'replace', VIP, 'lladdr',
                        'fa:16:3e:60:00:ff', 'dev', 'eth0', 'nud', 'stale'])

    client.plug_vip(**plug_vip_args(mac_address=mac, additional_vips=[]))

    with IPRoute(netns=router) as ipr:
        entries = ipr.get_neighbours(dst=VIP)
    assert [entry.get_attr('NDA_LLADDR') for entry in entries] == [mac]


def test_plugging_twice_is_the_same_state(client, amphora):
    first = client.plug_vip(**plug_vip_args())
    state = kernel_view(amphora.namespace, VIP_MAC)

    second = client.plug_vip(**plug_vip_args())

    assert second == first
    assert kernel_view(amphora.namespace, VIP_MAC) == state


def test_plugging_new_values_replaces_the_old(client, amphora):
    client.plug_vip(**plug_vip_args())

    client.plug_vip(**plug_vip_args(vrrp_ip='192.0.2.6', mtu=1500,
                                    host_routes=[], additional_vips=[]))

    view = kernel_view(amphora.namespace, VIP_MAC)
    table = view.table
    assert view.mtu == 1500
    assert view.addresses == ['192.0.2.10/32', '192.0.2.6/24']
    assert view.rules == {('192.0.2.6', table), (VIP, table)}
    assert view.routes == {(table, '192.0.2.0', 24, None),
                           (table, None, 0, GATEWAY),
                           (254, None, 0, GATEWAY)}


def test_refused_by_the_kernel_then_plugged_right(client, amphora):
    # The kernel refuses a route via the amphora's own address.
    bad_route = [{'destination': '10.0.0.0/8', 'nexthop': VRRP_IP}]

    with pytest.raises(agent_client.AgentRejected) as raised:
        client.plug_vip(**plug_vip_args(host_routes=bad_route))

    assert raised.value.status == 500
    assert raised.value.field == 'interface'
    assert 'kernel refused' in raised.value.reason
    client.plug_vip(**plug_vip_args(host_routes=[]))
    view = kernel_view(amphora.namespace, VIP_MAC)
    assert view.up
    assert (254, None, 0, GATEWAY) in view.routes
    assert not any(route[1] == '10.0.0.0' for route in view.routes)


def test_active_standby_leaves_the_vip_to_keepalived(client, amphora):
    client.plug_vip(**plug_vip_args(vip_on_interface=False,
                                    additional_vips=[]))
    view = kernel_view(amphora.namespace, VIP_MAC)
    assert view.addresses == ['192.0.2.5/24']
    # keepalived takes the VIP; plugging again must not remove it.
    netlab.add_address(amphora.namespace, 'eth1', f'{VIP}/32')

    client.plug_vip(**plug_vip_args(vip_on_interface=False,
                                    additional_vips=[]))

    view = kernel_view(amphora.namespace, VIP_MAC)
    assert view.addresses == ['192.0.2.10/32', '192.0.2.5/24']
    assert (VIP, view.table) in view.rules


def test_member_network_and_unplug(client, amphora):
    add_vf(amphora.namespace, amphora.phys, 'eth2', 'vf2', MEMBER_MAC)
    client.plug_vip(**plug_vip_args())

    interface = client.plug_network(
        MEMBER_MAC.upper(), [{'ip_address': MEMBER_IP,
                              'subnet_cidr': '203.0.113.0/24',
                              'gateway': '203.0.113.1',
                              'host_routes': []}], mtu=1450)

    view = kernel_view(amphora.namespace, MEMBER_MAC)
    assert interface['name'] == 'eth2'
    assert view.up and view.mtu == 1450
    assert view.addresses == [f'{MEMBER_IP}/24']
    assert view.rules == {(MEMBER_IP, view.table)}
    # The member gateway serves the member address only: not in main.
    assert view.routes == {(view.table, '203.0.113.0', 24, None),
                           (view.table, None, 0, '203.0.113.1')}
    roles = client.set_security_group(security_group([]))['interfaces']
    assert roles == {'eth1': 'vip', 'eth2': 'member'}

    unplugged = client.unplug_network(MEMBER_MAC)

    view = kernel_view(amphora.namespace, MEMBER_MAC)
    assert not view.up
    assert view.addresses == [] and view.rules == set()
    assert view.routes == set()
    assert unplugged['state'] == 'down'
    assert unplugged['routing_table'] is None
    # The VIP interface is untouched, and unplugging again is harmless.
    assert kernel_view(amphora.namespace, VIP_MAC).addresses
    assert client.unplug_network(MEMBER_MAC)['addresses'] == []


def test_vf_in_the_agents_namespace_is_moved_in(client, amphora):
    # The agent runs in this (root) namespace, where Nova would hot-plug.
    mac = 'fa:16:3e:60:00:03'
    name = f'tpg{os.getpid() % 100000}'
    try:
        add_vf(None, amphora.phys, name, 'vf3', mac)
        interface = client.plug_network(
            mac, [{'ip_address': '203.0.113.7',
                   'subnet_cidr': '203.0.113.0/24'}])
    finally:
        with IPRoute() as ipr:
            left = ipr.link_lookup(ifname=name)
            if left:
                ipr.link('del', index=left[0])

    assert interface['name'] == name
    # The firewall covered the VF before it came up, not some time later.
    assert interface['firewall_role'] == 'member'
    view = kernel_view(amphora.namespace, mac)
    assert view.addresses == ['203.0.113.7/24']


def test_interface_in_use_in_the_agents_namespace_stays(client, amphora):
    # A MAC naming an interface the agent's namespace uses (the management
    # interface, by a controller's mistake) must not cut the agent off.
    mac = 'fa:16:3e:60:00:05'
    name = f'tpgu{os.getpid() % 100000}'
    try:
        add_vf(None, amphora.phys, name, 'vf5', mac)
        netlab.add_address(None, name, '203.0.113.250/32')

        with pytest.raises(agent_client.AgentRejected) as raised:
            client.plug_network(mac, [])

        assert raised.value.status == 409
        assert raised.value.field == 'mac_address'
        with IPRoute() as ipr:
            assert ipr.link_lookup(ifname=name)
    finally:
        with IPRoute() as ipr:
            left = ipr.link_lookup(ifname=name)
            if left:
                ipr.link('del', index=left[0])


def test_unknown_mac_is_404(client):
    with pytest.raises(agent_client.AgentRejected) as raised:
        client.plug_network('fa:16:3e:60:00:99', [])
    assert raised.value.status == 404
    assert raised.value.field == 'mac_address'
    assert client.unplug_network('fa:16:3e:60:00:99', missing_ok=True) is None


@pytest.mark.parametrize('changes, field', [
    ({'vrrp_ip': '198.51.100.5'}, 'vrrp_ip'),
    ({'gateway': GATEWAY6}, 'gateway'),
    ({'host_routes': [{'destination': '10.0.0.0/8',
                       'nexthop': 'router'}]}, 'host_routes[0].nexthop'),
    ({'mtu': 1000}, 'mtu'),
    ({'mac_address': 'fa:16:3e:60'}, 'mac_address'),
], ids=['vrrp-outside-subnet', 'gateway-family', 'bad-nexthop',
        'ipv6-mtu', 'bad-mac'])
def test_bad_plug_changes_nothing(client, amphora, changes, field):
    client.plug_vip(**plug_vip_args())
    before = kernel_view(amphora.namespace, VIP_MAC)

    with pytest.raises(agent_client.AgentRejected) as raised:
        client.plug_vip(**plug_vip_args(**changes))

    assert raised.value.status == 400
    assert raised.value.field == field
    assert kernel_view(amphora.namespace, VIP_MAC) == before


def test_interfaces_lists_the_data_namespace(client, amphora):
    interfaces = client.get_interfaces()

    assert [item['name'] for item in interfaces] == ['eth1']
    eth1 = interfaces[0]
    assert eth1['mac_address'] == VIP_MAC
    assert eth1['state'] == 'down'
    assert eth1['addresses'] == []
    assert eth1['vf'] is True
    assert eth1['firewall_role'] == 'member'
    assert client.wait_for_interface(VIP_MAC.upper(), timeout=5) == eth1


def test_missing_data_namespace_is_reported_until_it_exists():
    lab = netlab.Lab(f'{PREFIX}-late')
    network = interfaces.DataNamespace(lab.name('amp'), ['veth'])
    try:
        with pytest.raises(interfaces.NamespaceUnavailable):
            network.interfaces()
        # Not created by the attempt, and found once it exists.
        assert not netlab.namespace_exists(lab.name('amp'))
        lab.namespace('amp')

        assert network.interfaces() == []
    finally:
        network.stop()
        lab.close()
