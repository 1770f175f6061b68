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
"""The native security-group endpoint, driven through the WSGI app.

The engine is a fake that records what reaches it: these tests are about
what the API lets through to the engine and what it answers.
"""

import json

import pytest
import webob

from amphora_agent.firewall import engine
from amphora_agent.firewall import model
from tests.unit.amphora_agent import fakes


def post(app, body=fakes.GOOD_BODY):
    return fakes.request(app, 'POST', '/1.0/security-group', body)


def test_post_applies_the_parsed_state_and_returns_the_engine_answer(
        app, firewall):
    response = post(app)

    assert response.status_int == 200
    assert firewall.applied == [model.parse_security_group(fakes.GOOD_BODY)]
    assert response.json == firewall.current()
    listener = response.json['security_group']['listeners'][0]
    assert listener['allowed_cidrs'] == ['198.51.100.0/24']


def test_get_returns_the_rules_in_force(app, firewall):
    post(app)

    response = fakes.request(app, 'GET', '/1.0/security-group')

    assert response.status_int == 200
    assert response.json == firewall.current()
    assert response.json['security_group']['vip_interfaces'] == [
        '203.0.113.10']


def test_get_counters(app, firewall):
    response = fakes.request(app, 'GET', '/1.0/security-group/counters')

    assert response.status_int == 200
    assert response.json == firewall.counters()


def _deep(depth):
    return b'{"vip_interfaces": ' + b'[' * depth + b']' * depth + b'}'


@pytest.mark.parametrize('raw, content_type, status, field', [
    (b'{"vip_interfaces": [', 'application/json', 400, 'body'),
    (b'', 'application/json', 400, 'body'),
    (b'   ', 'application/json', 400, 'body'),
    (b'\xff\xfe{}', 'application/json', 400, 'body'),
    (b'{"vip_interfaces": ["203.0.113.10"], "listeners": [], '
     b'"listeners": []}', 'application/json', 400, 'listeners'),
    (b'{"vip_interfaces": ["203.0.113.10"], "listeners": '
     b'[{"protocol": "TCP", "port": NaN}]}', 'application/json', 400,
     'body'),
    (_deep(5000), 'application/json', 400, 'body'),
    (json.dumps(fakes.GOOD_BODY).encode(), 'text/plain', 415,
     'Content-Type'),
    (json.dumps(fakes.GOOD_BODY).encode(),
     'application/x-www-form-urlencoded', 415, 'Content-Type'),
], ids=['truncated', 'empty', 'blank', 'not-utf8', 'duplicate-key', 'nan',
        'deeply-nested', 'text-plain', 'form'])
def test_unreadable_body_is_refused_without_touching_the_engine(
        app, firewall, raw, content_type, status, field):
    response = fakes.request(app, 'POST', '/1.0/security-group', raw=raw,
                             content_type=content_type)

    fakes.assert_error(response, status, field)
    assert firewall.applied == []


def test_missing_content_type_is_refused(app, firewall):
    req = webob.Request.blank('/1.0/security-group', method='POST',
                              body=json.dumps(fakes.GOOD_BODY).encode())
    req.headers.pop('Content-Type', None)

    fakes.assert_error(req.get_response(app), 415, 'Content-Type')
    assert firewall.applied == []


def _with(**changes):
    body = json.loads(json.dumps(fakes.GOOD_BODY))
    for path, value in changes.items():
        target = body
        keys = path.split('__')
        for key in keys[:-1]:
            target = target[int(key) if key.isdigit() else key]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return body


_DELETE = object()


@pytest.mark.parametrize('body, field', [
    ([fakes.GOOD_BODY], 'body'),
    ('rules', 'body'),
    (_with(firewall='on'), 'firewall'),
    (_with(vip_interfaces=_DELETE), 'vip_interfaces'),
    (_with(vip_interfaces=[]), 'vip_interfaces'),
    (_with(vip_interfaces=['203.0.113.300']), 'vip_interfaces[0]'),
    (_with(listeners__0__port=0), 'listeners[0].port'),
    (_with(listeners__0__port=65536), 'listeners[0].port'),
    (_with(listeners__0__port='80'), 'listeners[0].port'),
    (_with(listeners__0__protocol='HTTP'), 'listeners[0].protocol'),
    (_with(listeners__0__allowed_cidrs=['198.51.100.0/24', '10.0.0.0/33']),
     'listeners[0].allowed_cidrs[1]'),
    (_with(listeners__0__colour='red'), 'listeners[0].colour'),
    (_with(vrrp_peers=['peer']), 'vrrp_peers[0]'),
    (_with(members__0__address='192.0.2.'), 'members[0].address'),
    (_with(members__0__port=_DELETE), 'members[0].port'),
], ids=['list', 'string', 'unknown-field', 'no-vip', 'empty-vip',
        'bad-vip', 'port-0', 'port-65536', 'port-string', 'protocol',
        'bad-cidr', 'unknown-listener-field', 'bad-peer',
        'bad-member-address', 'member-without-port'])
def test_invalid_state_is_refused_naming_the_field(app, firewall, body,
                                                   field):
    response = post(app, body)

    fakes.assert_error(response, 400, field)
    assert firewall.applied == []


def test_bad_request_leaves_the_rules_in_force(app, firewall):
    post(app)
    before = fakes.request(app, 'GET', '/1.0/security-group').json

    bad = _with(listeners__0__allowed_cidrs=['not-a-cidr'])
    assert post(app, bad).status_int == 400

    assert fakes.request(app, 'GET', '/1.0/security-group').json == before
    assert len(firewall.applied) == 1


def test_engine_refusal_is_a_400_naming_its_field(app, firewall):
    firewall.refuse_with = model.InvalidRequest(
        'vip_interfaces[0]', '203.0.113.10 is on no interface')

    response = post(app)

    fakes.assert_error(response, 400, 'vip_interfaces[0]')
    assert response.json['reason'] == '203.0.113.10 is on no interface'


def test_engine_failure_is_a_500_without_internals(app, firewall):
    firewall.refuse_with = RuntimeError('nft: secret detail /etc/x')

    response = post(app)

    fakes.assert_error(response, 500, 'agent')
    assert 'secret detail' not in response.text
    assert 'RuntimeError' in response.json['reason']


@pytest.mark.parametrize('method, path', [
    ('PUT', '/1.0/security-group'),
    ('DELETE', '/1.0/security-group'),
    ('PATCH', '/1.0/security-group'),
    ('POST', '/1.0/security-group/counters'),
    ('DELETE', '/1.0/security-group/counters'),
])
def test_wrong_method_is_405_with_allow(app, firewall, method, path):
    response = fakes.request(app, method, path, fakes.GOOD_BODY)

    fakes.assert_error(response, 405, 'method')
    assert response.headers['Allow']
    assert method not in response.headers['Allow']
    assert firewall.applied == []


def test_kernel_refusal_is_a_500_quoting_nft(app, firewall):
    firewall.refuse_with = engine.FirewallError(
        'Error: Could not process rule: No such file or directory')

    response = post(app)

    fakes.assert_error(response, 500, 'firewall')
    assert 'No such file or directory' in response.json['reason']
    assert 'previous one stays in force' in response.json['reason']
