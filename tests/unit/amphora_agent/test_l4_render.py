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
"""The L4 document as nftables JSON, and the LEAST_CONNECTIONS shares."""

from amphora_agent.l4 import balance
from amphora_agent.l4 import model
from amphora_agent.l4 import render


def doc(algorithm='ROUND_ROBIN', persistence=None, members=None,
        limit=None):
    members = members or [
        {'id': 'a', 'address': '10.0.0.1', 'port': 53, 'weight': 3},
        {'id': 'b', 'address': '10.0.0.2', 'port': 5353},
        {'id': 'c', 'address': '10.0.0.3', 'port': 53, 'backup': True}]
    return model.parse_document({
        'loadbalancer_id': 'lb', 'flow_limit': 100, 'listeners': [{
            'id': 'l', 'protocol': 'UDP', 'port': 53,
            'addresses': ['192.0.2.1'], 'connection_limit': limit,
            'pool': {'id': 'p', 'algorithm': algorithm,
                     'persistence': persistence, 'members': members}}]})


def rules(commands, chain):
    return [c['add']['rule']['expr'] for c in commands
            if 'rule' in c.get('add', {}) and
            c['add']['rule']['chain'] == chain]


def vmap(commands):
    return rules(commands, 'c_0')[0][1]['vmap']


def test_round_robin_slots_are_the_weights():
    commands = render.build(doc(), {}, (32768, 60999))

    assert vmap(commands) == {
        'key': {'numgen': {'mode': 'inc', 'mod': 4, 'offset': 0}},
        'data': {'set': [[{'range': [0, 2]}, {'jump': {'target': 'm_0_0'}}],
                         [3, {'jump': {'target': 'm_0_1'}}]]}}
    assert rules(commands, 'm_0_1') == [[
        {'counter': 'l4_member_b_flows'},
        {'match': {'op': '==', 'left': {'meta': {'key': 'l4proto'}},
                   'right': 'udp'}},
        {'dnat': {'family': 'ip', 'addr': '10.0.0.2', 'port': 5353}}]]


def test_table_is_replaced_in_one_transaction():
    commands = render.build(doc(), {}, (1000, 2000),
                            counters={'l4_l_flows': (7, 70)})

    table = {'table': {'family': 'inet', 'table': 'sriov_octavia_l4',
                       'name': 'sriov_octavia_l4'}}
    assert commands[:3] == [{'add': table}, {'delete': table},
                            {'add': table}]
    assert {'add': {'counter': {
        'family': 'inet', 'table': 'sriov_octavia_l4', 'name': 'l4_l_flows',
        'packets': 7, 'bytes': 70}}} in commands
    assert rules(commands, 'source_nat')[0][-1] == {
        'masquerade': {'port': {'range': [1000, 2000]}, 'flags': 'random'}}
    assert rules(commands, 'dispatch')[0] == [
        {'ct count': {'val': 100, 'inv': True}},
        {'counter': 'over_flow_limit'}, {'drop': None}]


def test_backup_only_when_the_others_are_down():
    commands = render.choices(doc(), {'a': 'DOWN', 'b': 'DOWN'})

    assert vmap(commands)['data']['set'] == [
        [0, {'jump': {'target': 'm_0_2'}}]]


def test_no_member_counts_and_drops():
    commands = render.choices(doc(), {'a': 'DOWN', 'b': 'DOWN',
                                      'c': 'DOWN'})

    assert rules(commands, 'c_0') == [[{'counter': 'l4_l_no_member'},
                                       {'drop': None}]]
    assert commands[0] == {'flush': {'chain': {
        'family': 'inet', 'table': 'sriov_octavia_l4', 'name': 'c_0'}}}


def test_source_ip_hashes_with_a_fixed_seed_and_granularity():
    commands = render.build(
        doc(persistence={'type': 'SOURCE_IP',
                         'granularity': '255.255.240.0'}), {}, (1, 2))

    assert vmap(commands)['key'] == {'jhash': {
        'mod': 4, 'seed': render.SEED,
        'expr': {'payload': {'base': 'nh', 'offset': 96, 'len': 16}}}}
    plain = render.build(doc(algorithm='SOURCE_IP'), {}, (1, 2))
    assert vmap(plain)['key']['jhash']['expr'] == {
        'payload': {'protocol': 'ip', 'field': 'saddr'}}


def test_connection_limit_refuses_and_counts():
    commands = render.build(doc(limit=5), {}, (1, 2))

    assert rules(commands, 'l_0') == [
        [{'mangle': {'key': {'ct': {'key': 'mark'}}, 'value': 1}}],
        [{'ct count': {'val': 5, 'inv': True}},
         {'counter': 'l4_l_refused'}, {'drop': None}],
        [{'counter': 'l4_l_flows'}, {'jump': {'target': 'c_0'}}]]


def test_disabled_and_zero_weight_members_get_no_slot():
    members = [{'id': 'a', 'address': '10.0.0.1', 'port': 53,
                'enabled': False},
               {'id': 'b', 'address': '10.0.0.2', 'port': 53, 'weight': 0},
               {'id': 'c', 'address': '10.0.0.3', 'port': 53}]
    document = doc(members=members)

    assert vmap(render.choices(document, {}))['data']['set'] == [
        [0, {'jump': {'target': 'm_0_2'}}]]
    assert render.member_state(document.listeners[0].pool.members[0],
                               {}) == 'MAINT'


def test_water_fill_gives_the_least_loaded_first():
    assert balance.water_level({'a': 10, 'b': 0}, {'a': 1, 'b': 1}, 4) == {
        'a': 0.0, 'b': 4.0}
    # Enough new flows to level both: the rest shared by weight.
    assert balance.water_level({'a': 10, 'b': 0}, {'a': 1, 'b': 1},
                               30) == {'a': 10.0, 'b': 20.0}


def test_water_fill_respects_weights():
    # Per unit of weight a has 2, b has 4: a gets the first flows.
    shares = balance.water_level({'a': 4, 'b': 4}, {'a': 2, 'b': 1}, 4)
    assert shares == {'a': 4.0, 'b': 0.0}


def test_slots_sum_exactly():
    result = balance.slots({'a': 1, 'b': 2, 'c': 3},
                           {'a': 1, 'b': 1, 'c': 1}, 7)
    assert sum(result.values()) == balance.MIN_SLOTS
    assert result['a'] > result['b'] > result['c']
    assert balance.slots({}, {'a': 0}, 5) == {}
