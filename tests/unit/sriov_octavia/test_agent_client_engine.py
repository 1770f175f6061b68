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
"""AgentClient's engine calls against a stub agent over mutual TLS.

The stub (conftest's ``stub``) records each request's method, path,
Content-Type and raw body, and answers what the test tells it; the real
agent answers these calls in
tests/functional/amphora_agent/test_engine_haproxy.py.
"""

import json

import pytest

from sriov_octavia.amphora import client as agent_client

CONFIG = 'global\n    maxconn 100\n# \u00e9t\u00e9\n'
OK = (202, {'message': 'OK', 'details': 'done'})


def test_upload_haproxy_config_sends_the_file_as_it_is(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy')] = OK

    assert api.upload_haproxy_config('amp-1', 'lb-1', CONFIG) == OK[1]

    [sent] = stub.received
    assert sent.body == CONFIG.encode('utf-8')
    assert sent.content_type.startswith('text/plain')


def test_rejected_config_carries_haproxy_words(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/haproxy')] = (400, {
        'field': 'config', 'reason': 'haproxy refused the configuration',
        'details': "[ALERT] parsing [haproxy.cfg:3] : unknown keyword "
                   "'bogus'"})

    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_haproxy_config('amp-1', 'lb-1', CONFIG)

    assert raised.value.status == 400
    assert raised.value.field == 'config'
    assert "unknown keyword 'bogus'" in raised.value.reason


@pytest.mark.parametrize('action', ['start', 'stop', 'reload'])
def test_loadbalancer_action(stub, api, action):
    stub.answers[('PUT', f'/1.0/loadbalancer/lb-1/{action}')] = OK

    assert api.loadbalancer_action('lb-1', action) == OK[1]
    assert stub.received[0].body == b''


def test_delete_loadbalancer(stub, api):
    stub.answers[('DELETE', '/1.0/loadbalancer/lb-1')] = (
        200, {'message': 'OK', 'details': 'haproxy was not running'})

    assert api.delete_loadbalancer('lb-1')['message'] == 'OK'


def test_get_loadbalancer_status(stub, api):
    status = {'frontends': {'listener-1': {'status': 'OPEN'}},
              'backends': {}}
    stub.answers[('GET', '/1.0/loadbalancer/lb-1/status')] = (200, status)
    stub.answers[('GET', '/1.0/loadbalancer/lb-2/status')] = (404, {
        'field': 'loadbalancer_id', 'reason': 'no running haproxy'})

    assert api.get_loadbalancer_status('lb-1') == status
    assert api.get_loadbalancer_status('lb-2') is None


def test_status_of_an_agent_without_the_endpoint_is_an_error(stub, api):
    # A 404 for the path itself (an older agent) is not "not running".
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.get_loadbalancer_status('lb-1')

    assert raised.value.field == 'path'


def test_keepalived_calls(stub, api):
    stub.answers[('PUT', '/1.0/vrrp/upload')] = OK
    stub.answers[('PUT', '/1.0/vrrp/start')] = OK

    assert api.upload_keepalived_config('vrrp_instance x {}\n') == OK[1]
    assert api.vrrp_action('start') == OK[1]
    assert [(sent.method, sent.path, sent.body)
            for sent in stub.received] == [
        ('PUT', '/1.0/vrrp/upload', b'vrrp_instance x {}\n'),
        ('PUT', '/1.0/vrrp/start', b'')]


L4_DOCUMENT = {'loadbalancer_id': 'lb-1', 'flow_limit': 65536,
               'listeners': [{'id': 'l-1', 'protocol': 'UDP', 'port': 53,
                              'addresses': ['203.0.113.5'],
                              'connection_limit': None, 'pool': None}]}


def test_upload_l4_config_sends_the_document_as_json(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/l4')] = OK

    assert api.upload_l4_config('amp-1', 'lb-1', L4_DOCUMENT) == OK[1]

    [sent] = stub.received
    assert sent.content_type == 'application/json'
    assert json.loads(sent.body) == L4_DOCUMENT


def test_refused_l4_document_names_the_field(stub, api):
    stub.answers[('PUT', '/1.0/loadbalancer/amp-1/lb-1/l4')] = (400, {
        'field': 'listeners[0].pool.members[0].weight',
        'reason': '300 is greater than the maximum of 256'})

    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_l4_config('amp-1', 'lb-1', L4_DOCUMENT)

    assert raised.value.status == 400
    assert raised.value.field == 'listeners[0].pool.members[0].weight'


def test_get_l4_config(stub, api):
    held = dict(L4_DOCUMENT, health={})
    stub.answers[('GET', '/1.0/loadbalancer/lb-1/l4')] = (200, held)
    stub.answers[('GET', '/1.0/loadbalancer/lb-2/l4')] = (404, {
        'field': 'loadbalancer_id', 'reason': 'no L4 document in force'})
    # An agent without the L4 engine: the path is its haproxy action.
    stub.answers[('GET', '/1.0/loadbalancer/lb-3/l4')] = (405, {
        'field': 'request', 'reason': 'method not allowed'})
    stub.answers[('GET', '/1.0/loadbalancer/lb-4/l4')] = (500, {
        'field': 'l4', 'reason': 'broken'})

    assert api.get_l4_config('lb-1') == held
    assert api.get_l4_config('lb-2') is None
    assert api.get_l4_config('lb-3') is None
    with pytest.raises(agent_client.AgentRejected):
        api.get_l4_config('lb-4')
