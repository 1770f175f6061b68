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
"""The L4 document's validation: every field's errors name the field."""

import copy

import pytest

from amphora_agent.l4 import model


def good():
    return {
        'loadbalancer_id': 'lb-1', 'flow_limit': 1000,
        'listeners': [{
            'id': 'l-1', 'protocol': 'UDP', 'port': 53,
            'addresses': ['198.51.100.10', '2001:db8::10'],
            'connection_limit': None,
            'pool': {
                'id': 'p-1', 'algorithm': 'ROUND_ROBIN',
                'persistence': None,
                'members': [{'id': 'm-1', 'address': '10.0.0.1',
                             'port': 53, 'weight': 1, 'backup': False,
                             'enabled': True, 'monitor_address': None,
                             'monitor_port': None},
                            {'id': 'm-2', 'address': '2001:db8:2::1',
                             'port': 53}],
                'monitor': {'type': 'UDP-CONNECT', 'delay': 5,
                            'timeout': 3, 'rise': 2, 'fall': 3}}}]}


def refused(change):
    body = good()
    change(body)
    with pytest.raises(model.InvalidRequest) as info:
        model.parse_document(body)
    return info.value.field


def test_good_document_is_normalised():
    document = model.parse_document(good())

    listener = document.listeners[0]
    assert listener.addresses == ((4, '198.51.100.10'), (6, '2001:db8::10'))
    assert listener.pool.members[1].weight == 1
    assert listener.pool.monitor['http_method'] == 'GET'
    assert document.to_dict()['listeners'][0]['pool']['members'][1] == {
        'id': 'm-2', 'address': '2001:db8:2::1', 'port': 53, 'weight': 1,
        'backup': False, 'enabled': True, 'monitor_address': None,
        'monitor_port': None}
    # The canonical form parses to the same document.
    assert model.parse_document(document.to_dict()) == document


def _member(body):
    return body['listeners'][0]['pool']['members'][0]


def _pool(body):
    return body['listeners'][0]['pool']


def _listener(body):
    return body['listeners'][0]


def _monitor(body):
    return body['listeners'][0]['pool']['monitor']


P = 'listeners[0].pool'
M = f'{P}.members[0]'


@pytest.mark.parametrize('change, field', [
    (lambda b: b.pop('loadbalancer_id'), 'loadbalancer_id'),
    (lambda b: b.update(loadbalancer_id='a b'), 'loadbalancer_id'),
    (lambda b: b.update(flow_limit=0), 'flow_limit'),
    (lambda b: b.update(extra=1), 'extra'),
    (lambda b: b.update(listeners={}), 'listeners'),
    (lambda b: _listener(b).update(id=''), 'listeners[0].id'),
    (lambda b: _listener(b).update(protocol='TCP'), 'listeners[0].protocol'),
    (lambda b: _listener(b).update(port=0), 'listeners[0].port'),
    (lambda b: _listener(b).update(port=65536), 'listeners[0].port'),
    (lambda b: _listener(b).update(addresses=[]), 'listeners[0].addresses'),
    (lambda b: _listener(b).update(addresses=['x']),
     'listeners[0].addresses[0]'),
    (lambda b: _listener(b).update(connection_limit=0),
     'listeners[0].connection_limit'),
    (lambda b: _pool(b).update(algorithm='RANDOM'), f'{P}.algorithm'),
    (lambda b: _pool(b).pop('id'), f'{P}.id'),
    (lambda b: _pool(b).update(persistence={'type': 'HTTP_COOKIE'}),
     f'{P}.persistence.type'),
    (lambda b: _pool(b).update(persistence={
        'type': 'SOURCE_IP', 'granularity': '255.0.255.0'}),
     f'{P}.persistence.granularity'),
    (lambda b: _pool(b).update(persistence={
        'type': 'SOURCE_IP', 'granularity': '128.0.0.0'}),
     f'{P}.persistence.granularity'),
    (lambda b: _pool(b).update(persistence={
        'type': 'SOURCE_IP', 'granularity': 'mask'}),
     f'{P}.persistence.granularity'),
    (lambda b: _member(b).update(weight=257), f'{M}.weight'),
    (lambda b: _member(b).update(weight=-1), f'{M}.weight'),
    (lambda b: _member(b).update(port=None), f'{M}.port'),
    (lambda b: _member(b).update(address='10.0.0.300'), f'{M}.address'),
    (lambda b: _member(b).update(backup='no'), f'{M}.backup'),
    (lambda b: _member(b).update(enabled=1), f'{M}.enabled'),
    (lambda b: _member(b).update(monitor_address='x'),
     f'{M}.monitor_address'),
    (lambda b: _member(b).update(monitor_port=70000), f'{M}.monitor_port'),
    (lambda b: _member(b).pop('id'), f'{M}.id'),
    (lambda b: _pool(b)['members'].append(dict(_member(b))),
     f'{P}.members[2].id'),
    (lambda b: _pool(b)['members'].append(dict(_member(b), id='m-3')),
     f'{P}.members[2].address'),
    (lambda b: _monitor(b).update(type='ICMP'), f'{P}.monitor.type'),
    (lambda b: _monitor(b).update(delay=0), f'{P}.monitor.delay'),
    (lambda b: _monitor(b).update(timeout=9),
     f'{P}.monitor.timeout'),
    (lambda b: _monitor(b).update(rise=0), f'{P}.monitor.rise'),
    (lambda b: _monitor(b).update(fall=11), f'{P}.monitor.fall'),
    (lambda b: _monitor(b).update(http_method='FETCH'),
     f'{P}.monitor.http_method'),
    (lambda b: _monitor(b).update(url_path='x'),
     f'{P}.monitor.url_path'),
    (lambda b: _monitor(b).update(expected_codes='2xx'),
     f'{P}.monitor.expected_codes'),
    (lambda b: _monitor(b).update(expected_codes='300-200'),
     f'{P}.monitor.expected_codes'),
    (lambda b: _monitor(b).update(domain_name='a b'),
     f'{P}.monitor.domain_name'),
    (lambda b: _monitor(b).update(domain_name='example.com'),
     f'{P}.monitor.domain_name'),
    (lambda b: _monitor(b).update(http_version=2.0),
     f'{P}.monitor.http_version'),
])
def test_each_error_names_its_field(change, field):
    assert refused(change) == field


def test_member_family_needs_a_listener_address_of_it():
    def change(body):
        _listener(body)['addresses'] = ['198.51.100.10']
    assert refused(change) == f'{P}.members[1].address'


def test_second_listener_on_the_same_address_and_port():
    def change(body):
        body['listeners'].append(dict(_listener(body), id='l-2', pool=None))
    assert refused(change) == 'listeners[1].addresses[0]'


def test_weight_error_path_in_a_later_listener():
    def change(body):
        second = copy.deepcopy(_listener(body))
        second.update(id='l-2', port=54)
        second['pool']['id'] = 'p-2'
        second['pool']['members'][0]['weight'] = 1000
        body['listeners'].append(second)
    assert refused(change) == 'listeners[1].pool.members[0].weight'


def test_a_pool_serves_one_listener():
    def change(body):
        body['listeners'].append(dict(copy.deepcopy(_listener(body)),
                                      id='l-2', port=54))
    assert refused(change) == 'listeners[1].pool.id'


def test_granularity_prefixes():
    assert model.granularity_prefix('255.255.255.0', 'f') == (4, 24)
    assert model.granularity_prefix('ffff:ffff:ffff::', 'f') == (6, 48)
