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
