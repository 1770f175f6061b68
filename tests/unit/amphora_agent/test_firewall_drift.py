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
"""The canonical comparison of a plan and a listing (no kernel involved).

The listings here are what nft 1.0.6 prints back for a plan, built from the
plan the way the kernel and nft change it (measured: handles, counter
values, the generation in force, element order, ``vrrp`` for protocol 112,
no chain device). tests/functional/amphora_agent/test_firewall_drift.py
checks the same against the real kernel.
"""

import copy
import itertools
import json

import pytest

from amphora_agent.api.controllers import info
from amphora_agent.firewall import drift
from amphora_agent.firewall import model
from amphora_agent.firewall import render
from tests.unit.amphora_agent import fakes
from tests.unit.amphora_agent import test_firewall_render as render_tests

EPHEMERAL = render_tests.EPHEMERAL
ROLES = render_tests.ROLES
sg = render_tests.sg
EVERYTHING = [{'protocol': 'TCP', 'port': 80,
               'allowed_cidrs': ['0.0.0.0/1', '128.0.0.0/1']}]
MANY = [f'10.{i // 256}.{i % 256}.0/24' for i in range(0, 2000, 2)]
# With MANY and two hosts: eleven prefix lengths, so /12, /10 and /9 go to
# the interval set (sourcesets.MAX_HASHED).
LENGTHS = ['20.0.0.0/20', '30.0.0.0/19', '40.0.0.0/18', '50.0.0.0/17',
           '60.0.0.0/16', '70.0.0.0/15', '80.0.0.0/12', '90.0.0.0/10',
           '100.0.0.0/9']
# The rule sets of test_firewall_render.
RULE_SETS = {
    'full': lambda: sg(),
    'members unknown': lambda: sg(members=None),
    'base': lambda: model.SecurityGroup(vip_interfaces=(), members=()),
    'everything': lambda: sg(listeners=EVERYTHING),
    'one open listener': lambda: sg(listeners=[{'protocol': 'TCP',
                                                'port': 443}]),
    'sctp': lambda: sg(listeners=[{'protocol': 'SCTP', 'port': 9}]),
    'many cidrs': lambda: sg(listeners=[
        {'protocol': 'TCP', 'port': 80,
         'allowed_cidrs': MANY + ['2001:db8::/32', '192.0.2.1',
                                  '192.0.2.2']},
        {'protocol': 'UDP', 'port': 53}]),
    'many prefix lengths': lambda: sg(listeners=[
        {'protocol': 'TCP', 'port': 80,
         'allowed_cidrs': MANY + LENGTHS + ['192.0.2.1', '192.0.2.2',
                                            '2001:db8::1']}]),
    'upstream': lambda: model.from_upstream_rules('203.0.113.10', [
        {'protocol': 'TCP', 'cidr': '198.51.100.0/24', 'port': 80},
        {'protocol': 'vrrp', 'cidr': None, 'port': 112}]),
}


def plan_of(security_group, roles=ROLES):
    return render.build(security_group, roles, EPHEMERAL, render.Installed())


def _as_listed(value):
    """Spell a value as nft lists it: protocol 112 is vrrp."""
    if isinstance(value, dict):
        match = value.get('match')
        if match and match['left'] == {'meta': {'key': 'l4proto'}} and (
                match['right'] == 112):
            return {'match': dict(match, right='vrrp')}
        return {key: _as_listed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_listed(item) for item in value]
    return value


def listing(plan, serial=7):
    """What ``nft -j list table`` prints once ``plan`` is in force."""
    handles = itertools.count(1)
    objects = [{'metainfo': {'version': '1.0.6', 'json_schema_version': 1}}]
    commands = [command for step in plan.prepare for command in step]
    for command in commands + plan.switch:
        (kind, body), = command['add'].items()
        text = json.dumps(_as_listed(body)).replace(
            f'r{plan.result.serial}_', f'r{serial}_')
        body = dict(json.loads(text), handle=next(handles))
        if kind == 'counter':
            body.update(packets=next(handles), bytes=next(handles) * 100)
        if kind == 'chain':
            body.pop('dev', None)
        if 'elem' in body:
            body['elem'] = list(reversed(body['elem']))
        if kind == 'rule':
            # Rules come after every object, as nft lists them.
            objects.append({kind: body})
        else:
            objects.insert(1, {kind: body})
    return objects


def live(objects, serial=7):
    text = json.dumps({'nftables': objects})
    return drift.canonical(drift.parse_listing(text), serial)


def differences(objects, plan, serial=7):
    return drift.differences(drift.of_plan(plan), live(objects, serial))


def by_name(objects, kind, name):
    for item in objects:
        if kind in item and item[kind].get('name') == name:
            return item[kind]
    raise AssertionError(f'no {kind} {name}')


def rules(objects, chain):
    return [item['rule'] for item in objects
            if 'rule' in item and item['rule']['chain'] == chain]


# No difference where none is ----------------------------------------------

@pytest.mark.parametrize('name', sorted(RULE_SETS))
def test_a_plan_and_its_listing_do_not_differ(name):
    plan = plan_of(RULE_SETS[name]())
    assert differences(listing(plan), plan) == []


def test_only_the_generation_in_force_is_made_generic():
    plan = plan_of(sg())
    # Listed as generation 7 but 6 is in force: every generation object
    # is unexpected, every wanted one missing.
    found = differences(listing(plan, serial=7), plan, serial=6)
    assert 'unexpected set r7_members_4' in found
    # Content-named sets belong to no generation: neither.
    tcp_80_4 = render_tests.source_set_name(sg(), 'tcp_80', 4, 8)
    assert f'unexpected set {tcp_80_4}' not in found
    assert f'set {tcp_80_4} is missing' not in found
    assert 'set r*_members_4 is missing' in found


@pytest.mark.parametrize('element', [
    '192.0.2.1', {'prefix': {'addr': '192.0.2.1', 'len': 32}},
    {'range': ['192.0.2.1', '192.0.2.1']}])
def test_an_address_is_the_same_however_spelt(element):
    wanted = drift.canonical([{'set': {
        'name': 's', 'type': 'ipv4_addr', 'flags': ['interval'],
        'elem': ['192.0.2.1']}}], 1)
    assert live([{'set': {'name': 's', 'type': 'ipv4_addr',
                          'flags': ['interval'], 'elem': [element],
                          'handle': 3}}], 1) == wanted


def test_an_aligned_range_is_its_prefix():
    wanted = drift.canonical([{'set': {
        'name': 's', 'type': 'ipv6_addr', 'flags': ['interval'],
        'elem': [{'prefix': {'addr': '2001:db8::', 'len': 32}}]}}], 1)
    last = '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'
    assert live([{'set': {
        'name': 's', 'type': 'ipv6_addr', 'flags': ['interval'],
        'elem': [{'range': ['2001:db8::', last]}]}}], 1) == wanted


def test_protocol_names_and_numbers_are_the_same():
    def rule(protocol):
        return [{'rule': {'chain': 'c', 'expr': [{'match': {
            'op': '==', 'left': {'meta': {'key': 'l4proto'}},
            'right': protocol}}, {'accept': None}]}}]

    assert live(rule('vrrp'), 1) == drift.canonical(rule(112), 1)
    assert live(rule('tcp'), 1) != drift.canonical(rule(112), 1)


def test_parse_listing_packs_addresses_but_not_port_ranges():
    objects = drift.parse_listing(json.dumps({'nftables': [
        {'set': {'elem': [{'prefix': {'addr': '10.0.0.0', 'len': 8}},
                          {'range': ['10.0.0.1', '10.0.0.2']}]}},
        {'rule': {'expr': [{'match': {'right': {'range': [1, 2]}}}]}}]}))
    first, second = objects[0]['set']['elem']
    assert isinstance(first, int) and isinstance(second, int)
    assert objects[1]['rule']['expr'][0]['match']['right'] == {
        'range': [1, 2]}


# Differences, each kind named --------------------------------------------

@pytest.fixture
def plan():
    return plan_of(sg())


@pytest.fixture
def objects(plan):
    return listing(plan)


def test_a_deleted_rule(plan, objects):
    dropped = rules(objects, 'r7_tcp_80')[-1]
    objects.remove({'rule': dropped})
    assert differences(objects, plan) == [
        'chain r*_tcp_80: rule 3 missing: '
        '[{"counter":"listener_TCP_80_dropped"},{"drop":null}]']


def test_an_added_accept_all_rule(plan, objects):
    first = objects.index({'rule': rules(objects, 'in_eth1')[0]})
    objects.insert(first, {'rule': {'family': 'inet', 'table': 'sriov_octavia',
                                    'chain': 'in_eth1', 'handle': 999,
                                    'expr': [{'accept': None}]}})
    assert differences(objects, plan) == [
        'chain in_eth1: unexpected rule at 1: [{"accept":null}]']


def test_a_changed_rule(plan, objects):
    rule = rules(objects, 'in_eth2')[-1]
    rule['expr'] = [{'counter': 'drop_eth2'}, {'accept': None}]
    assert differences(objects, plan) == [
        'chain in_eth2: rule 6 missing: '
        '[{"counter":"drop_eth2"},{"drop":null}]',
        'chain in_eth2: unexpected rule at 6: '
        '[{"counter":"drop_eth2"},{"accept":null}]']


def test_a_flushed_set(plan, objects):
    # A hash set holds network addresses (10.0.0.0/8 is 10.0.0.0 in _p8).
    name = render_tests.source_set_name(sg(), 'tcp_80', 4, 8)
    del by_name(objects, 'set', name)['elem']
    assert differences(objects, plan) == [
        f'{name}: 1 element(s) missing: 10.0.0.0']


def test_a_flushed_interval_set_and_a_resized_hash_set():
    security_group = RULE_SETS['many prefix lengths']()
    plan = plan_of(security_group)
    objects = listing(plan)
    intervals = render_tests.source_set_name(security_group, 'tcp_80', 4,
                                             None)
    hosts = render_tests.source_set_name(security_group, 'tcp_80', 4, 32)
    del by_name(objects, 'set', intervals)['elem']
    by_name(objects, 'set', hosts)['size'] = 65536
    assert differences(objects, plan) == [
        f'set {hosts}: size 65536 (expected 2)',
        f'{intervals}: 3 element(s) missing: '
        '100.0.0.0-100.127.255.255, 80.0.0.0-80.15.255.255, '
        '90.0.0.0-90.63.255.255']


def test_set_elements_added_and_changed(plan, objects):
    members = by_name(objects, 'set', 'r7_members_4')
    members['elem'] = [{'concat': ['198.51.100.5', 'tcp', 8081]}]
    by_name(objects, 'set', 'r7_vrrp_4_p32')['elem'].append(
        '198.51.100.99')
    assert differences(objects, plan) == [
        'r*_members_4: 1 element(s) missing: 198.51.100.5 . 6 . 8080',
        'r*_members_4: 1 unexpected element(s): 198.51.100.5 . 6 . 8081',
        'r*_vrrp_4_p32: 1 unexpected element(s): 198.51.100.99']


def test_a_changed_map_element(plan, objects):
    listeners = by_name(objects, 'map', 'r7_listeners')
    listeners['elem'] = [[{'concat': ['udp', 53]},
                          {'accept': None}] if key['concat'][0] == 'udp'
                         else [key, verdict]
                         for key, verdict in listeners['elem']]
    assert differences(objects, plan) == [
        'r*_listeners: 1 element(s) missing: '
        '17 . 53 : {"goto": {"target": "r*_udp_53"}}',
        'r*_listeners: 1 unexpected element(s): 17 . 53 : {"accept": null}']


def test_the_table_deleted(plan):
    assert differences([], plan) == ['the table is missing']


def test_a_dormant_table(plan, objects):
    # nft 1.0.6 garbles the flags of a table: any is a difference.
    by_name(objects, 'table', 'sriov_octavia')['flags'] = 'drop_eth1'
    assert differences(objects, plan) == [
        'table: flags true (expected false)']


def test_a_base_chain_policy(plan, objects):
    by_name(objects, 'chain', 'in_eth1')['policy'] = 'accept'
    assert differences(objects, plan) == [
        'chain in_eth1: policy "accept" (expected "drop")']


def test_objects_missing_and_unexpected(plan, objects):
    chain = by_name(objects, 'chain', 'in_eth2')
    objects.remove({'chain': chain})
    for rule in rules(objects, 'in_eth2'):
        objects.remove({'rule': rule})
    objects.append({'chain': dict(chain, name='sneaky', policy='accept')})
    objects.append({'quota': {'family': 'inet', 'table': 'sriov_octavia',
                              'name': 'q', 'bytes': 1}})
    assert differences(objects, plan) == [
        'chain in_eth2 is missing', 'unexpected chain sneaky',
        'unexpected quota q']


def test_a_leftover_generation_is_unexpected(plan, objects):
    old = copy.deepcopy(by_name(objects, 'set', 'r7_vrrp_4_p32'))
    objects.append({'set': dict(old, name='r6_vrrp_4_p32')})
    assert differences(objects, plan) == ['unexpected set r6_vrrp_4_p32']


def test_summary_names_the_first_differences_and_counts_the_rest():
    found = [f'difference {index}' for index in range(drift.SHOWN + 3)]
    text = drift.summary(found)
    assert text.startswith('difference 0; difference 1;')
    assert text.endswith(f'difference {drift.SHOWN - 1}; and 3 more')


# The renderer's repair ----------------------------------------------------

def test_a_repair_restores_what_a_render_takes_as_given():
    first = plan_of(sg())
    plan = render.build(sg(), ROLES, EPHEMERAL, first.result, repair=True)
    assert plan.prepare[0][0] == {'add': {'table': {
        'family': 'inet', 'name': 'sriov_octavia'}}}
    assert plan.switch[0] == {'flush': {'chain': {
        'family': 'inet', 'table': 'sriov_octavia', 'name': 'essentials'}}}
    essentials = render_tests.rules_of(plan.switch, render.ESSENTIALS_CHAIN)
    assert essentials == render_tests.rules_of(
        render_tests.prepared(first), render.ESSENTIALS_CHAIN)
    # The base chain is added again, its policy with it, before its
    # rules are replaced.
    base = [command for command in plan.switch
            if 'in_eth1' in json.dumps(command) and 'rule' not in json.dumps(
                command)]
    assert base == [
        {'add': {'chain': {'family': 'inet', 'table': 'sriov_octavia',
                           'name': 'in_eth1', 'type': 'filter',
                           'hook': 'ingress', 'dev': 'eth1', 'prio': 0,
                           'policy': 'drop'}}},
        {'flush': {'chain': {'family': 'inet', 'table': 'sriov_octavia',
                             'name': 'in_eth1'}}}]


def test_a_render_without_repair_leaves_table_and_essentials_alone():
    first = plan_of(sg())
    plan = render.build(sg(), ROLES, EPHEMERAL, first.result)
    assert not render_tests.commands(render_tests.prepared(plan), 'add',
                                     'table')
    assert not render_tests.rules_of(plan.switch, render.ESSENTIALS_CHAIN)


def test_counters_start_from_the_values_given():
    plan = render.build(sg(), ROLES, EPHEMERAL, render.Installed(),
                        counter_values={'drop_eth1': {'packets': 3,
                                                      'bytes': 180}})
    counters = {counter['name']: counter for counter in render_tests.commands(
        render_tests.prepared(plan), 'add', 'counter')}
    assert counters['drop_eth1'] == {
        'family': 'inet', 'table': 'sriov_octavia', 'name': 'drop_eth1',
        'packets': 3, 'bytes': 180}
    assert 'packets' not in counters['drop_eth2']


# What the API shows ------------------------------------------------------

class RepairingFirewall(fakes.FakeFirewall):
    def repairs(self):
        return {'count': 2, 'failed': 0,
                'last_repair_at': '2026-01-01T00:00:00+00:00',
                'last_difference': 'the table is missing',
                'last_verified_at': '2026-01-01T00:00:30+00:00',
                'verify_interval': 30}


def test_info_shows_the_repairs_of_the_firewall_it_is_given():
    firewall = RepairingFirewall()
    show = info.info_endpoint('amphora-haproxy', fakes.FakeEngine(),
                              firewall)._handlers['GET']
    assert show()['firewall_repairs'] == firewall.repairs()
