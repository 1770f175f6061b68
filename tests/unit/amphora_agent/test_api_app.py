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
"""Routing, discovery and body limits of the agent's WSGI app."""

import io
import json
import socket

import pytest
import webob

from amphora_agent.api.controllers import info
from tests.unit.amphora_agent import fakes

MAX_BODY = 2048


@pytest.fixture
def app(firewall):
    return fakes.make_app(firewall=firewall, max_body_size=MAX_BODY,
                          network_namespace='amphora-haproxy')


def test_root_is_upstream_version_discovery(app):
    response = fakes.request(app, 'GET', '/')

    assert response.status_int == 200
    assert response.json == {'api_version': '1.0'}


def test_info_says_who_and_what(app):
    response = fakes.request(app, 'GET', '/1.0/info')

    assert response.status_int == 200
    body = response.json
    assert body['hostname'] == socket.gethostname()
    assert body['api_version'] == '1.0'
    assert body['agent_version'] == info.agent_version()
    assert body['network_namespace'] == 'amphora-haproxy'
    assert body['firewall']['stateless'] is True
    assert 'security-group' in body['firewall']['endpoints']


@pytest.mark.parametrize('path', ['/2.0/info', '/1.0/nothing', '/1.0',
                                  '/1.0/info/more', '/1.0/security-group/x',
                                  '/1.0/security-group/counters/x'])
def test_unknown_path_is_404(app, path):
    fakes.assert_error(fakes.request(app, 'GET', path), 404, 'path')


@pytest.mark.parametrize('method, path', [('POST', '/'),
                                          ('DELETE', '/1.0/info'),
                                          ('PUT', '/1.0/info')])
def test_wrong_method_is_405(app, method, path):
    response = fakes.request(app, method, path, {})

    fakes.assert_error(response, 405, 'method')
    assert response.headers['Allow'] == 'GET'


def _post(app, body, headers):
    environ = webob.Request.blank('/1.0/security-group',
                                  method='POST').environ
    environ['wsgi.input'] = io.BytesIO(body)
    environ['CONTENT_TYPE'] = 'application/json'
    environ.pop('CONTENT_LENGTH', None)
    environ.update(headers)
    return webob.Request(environ).get_response(app)


class UnreadableInput(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError('the body was read')


def test_declared_oversized_body_is_413_before_reading_it(app, firewall):
    environ = webob.Request.blank('/1.0/security-group',
                                  method='POST').environ
    environ.update({'wsgi.input': UnreadableInput(),
                    'CONTENT_TYPE': 'application/json',
                    'CONTENT_LENGTH': str(MAX_BODY + 1)})

    response = webob.Request(environ).get_response(app)

    fakes.assert_error(response, 413, 'body')
    assert firewall.applied == []


def test_body_at_the_limit_is_read(app, firewall):
    body = json.dumps(fakes.GOOD_BODY).encode()
    body += b' ' * (MAX_BODY - len(body))

    response = _post(app, body, {'CONTENT_LENGTH': str(len(body))})

    assert response.status_int == 200, response.text
    assert len(firewall.applied) == 1


def test_bad_content_length_is_400(app, firewall):
    response = _post(app, b'{}', {'CONTENT_LENGTH': '-5'})

    fakes.assert_error(response, 400, 'Content-Length')


class CountingInput(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.bytes_read = 0
        self.largest_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        self.largest_read = max(self.largest_read, len(data))
        return data


def test_unbounded_body_is_read_only_past_the_limit(app, firewall):
    # A chunked body the server decoded: no length, the stream just ends.
    stream = CountingInput(b' ' * (10 * MAX_BODY))

    response = _post(app, b'', {'wsgi.input': stream,
                                'wsgi.input_terminated': True})

    fakes.assert_error(response, 413, 'body')
    # The answer came from MAX_BODY + 1 bytes; the rest was read only
    # after it, in steps, and discarded, so that the client receives it.
    assert stream.largest_read <= 64 * 1024
    assert firewall.applied == []


def test_unbounded_body_within_the_limit_is_applied(app, firewall):
    body = json.dumps(fakes.GOOD_BODY).encode()

    response = _post(app, b'', {'wsgi.input': io.BytesIO(body),
                                'wsgi.input_terminated': True})

    assert response.status_int == 200, response.text
    assert len(firewall.applied) == 1


def test_broken_unbounded_body_is_400(app, firewall):
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise ValueError('chunked body: bad chunk size')

    response = _post(app, b'', {'wsgi.input': Broken(),
                                'wsgi.input_terminated': True})

    fakes.assert_error(response, 400, 'body')
    assert 'chunk size' in response.json['reason']
