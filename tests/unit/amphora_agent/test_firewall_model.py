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

import copy
import time

import pytest

from amphora_agent.firewall import model
from amphora_agent import validation

VALID = {
    'vip_interfaces': ['203.0.113.10'],
    'listeners': [{'protocol': 'TCP', 'port': 80,
                   'allowed_cidrs': ['10.0.0.0/8', '10.1.0.0/16',
                                     '2001:db8::/32']}],
    'vrrp_peers': ['203.0.113.11'],
    'members': [{'address': '198.51.100.5', 'protocol': 'TCP',
                 'port': 8080},
                {'address': '198.51.100.6', 'protocol': 'ICMP'}],
}


def body(**changes):
    result = copy.deepcopy(VALID)
    result.update(changes)
    return result


def listener(**changes):
    result = {'protocol': 'TCP', 'port': 80}
    result.update(changes)
    return result


def test_valid_request_round_trips_in_canonical_form():
    sg = model.parse_security_group(VALID)
    assert sg.to_dict() == {
        'vip_interfaces': ['203.0.113.10'],
        'listeners': [{'protocol': 'TCP', 'port': 80,
                       'allowed_cidrs': ['10.0.0.0/8', '10.1.0.0/16',
                                         '2001:db8::/32']}],
        'vrrp_peers': ['203.0.113.11/32'],
        'members': [{'address': '198.51.100.5', 'protocol': 'TCP',
                     'port': 8080},
                    {'address': '198.51.100.6', 'protocol': 'ICMP'}],
    }
    assert model.parse_security_group(sg.to_dict()) == sg


def test_cidrs_are_normalised_not_rejected():
    sg = model.parse_security_group(body(listeners=[listener(
        allowed_cidrs=['10.1.2.3/8', '10.0.0.0/8', '2001:DB8::1/32',
                       '192.0.2.7', '10.1.0.0/16'])]))
    assert sg.to_dict()['listeners'][0]['allowed_cidrs'] == [
        '10.0.0.0/8', '10.1.0.0/16', '192.0.2.7/32', '2001:db8::/32']


def test_missing_or_empty_cidrs_mean_any_source():
    for cidrs in ({}, {'allowed_cidrs': []}, {'allowed_cidrs': None}):
        sg = model.parse_security_group(body(listeners=[listener(**cidrs)]))
        assert sg.listeners[0].allowed_cidrs == ()


def test_listeners_on_one_port_merge_their_sources():
    sg = model.parse_security_group(body(listeners=[
        listener(allowed_cidrs=['10.0.0.0/8']),
        listener(protocol='UDP', allowed_cidrs=['10.0.0.0/8']),
        listener(allowed_cidrs=['192.0.2.0/24'])]))
    assert [item.to_dict() for item in sg.listeners] == [
        {'protocol': 'TCP', 'port': 80,
         'allowed_cidrs': ['10.0.0.0/8', '192.0.2.0/24']},
        {'protocol': 'UDP', 'port': 80, 'allowed_cidrs': ['10.0.0.0/8']}]
    sg = model.parse_security_group(body(listeners=[
        listener(allowed_cidrs=['10.0.0.0/8']), listener()]))
    assert sg.listeners[0].allowed_cidrs == ()


def test_members_absent_or_null_are_unknown_empty_list_is_none():
    without = body()
    del without['members']
    assert model.parse_security_group(without).members is None
    assert model.parse_security_group(body(members=None)).members is None
    assert model.parse_security_group(body(members=[])).members == ()


@pytest.mark.parametrize('request_body,field,reason', [
    ([], 'body', "is not of type 'object'"),
    ('text', 'body', "is not of type 'object'"),
    ({}, 'vip_interfaces', 'is a required field'),
    (body(extra=1), 'extra', 'unknown field'),
    (body(vip_interfaces=[]), 'vip_interfaces', 'non-empty'),
    (body(vip_interfaces='203.0.113.10'), 'vip_interfaces',
     "is not of type 'array'"),
    (body(vip_interfaces=['203.0.113.10', 'vip']), 'vip_interfaces[1]',
     "'vip' is not a valid IP address"),
    (body(vip_interfaces=['203.0.113.0/24']), 'vip_interfaces[0]',
     'not a valid IP address'),
    (body(listeners={}), 'listeners', "is not of type 'array'"),
    (body(listeners=[listener(), 'x']), 'listeners[1]',
     "is not of type 'object'"),
    (body(listeners=[listener(), listener(colour=1)]),
     'listeners[1].colour', 'unknown field'),
    (body(listeners=[{'port': 80}]), 'listeners[0].protocol',
     'is a required field'),
    (body(listeners=[{'protocol': 'TCP'}]), 'listeners[0].port',
     'is a required field'),
    (body(listeners=[listener(protocol='HTTP')]), 'listeners[0].protocol',
     "'HTTP' is not one of"),
    (body(listeners=[listener(protocol='tcp')]), 'listeners[0].protocol',
     "'tcp' is not one of"),
    (body(listeners=[listener(port=0)]), 'listeners[0].port',
     'less than the minimum of 1'),
    (body(listeners=[listener(port=65536)]), 'listeners[0].port',
     'greater than the maximum of 65535'),
    (body(listeners=[listener(port='80')]), 'listeners[0].port',
     "is not of type 'integer'"),
    (body(listeners=[listener(port=True)]), 'listeners[0].port',
     "is not of type 'integer'"),
    (body(listeners=[listener(port=80.5)]), 'listeners[0].port',
     "is not of type 'integer'"),
    (body(listeners=[listener(allowed_cidrs='10.0.0.0/8')]),
     'listeners[0].allowed_cidrs', "is not of type 'array', 'null'"),
    (body(listeners=[listener(), listener(port=81, allowed_cidrs=[
        '10.0.0.0/8', '10.1.0.0/16', '2001:db8::/32',
        '10.0.0.300/8'])]),
     'listeners[1].allowed_cidrs[3]',
     "'10.0.0.300/8' is not a valid IP network"),
    (body(listeners=[listener(allowed_cidrs=['10.0.0.0/33'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['2001:db8::/129'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['10.0.0.0/-1'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['10.0.0.0/'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['10.1/16'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['fe80::1%eth0/64'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['10.0.0.0/²'])]),
     'listeners[0].allowed_cidrs[0]', 'not a valid IP network'),
    (body(listeners=[listener(allowed_cidrs=['10.0.0.0/8', 8])]),
     'listeners[0].allowed_cidrs[1]', "8 is not of type 'string'"),
    (body(vrrp_peers=['203.0.113.11', 'peer']), 'vrrp_peers[1]',
     "'peer' is not a valid IP network"),
    (body(vrrp_peers=[112]), 'vrrp_peers[0]', "is not of type 'string'"),
    (body(members={}), 'members', "is not of type 'array', 'null'"),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'TCP',
                    'port': 8080, 'weight': 1}]),
     'members[0].weight', 'unknown field'),
    (body(members=[{'protocol': 'TCP', 'port': 8080}]),
     'members[0].address', 'is a required field'),
    (body(members=[{'address': '198.51.100.5', 'port': 8080}]),
     'members[0].protocol', 'is a required field'),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'HTTP',
                    'port': 80}]),
     'members[0].protocol', "'HTTP' is not one of"),
    (body(members=[{'address': 'member', 'protocol': 'TCP', 'port': 80}]),
     'members[0].address', "'member' is not a valid IP address"),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'TCP'}]),
     'members[0].port', 'is required for TCP members'),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'UDP',
                    'port': None}]),
     'members[0].port', 'is required for UDP members'),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'ICMP',
                    'port': 7}]),
     'members[0].port', 'ICMP members have no port'),
    (body(members=[{'address': '198.51.100.5', 'protocol': 'SCTP',
                    'port': 70000}]),
     'members[0].port', 'greater than the maximum of 65535'),
])
def test_invalid_requests_name_the_field(request_body, field, reason):
    with pytest.raises(model.InvalidRequest) as caught:
        model.parse_security_group(request_body)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value) == f'{field}: {caught.value.reason}'


# Upstream Octavia's PUT /1.0/interface/<ip>/rules --------------------------

def test_upstream_rules_group_by_listener():
    sg = model.from_upstream_rules('203.0.113.10', [
        {'protocol': 'TCP', 'cidr': '10.0.0.0/8', 'port': 80},
        {'protocol': 'TCP', 'cidr': '2001:db8::/32', 'port': 80},
        {'protocol': 'UDP', 'cidr': None, 'port': 53},
        {'protocol': 'SCTP', 'cidr': '192.0.2.0/24', 'port': 9000},
        {'protocol': 'vrrp', 'cidr': '203.0.113.11/32', 'port': 112},
    ])
    assert sg.to_dict() == {
        'vip_interfaces': ['203.0.113.10'],
        'listeners': [
            {'protocol': 'SCTP', 'port': 9000,
             'allowed_cidrs': ['192.0.2.0/24']},
            {'protocol': 'TCP', 'port': 80,
             'allowed_cidrs': ['10.0.0.0/8', '2001:db8::/32']},
            {'protocol': 'UDP', 'port': 53, 'allowed_cidrs': []}],
        'vrrp_peers': ['203.0.113.11/32'],
        'members': None,
    }


def test_upstream_null_cidr_opens_the_port_and_vrrp_to_everyone():
    sg = model.from_upstream_rules('2001:db8::10', [
        {'protocol': 'TCP', 'cidr': '10.0.0.0/8', 'port': 80},
        {'protocol': 'TCP', 'cidr': None, 'port': 80},
        {'protocol': 'VRRP', 'cidr': None, 'port': 112},
    ])
    assert sg.listeners[0].allowed_cidrs == ()
    assert sg.to_dict()['vrrp_peers'] == ['0.0.0.0/0', '::/0']


def test_upstream_empty_rules_close_everything():
    sg = model.from_upstream_rules('203.0.113.10', [])
    assert sg.listeners == () and sg.vrrp_peers == ()


@pytest.mark.parametrize('address,rules,field,reason', [
    ('nowhere', [], 'interface_address', 'not a valid IP address'),
    ('203.0.113.10', {}, 'body', "is not of type 'array'"),
    ('203.0.113.10', [{'protocol': 'TCP', 'port': 80}], '[0].cidr',
     'is a required field'),
    ('203.0.113.10', [{'protocol': 'TCP', 'cidr': None, 'port': 80,
                       'x': 1}], '[0].x', 'unknown field'),
    ('203.0.113.10', [{'protocol': 'TCP', 'cidr': None, 'port': 80},
                      {'protocol': 'ICMP', 'cidr': None, 'port': 1}],
     '[1].protocol', "'ICMP' is not one of TCP, UDP, SCTP, VRRP"),
    ('203.0.113.10', [{'protocol': 'TCP', 'cidr': '10.0.0.0/40',
                       'port': 80}],
     '[0].cidr', "'10.0.0.0/40' is not a valid IP network"),
    ('203.0.113.10', [{'protocol': 'TCP', 'cidr': None, 'port': 0}],
     '[0].port', 'less than the minimum of 1'),
])
def test_upstream_invalid_rules_name_the_field(address, rules, field,
                                               reason):
    with pytest.raises(model.InvalidRequest) as caught:
        model.from_upstream_rules(address, rules)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_many_vip_interfaces_are_deduplicated_in_linear_time():
    # Once quadratic: 40k addresses took 23 s.
    texts = [f'10.{n >> 16}.{(n >> 8) & 255}.{n & 255}' for n in range(40000)]
    started = time.monotonic()

    sg = model.parse_security_group({'vip_interfaces': texts + texts[:10]})

    assert time.monotonic() - started < 3
    assert len(sg.vip_interfaces) == 40000


# The parse cache ------------------------------------------------------------

def test_an_unchanged_cidr_list_is_not_parsed_again():
    first = model.parse_security_group(body())
    # A fresh body (other list and string objects), another member.
    again = model.parse_security_group(body(members=[
        {'address': '198.51.100.7', 'protocol': 'UDP', 'port': 53}]))
    assert again.listeners[0] is first.listeners[0]
    assert again.members != first.members
    assert again.to_dict()['listeners'] == first.to_dict()['listeners']


def test_a_changed_cidr_list_is_parsed_and_the_others_reused():
    web = listener(allowed_cidrs=['10.0.0.0/8'])
    dns = listener(protocol='UDP', port=53, allowed_cidrs=['192.0.2.0/24'])
    first = model.parse_security_group(body(listeners=[web, dns]))
    changed = model.parse_security_group(body(listeners=[
        copy.deepcopy(web),
        listener(protocol='UDP', port=53, allowed_cidrs=['192.0.2.0/25'])]))
    assert changed.listeners[0] is first.listeners[0]
    assert changed.listeners[1] is not first.listeners[1]
    assert changed.listeners[1].cidr_texts == ['192.0.2.0/25']
    # Same CIDRs on another port: another listener.
    moved = model.parse_security_group(body(listeners=[
        listener(port=81, allowed_cidrs=['10.0.0.0/8'])]))
    assert moved.listeners[0].port == 81


def test_the_cache_is_not_fooled_by_a_list_changed_after_parsing():
    request_body = body()
    model.parse_security_group(request_body)
    request_body['listeners'][0]['allowed_cidrs'].append('10.0.0.0/33')
    with pytest.raises(model.InvalidRequest) as caught:
        model.parse_security_group(request_body)
    assert caught.value.field == 'listeners[0].allowed_cidrs[3]'


def test_listeners_on_one_port_are_merged_every_time():
    parts = [listener(allowed_cidrs=['10.0.0.0/8']),
             listener(allowed_cidrs=['192.0.2.0/24'])]
    first = model.parse_security_group(body(listeners=parts))
    again = model.parse_security_group(body(listeners=copy.deepcopy(parts)))
    assert again.listeners == first.listeners
    assert again.listeners[0].cidr_texts == ['10.0.0.0/8', '192.0.2.0/24']
    # One of them alone is not the merged listener of before.
    alone = model.parse_security_group(body(listeners=parts[:1]))
    assert alone.listeners[0].cidr_texts == ['10.0.0.0/8']


def test_an_invalid_request_reports_the_first_bad_entry_despite_the_cache():
    model.parse_security_group(body())
    bad = body(listeners=[
        listener(protocol='UDP', port=1, allowed_cidrs=['bogus']),
        copy.deepcopy(VALID['listeners'][0])])
    with pytest.raises(model.InvalidRequest) as caught:
        model.parse_security_group(bad)
    assert caught.value.field == 'listeners[0].allowed_cidrs[0]'


def test_a_long_list_of_strings_nested_too_deep_is_still_refused():
    deep = ['10.0.0.0/8'] * 1000
    for _ in range(40):
        deep = [deep]
    with pytest.raises(model.InvalidRequest) as caught:
        model.parse_security_group(body(vrrp_peers=deep))
    assert 'nested deeper' in caught.value.reason


def test_a_list_of_strings_at_the_depth_limit_is_refused():
    error = validation.too_deep({'a': [['x', 'y']]}, limit=2)
    assert error.field == 'a[0]'
    assert validation.too_deep({'a': [['x', 'y']]}, limit=3) is None
    assert validation.too_deep({'a': [['x', {'b': 1}]]}, limit=3).field == \
        'a[0][1]'
