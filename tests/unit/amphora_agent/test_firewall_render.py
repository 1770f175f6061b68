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
"""The CIDR collapse and the nftables JSON plans (no kernel involved)."""

import ipaddress
import json
import random

import pytest

from amphora_agent.firewall import addresses
from amphora_agent.firewall import model
from amphora_agent.firewall import render
from amphora_agent.firewall import sourcesets

EPHEMERAL = (32768, 60999)


def networks(*texts):
    return [addresses.parse_network(text) for text in texts]


def intervals(family, *texts):
    return [(addresses.format_address(family, first),
             addresses.format_address(family, last))
            for first, last, _ in addresses.collapse(networks(*texts),
                                                     family)]


# Addresses and collapse -----------------------------------------------------

def test_parse_network_clears_host_bits_and_accepts_bare_addresses():
    assert addresses.parse_network('10.1.2.3/8') == (4, 10 << 24, 8,
                                                     '10.0.0.0/8')
    assert addresses.parse_network('10.0.0.0/08') == (4, 10 << 24, 8,
                                                      '10.0.0.0/8')
    assert addresses.parse_network('192.0.2.1') == (4, 0xc0000201, 32,
                                                    '192.0.2.1/32')
    assert addresses.parse_network('2001:DB8::1/32') == (
        6, 0x20010db8 << 96, 32, '2001:db8::/32')
    assert addresses.parse_network('0.0.0.0/0') == (4, 0, 0, '0.0.0.0/0')


@pytest.mark.parametrize('text', [
    '10.0.0.0/33', '10.0.0.256', '10.1', '10.0.0.0/8/8', '10.0.0.0/ 8',
    '010.0.0.1', '::1/129', 'fe80::1%eth0', '', '/8', 'a.b.c.d/8',
    '10.0.0.0/0008'])
def test_parse_network_rejects(text):
    with pytest.raises(ValueError):
        addresses.parse_network(text)


def test_collapse_merges_overlaps_containment_and_neighbours():
    assert intervals(4, '10.0.0.0/8', '10.1.0.0/16', '10.2.3.4') == [
        ('10.0.0.0', '10.255.255.255')]
    # Adjacent blocks become one interval, gaps stay.
    assert intervals(4, '192.0.2.0/25', '192.0.2.128/25', '198.51.100.1',
                     '198.51.100.3') == [
        ('192.0.2.0', '192.0.2.255'), ('198.51.100.1', '198.51.100.1'),
        ('198.51.100.3', '198.51.100.3')]
    assert intervals(6, '2001:db8::/32', '2001:db8:1::/48', '10.0.0.0/8',
                     '2001:db9::/32') == [('2001:db8::', '2001:db9:ffff:'
                                           'ffff:ffff:ffff:ffff:ffff')]
    assert intervals(4, '2001:db8::/32') == []


def test_collapse_matches_ipaddress_on_random_input():
    rng = random.Random(7)
    texts = [f'{rng.randint(0, 255)}.{rng.randint(0, 255)}.'
             f'{rng.randint(0, 255)}.{rng.randint(0, 255)}/'
             f'{rng.choice((8, 12, 16, 20, 24, 28, 30, 32))}'
             for _ in range(2000)]
    expected = [
        (int(net.network_address), int(net.broadcast_address))
        for net in ipaddress.collapse_addresses(
            ipaddress.ip_network(text, strict=False) for text in texts)]
    merged = []
    for first, last in expected:
        if merged and first == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    assert [(first, last) for first, last, _ in addresses.collapse(
        networks(*texts), 4)] == merged


def test_interval_elements_use_the_cheapest_exact_form():
    def elements(family, *texts):
        return addresses.interval_elements(
            family, addresses.collapse(networks(*texts), family))

    assert elements(4, '0.0.0.5', '10.0.0.0/8', '10.1.0.0/16') == [
        '0.0.0.5', {'prefix': {'addr': '10.0.0.0', 'len': 8}}]
    # Merged intervals: a prefix when aligned, a range otherwise.
    assert elements(4, '192.0.2.0/25', '192.0.2.128/25', '0.0.0.1',
                    '0.0.0.2') == [
        {'range': ['0.0.0.1', '0.0.0.2']},
        {'prefix': {'addr': '192.0.2.0', 'len': 24}}]
    assert elements(6, '::/1', '8000::/1') == [{'prefix': {'addr': '::',
                                                           'len': 0}}]


def test_covers_everything():
    assert addresses.covers_everything(
        addresses.collapse(networks('0.0.0.0/1', '128.0.0.0/1'), 4), 4)
    assert not addresses.covers_everything(
        addresses.collapse(networks('0.0.0.0/1'), 4), 4)


def test_ifname_encoding_round_trips():
    for ifname in ('eth0', 'ens1f0v3', 'eth0.100', 'v_f@x', 'a-b'):
        encoded = render.encode_ifname(ifname)
        assert encoded.replace('_', '').isalnum()
        assert render.decode_ifname(encoded) == ifname


# Plans ----------------------------------------------------------------------

def sg(**changes):
    body = {'vip_interfaces': ['203.0.113.10'],
            'listeners': [{'protocol': 'TCP', 'port': 80,
                           'allowed_cidrs': ['10.0.0.0/8', '10.1.0.0/16',
                                             '2001:db8::/32']},
                          {'protocol': 'UDP', 'port': 53}],
            'vrrp_peers': ['203.0.113.11'],
            'members': [{'address': '198.51.100.5', 'protocol': 'TCP',
                         'port': 8080},
                        {'address': '198.51.100.6', 'protocol': 'ICMP'}]}
    body.update(changes)
    return model.parse_security_group(body)


ROLES = {'eth1': render.ROLE_VIP, 'eth2': render.ROLE_MEMBER}


def prepared(plan):
    return [command for step in plan.prepare for command in step]


def undone(plan):
    return [command for step in plan.rollback for command in step]


def commands(plan_part, verb, kind):
    return [command[verb][kind] for command in plan_part
            if verb in command and kind in command[verb]]


def source_parts(security_group, suffix, family):
    """``{prefixlen: name}`` of the content-named sets of a listener.

    ``suffix`` names the listener (``tcp_80``); the interval set, if any,
    is under None.
    """
    listener, = [listener for listener in security_group.listeners
                 if f'{listener.protocol.lower()}_{listener.port}' == suffix]
    source = listener.sources[family]
    return {part.prefixlen: source.name(suffix, part)
            for part in source.parts}


def source_set_name(security_group, suffix, family, prefixlen):
    """The content-named set of one part (``prefixlen`` None: intervals)."""
    return source_parts(security_group, suffix, family)[prefixlen]


def source_set_names(security_group, suffix, *families):
    """Every content-named set of the listener ``suffix`` in ``families``."""
    return {name for family in families
            for name in source_parts(security_group, suffix,
                                     family).values()}


def rules_of(plan_part, chain):
    return [rule['expr'] for rule in commands(plan_part, 'add', 'rule')
            if rule['chain'] == chain]


def test_first_plan_creates_table_counters_and_essentials_up_front():
    plan = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    assert prepared(plan)[0] == {'add': {'table': {
        'family': 'inet', 'name': 'sriov_octavia'}}}
    counters = {counter['name'] for counter in commands(
        prepared(plan), 'add', 'counter')}
    assert counters == {
        'essentials', 'fragments', 'members', 'vrrp', 'drop_eth1',
        'drop_eth2', 'listener_TCP_80_accepted', 'listener_TCP_80_dropped',
        'listener_UDP_53_accepted', 'listener_UDP_53_dropped'}
    # Every counter exists before the first rule that names it.
    first_rule = next(index for index, command in enumerate(prepared(plan))
                      if 'rule' in command.get('add', {}))
    last_counter = max(index for index, command in enumerate(prepared(plan))
                       if 'counter' in command.get('add', {}))
    assert last_counter < first_rule
    assert rules_of(prepared(plan), render.ESSENTIALS_CHAIN)


def test_sets_are_created_before_and_looked_up_after_the_switch():
    """The hitless order: nothing in force looks up a set being created.

    The prepare transaction only fills chains it creates itself, which no
    base chain reaches yet; the switch creates no set or map.
    """
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    plan = render.build(sg(), ROLES, EPHEMERAL, first.result)
    assert not commands(plan.switch, 'add', 'set')
    assert not commands(plan.switch, 'add', 'map')
    assert not any('hook' in chain for chain in commands(
        prepared(plan), 'add', 'chain'))
    created_chains = {chain['name'] for chain in commands(
        prepared(plan), 'add', 'chain')}
    assert {rule['chain'] for rule in commands(
        prepared(plan), 'add', 'rule')} == created_chains
    assert [flushed['name'] for flushed in commands(
        plan.switch, 'flush', 'chain')] == ['in_eth1', 'in_eth2']
    text = json.dumps(plan.switch)
    for name in ('r2_listeners', 'r2_members_4', 'r2_pinged_4',
                 'r2_vrrp_4_p32'):
        assert f'"@{name}"' in text


ACCEPTED_80 = [{'counter': 'listener_TCP_80_accepted'}, {'accept': None}]
SADDR_4 = {'payload': {'protocol': 'ip', 'field': 'saddr'}}
SADDR_6 = {'payload': {'protocol': 'ip6', 'field': 'saddr'}}


def lookup(left, name, netmask=None):
    """A listener rule's source match, masked when ``netmask`` is given."""
    if netmask is not None:
        left = {'&': [left, netmask]}
    return {'match': {'op': '==', 'left': left, 'right': '@' + name}}


def test_listener_chain_looks_up_collapsed_sources_in_hash_sets():
    plan = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    sets = {item['name']: item for item in commands(prepared(plan), 'add',
                                                    'set')}
    # 10.1.0.0/16 lies inside 10.0.0.0/8: one /8, hashed by its length.
    assert list(source_parts(sg(), 'tcp_80', 4)) == [8]
    assert list(source_parts(sg(), 'tcp_80', 6)) == [32]
    tcp_80_4 = source_set_name(sg(), 'tcp_80', 4, 8)
    tcp_80_6 = source_set_name(sg(), 'tcp_80', 6, 32)
    assert tcp_80_4.startswith('s_') and tcp_80_4.endswith('_tcp_80_4_p8')
    assert tcp_80_6.startswith('s_') and tcp_80_6.endswith('_tcp_80_6_p32')
    # A fixed-size hash set of network addresses, no interval flag.
    assert sets[tcp_80_4] == {
        'family': 'inet', 'table': 'sriov_octavia', 'name': tcp_80_4,
        'type': 'ipv4_addr', 'size': 1, 'elem': ['10.0.0.0']}
    assert sets[tcp_80_6] == {
        'family': 'inet', 'table': 'sriov_octavia', 'name': tcp_80_6,
        'type': 'ipv6_addr', 'size': 1, 'elem': ['2001:db8::']}
    # Looked up with the source masked to the set's prefix length.
    assert rules_of(prepared(plan), 'r1_tcp_80') == [
        [lookup(SADDR_4, tcp_80_4, '255.0.0.0')] + ACCEPTED_80,
        [lookup(SADDR_6, tcp_80_6, 'ffff:ffff::')] + ACCEPTED_80,
        [{'counter': 'listener_TCP_80_dropped'}, {'drop': None}]]
    assert rules_of(prepared(plan), 'r1_udp_53') == [
        [{'counter': 'listener_UDP_53_accepted'}, {'accept': None}]]
    listener_map, = commands(prepared(plan), 'add', 'map')
    assert listener_map['size'] == 2
    assert listener_map['elem'] == [
        [{'concat': ['tcp', 80]}, {'goto': {'target': 'r1_tcp_80'}}],
        [{'concat': ['udp', 53]}, {'goto': {'target': 'r1_udp_53'}}]]


def test_listener_chain_looks_up_longest_prefixes_first_and_intervals_last():
    # Ten prefix lengths: the eight most common (ties: the longer) are
    # hashed, /12 and /10 share the interval set.
    cidrs = ['192.0.2.1', '192.0.2.3', '192.0.2.5', '198.51.100.0/24',
             '203.0.113.0/24', '20.0.0.0/20', '30.0.0.0/19', '40.0.0.0/18',
             '50.0.0.0/17', '60.0.0.0/16', '70.0.0.0/15', '80.0.0.0/12',
             '90.0.0.0/10', '2001:db8::1', '2001:db8:1::/48']
    changed = sg(listeners=[{'protocol': 'TCP', 'port': 80,
                             'allowed_cidrs': cidrs}])
    plan = render.build(changed, ROLES, EPHEMERAL, render.Installed())
    sets = {item['name']: item for item in commands(prepared(plan), 'add',
                                                    'set')}
    v4 = source_parts(changed, 'tcp_80', 4)
    v6 = source_parts(changed, 'tcp_80', 6)
    assert list(v4) == [32, 24, 20, 19, 18, 17, 16, 15, None]
    assert list(v6) == [128, 48]
    assert v4[None].endswith('_tcp_80_4_iv')
    assert v4[24].endswith('_tcp_80_4_p24')
    assert sets[v4[32]]['elem'] == ['192.0.2.1', '192.0.2.3', '192.0.2.5']
    assert sets[v4[32]]['size'] == 3 and 'flags' not in sets[v4[32]]
    assert sets[v4[24]]['elem'] == ['198.51.100.0', '203.0.113.0']
    assert sets[v4[None]] == {
        'family': 'inet', 'table': 'sriov_octavia', 'name': v4[None],
        'type': 'ipv4_addr', 'flags': ['interval'],
        'elem': [{'prefix': {'addr': '80.0.0.0', 'len': 12}},
                 {'prefix': {'addr': '90.0.0.0', 'len': 10}}]}
    # Full-length parts match the address as it is, the others masked.
    assert [rule[0] for rule in rules_of(prepared(plan), 'r1_tcp_80')] == [
        lookup(SADDR_4, v4[32]),
        lookup(SADDR_4, v4[24], '255.255.255.0'),
        lookup(SADDR_4, v4[20], '255.255.240.0'),
        lookup(SADDR_4, v4[19], '255.255.224.0'),
        lookup(SADDR_4, v4[18], '255.255.192.0'),
        lookup(SADDR_4, v4[17], '255.255.128.0'),
        lookup(SADDR_4, v4[16], '255.255.0.0'),
        lookup(SADDR_4, v4[15], '255.254.0.0'),
        lookup(SADDR_4, v4[None]),
        lookup(SADDR_6, v6[128]),
        lookup(SADDR_6, v6[48], 'ffff:ffff:ffff::'),
        {'counter': 'listener_TCP_80_dropped'}]


def random_ipv4_cidrs(rng, count):
    return [f'{ipaddress.IPv4Address(rng.getrandbits(32))}/'
            f'{rng.randint(8, 32)}' for _ in range(count)]


def test_rule_count_is_bounded_by_prefix_lengths_not_by_cidrs():
    # Any number of CIDRs of one length: one hash set, one rule.
    many = [f'10.{i // 256}.{i % 256}.0/24' for i in range(0, 20000, 2)]
    small = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    large_sg = sg(listeners=[{'protocol': 'TCP', 'port': 80,
                              'allowed_cidrs': many + ['2001:db8::/32']},
                             {'protocol': 'UDP', 'port': 53}])
    large = render.build(large_sg, ROLES, EPHEMERAL, render.Installed())
    count = len(commands(prepared(small) + small.switch, 'add', 'rule'))
    assert len(commands(prepared(large) + large.switch, 'add',
                        'rule')) == count
    sets = {item['name']: item for item in commands(prepared(large), 'add',
                                                    'set')}
    hashed = sets[source_set_name(large_sg, 'tcp_80', 4, 24)]
    assert len(hashed['elem']) == hashed['size'] == 10000

    # CIDRs of every length from /8 to /32: MAX_HASHED hash sets and one
    # interval set for IPv4, however many CIDRs there are.
    rng = random.Random(11)
    elements = []
    for number in (1000, 4000):
        random_sg = sg(listeners=[
            {'protocol': 'TCP', 'port': 80,
             'allowed_cidrs': random_ipv4_cidrs(rng, number) + [
                 '2001:db8::/32']}])
        plan = render.build(random_sg, ROLES, EPHEMERAL, render.Installed())
        parts = source_parts(random_sg, 'tcp_80', 4)
        assert len(parts) == sourcesets.MAX_HASHED + 1 and None in parts
        # The IPv4 lookups, the IPv6 one and the drop.
        assert len(rules_of(prepared(plan), 'r1_tcp_80')) == (
            sourcesets.MAX_HASHED + 1 + 1 + 1)
        elements.append(sum(len(item['elem']) for item in commands(
            prepared(plan), 'add', 'set') if item['name'] in parts.values()))
    assert elements[1] > elements[0]


def test_everything_cidr_needs_no_set():
    plan = render.build(
        sg(listeners=[{'protocol': 'TCP', 'port': 80,
                       'allowed_cidrs': ['0.0.0.0/1', '128.0.0.0/1']}]),
        ROLES, EPHEMERAL, render.Installed())
    assert not [item for item in commands(prepared(plan), 'add', 'set')
                if 'tcp' in item['name']]
    assert rules_of(prepared(plan), 'r1_tcp_80')[0][0] == {'match': {
        'op': '==', 'left': {'meta': {'key': 'nfproto'}}, 'right': 'ipv4'}}


def test_vip_and_member_interfaces_get_their_chains():
    plan = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    vip = json.dumps(rules_of(plan.switch, 'in_eth1'))
    member = json.dumps(rules_of(plan.switch, 'in_eth2'))
    assert '"@r1_listeners"' in vip and '"@r1_listeners"' not in member
    assert '"@r1_vrrp_4_p32"' in vip and '"@r1_vrrp_4_p32"' not in member
    for text in (vip, member):
        assert '"@r1_members_4"' in text and '"@r1_pinged_4"' in text
        assert '"range": [32768, 60999]' in text
        assert '"frag-off"' in text
        assert '{"jump": {"target": "essentials"}}' in text
    assert rules_of(plan.switch, 'in_eth1')[-1] == [
        {'counter': 'drop_eth1'}, {'drop': None}]
    members, = [item for item in commands(prepared(plan), 'add', 'set')
                if item['name'] == 'r1_members_4']
    assert members['type'] == ['ipv4_addr', 'inet_proto', 'inet_service']
    assert members['elem'] == [{'concat': ['198.51.100.5', 'tcp', 8080]}]


def test_unknown_members_are_matched_by_shape():
    plan = render.build(sg(members=None), ROLES, EPHEMERAL,
                        render.Installed())
    text = json.dumps(rules_of(plan.switch, 'in_eth2'))
    assert '"@r1_members' not in text
    assert ('{"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, '
            '"ack"]}, "right": "ack"') in text
    assert '{"protocol": "udp", "field": "dport"}' in text
    assert '"echo-reply"' in text


def test_base_has_essentials_and_drop_only():
    plan = render.build(model.SecurityGroup(vip_interfaces=(), members=()),
                        {'eth1': render.ROLE_MEMBER}, EPHEMERAL,
                        render.Installed())
    assert not commands(prepared(plan), 'add', 'set')
    assert rules_of(plan.switch, 'in_eth1') == [
        [{'match': {'op': '!=', 'left': {'&': [
            {'payload': {'protocol': 'ip', 'field': 'frag-off'}}, 8191]},
            'right': 0}}, {'counter': 'fragments'}, {'accept': None}],
        [{'match': {'op': '!=', 'left': {'exthdr': {
            'name': 'frag', 'field': 'frag-off'}}, 'right': 0}},
         {'counter': 'fragments'}, {'accept': None}],
        [{'jump': {'target': 'essentials'}}],
        [{'counter': 'drop_eth1'}, {'drop': None}]]


def test_next_plan_replaces_the_previous_generation():
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    second = render.build(
        sg(listeners=[{'protocol': 'TCP', 'port': 443}]),
        {'eth1': render.ROLE_VIP}, EPHEMERAL, first.result)
    # Nothing created twice, counters kept, names of the new generation.
    assert not commands(prepared(second), 'add', 'table')
    assert not [chain for chain in commands(prepared(second), 'add', 'chain')
                if chain['name'] == render.ESSENTIALS_CHAIN]
    assert {counter['name'] for counter in commands(
        prepared(second), 'add', 'counter')} == {
        'listener_TCP_443_accepted', 'listener_TCP_443_dropped'}
    assert {item['name'] for item in commands(prepared(second), 'add',
                                              'set')} == {'r2_members_4',
                                                          'r2_pinged_4',
                                                          'r2_vrrp_4_p32'}
    # The switch refills the kept base chain and drops the vanished one;
    # the cleanup then deletes maps, chains, sets, counters of the old
    # generation.
    assert commands(second.switch, 'flush', 'chain')[0]['name'] == 'in_eth1'
    assert [(kind, item['name']) for command in second.switch
            if 'delete' in command
            for kind, item in command['delete'].items()] == [
        ('chain', 'in_eth2')]
    deleted = [(kind, item['name']) for command in second.cleanup
               for kind, item in command['delete'].items()]
    assert ('map', 'r1_listeners') in deleted
    assert deleted.index(('map', 'r1_listeners')) < deleted.index(
        ('chain', 'r1_tcp_80')) < deleted.index(
        ('set', source_set_name(sg(), 'tcp_80', 4, 8)))
    assert ('counter', 'listener_UDP_53_accepted') in deleted
    assert ('counter', 'drop_eth2') in deleted
    assert ('counter', 'essentials') not in deleted
    assert not [command for command in second.cleanup
                if 'delete' not in command]
    assert second.result.serial == 2


def test_rollback_removes_exactly_what_prepare_added():
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    second = render.build(sg(listeners=[{'protocol': 'SCTP', 'port': 9}]),
                          ROLES, EPHEMERAL, first.result)
    added = {(kind, item['name']) for command in prepared(second)
             for kind, item in command['add'].items() if kind != 'rule'}
    removed = {(kind, item['name']) for command in undone(second)
               for kind, item in command['delete'].items()}
    assert removed == added


def test_installed_from_listing_recognises_our_objects():
    def item(kind, name, **extra):
        return {kind: dict(family='inet', table='sriov_octavia', name=name,
                           **extra)}

    installed = render.installed_from_listing([
        {'metainfo': {}},
        {'table': {'family': 'inet', 'name': 'sriov_octavia'}},
        item('counter', 'drop_eth0_2e100', packets=1, bytes=2),
        item('set', 'r7_tcp_80_4'), item('map', 'r7_listeners'),
        item('chain', 'r7_tcp_80'), item('chain', 'essentials'),
        item('chain', 'in_eth0_2e100', hook='ingress'),
        {'rule': {'chain': 'in_eth0_2e100', 'expr': []}}])
    assert installed == render.Installed(
        table=True, essentials=True, serial=7,
        base_chains={'eth0.100': 'in_eth0_2e100'}, chains=['r7_tcp_80'],
        sets=['r7_tcp_80_4'], maps=['r7_listeners'],
        counters={'drop_eth0_2e100'})


def test_preparation_is_split_per_listener_with_matching_undo():
    plan = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    # udp_53 needs no set: its chain is made in the shared last step.
    assert len(plan.prepare) == len(plan.rollback) == 3
    head, tcp, shared = plan.prepare
    assert [set(command['add']) for command in head[:1]] == [{'table'}]
    assert {item['name'] for item in commands(tcp, 'add', 'set')} == (
        source_set_names(sg(), 'tcp_80', 4, 6))
    assert {rule['chain'] for rule in commands(shared, 'add', 'rule')} == {
        'r1_udp_53'}
    assert commands(shared, 'add', 'map')[0]['name'] == 'r1_listeners'
    # Undo of a step deletes its chain before the sets the chain uses,
    # and keeps the counter the everlasting essentials chain uses.
    assert [list(command['delete'].items())[0][0] for command in
            plan.rollback[1]] == ['chain', 'set', 'set']
    assert {'delete': {'counter': {
        'family': 'inet', 'table': 'sriov_octavia', 'name': 'essentials'}}} \
        not in plan.rollback[0]


# Content-named source sets: kept while their CIDRs are ---------------------

def content_sets(names):
    return {name for name in names if name.startswith('s_')}


def set_names(plan_part, verb):
    """The names of the sets ``plan_part`` adds, flushes or deletes."""
    return {item['name'] for item in commands(plan_part, verb, 'set')}


def test_a_change_outside_the_cidrs_creates_and_deletes_no_listener_set():
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    kept = content_sets(first.result.sets)
    assert len(kept) == 2
    for changed in (
            sg(members=[{'address': '198.51.100.7', 'protocol': 'TCP',
                         'port': 80}]),
            sg(vrrp_peers=['203.0.113.12'])):
        plan = render.build(changed, ROLES, EPHEMERAL, first.result)
        assert not content_sets(set_names(prepared(plan), 'add'))
        assert not content_sets(set_names(plan.cleanup, 'delete'))
        assert not content_sets(set_names(undone(plan), 'delete'))
        assert content_sets(plan.result.sets) == kept
        # One small prepare transaction: chains, map, member and VRRP sets.
        assert len(plan.prepare) == 1
        assert {f'@{name}' for name in kept} <= set(
            json.dumps(plan.prepare).replace('"', ' ').split())


def test_a_new_small_listener_creates_only_its_own_sets():
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    body_listeners = [{'protocol': 'TCP', 'port': 80,
                       'allowed_cidrs': ['10.0.0.0/8', '10.1.0.0/16',
                                         '2001:db8::/32']},
                      {'protocol': 'UDP', 'port': 53},
                      {'protocol': 'TCP', 'port': 9443,
                       'allowed_cidrs': ['192.0.2.0/24', '198.51.100.7']}]
    changed = sg(listeners=body_listeners)
    plan = render.build(changed, ROLES, EPHEMERAL, first.result)
    own = source_set_names(changed, 'tcp_9443', 4)
    assert len(own) == 2  # the /32 and the /24
    assert content_sets(set_names(prepared(plan), 'add')) == own
    assert not content_sets(set_names(plan.cleanup, 'delete'))


def test_a_changed_listener_replaces_exactly_its_changed_family_sets():
    """The digest covers a family: its sets change together, no others.

    The IPv4 CIDRs change (a /24 joins the /8), so both IPv4 sets are new
    (the /8 one too: its name carries the family's digest); the IPv6 set
    is kept.
    """
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    changed = sg(listeners=[{'protocol': 'TCP', 'port': 80,
                             'allowed_cidrs': ['10.0.0.0/8', '192.0.2.0/24',
                                               '2001:db8::/32']},
                            {'protocol': 'UDP', 'port': 53}])
    plan = render.build(changed, ROLES, EPHEMERAL, first.result)
    old4 = source_set_names(sg(), 'tcp_80', 4)
    new4 = source_set_names(changed, 'tcp_80', 4)
    same6 = source_set_names(changed, 'tcp_80', 6)
    assert len(old4) == 1 and len(new4) == 2 and len(same6) == 1
    assert not old4 & new4
    assert same6 == source_set_names(sg(), 'tcp_80', 6)
    assert content_sets(set_names(prepared(plan), 'add')) == new4
    assert content_sets(set_names(plan.cleanup, 'delete')) == old4
    assert content_sets(set_names(undone(plan), 'delete')) == new4
    assert content_sets(plan.result.sets) == new4 | same6
    # Its own step, before the shared one; the chain looks up every set.
    assert len(plan.prepare) == 2
    assert new4 | same6 == {
        expr['match']['right'][1:] for rule in rules_of(prepared(plan),
                                                        'r2_tcp_80')
        for expr in rule if 'match' in expr}


def test_sets_of_the_single_interval_layout_are_replaced_not_kept():
    """After an upgrade, the old layout's set is no part of the new one.

    The earlier layout named a family's one interval set without a suffix;
    a table still holding it gets every part created and it deleted.
    """
    # More lengths than are hashed: this layout has an interval set too.
    security_group = sg(listeners=[{
        'protocol': 'TCP', 'port': 80,
        'allowed_cidrs': [f'10.{length}.0.0/{length}'
                          for length in range(16, 17 + sourcesets.MAX_HASHED)]
    }])
    digest = security_group.listeners[0].sources[4].digest
    old_name = f'{sourcesets.PREFIX}{digest}_tcp_80_4'
    installed = render.installed_from_listing(
        [{'table': {'family': 'inet', 'name': 'sriov_octavia'}},
         {'set': {'family': 'inet', 'table': 'sriov_octavia',
                  'name': old_name}}])
    plan = render.build(security_group, ROLES, EPHEMERAL, installed)
    assert old_name not in plan.result.sets
    assert old_name + '_iv' in plan.result.sets
    assert source_set_names(security_group, 'tcp_80', 4) <= set_names(
        prepared(plan), 'add')
    assert {'delete': {'set': {'family': 'inet', 'table': 'sriov_octavia',
                               'name': old_name}}} in plan.cleanup


def test_the_same_cidrs_spelt_otherwise_are_the_same_set():
    one = sg(listeners=[{'protocol': 'TCP', 'port': 80,
                         'allowed_cidrs': ['10.1.2.3/8', '2001:db8::/32']}])
    other = sg(listeners=[{'protocol': 'TCP', 'port': 80,
                           'allowed_cidrs': ['2001:DB8::1/32', '10.0.0.0/8',
                                             '10.0.0.0/08']}])
    for family in (4, 6):
        assert source_parts(one, 'tcp_80', family) == source_parts(
            other, 'tcp_80', family)


def test_a_repair_refills_kept_sets_in_place():
    first = render.build(sg(), ROLES, EPHEMERAL, render.Installed())
    plan = render.build(sg(), ROLES, EPHEMERAL, first.result, repair=True)
    tcp_80_4 = source_set_name(sg(), 'tcp_80', 4, 8)
    assert not content_sets(set_names(prepared(plan), 'add'))
    assert tcp_80_4 in set_names(prepared(plan), 'flush')
    refill, = [item for item in commands(prepared(plan), 'add', 'element')
               if item['name'] == tcp_80_4]
    assert refill['elem'] == ['10.0.0.0']
    assert not content_sets(set_names(plan.cleanup, 'delete'))


def test_installed_from_listing_knows_content_named_sets():
    names = ['s_0123456789abcdef_tcp_80_4_iv',
             's_0123456789abcdef_tcp_80_4_p24',
             'r3_vrrp_4_p32']
    installed = render.installed_from_listing(
        [{'table': {'family': 'inet', 'name': 'sriov_octavia'}}] +
        [{'set': {'family': 'inet', 'table': 'sriov_octavia', 'name': name}}
         for name in names])
    assert installed.sets == names
    assert installed.serial == 3
