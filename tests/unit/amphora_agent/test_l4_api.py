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
"""The L4 endpoints through the WSGI app, over a fake L4 engine."""

import copy

import pytest

from amphora_agent.engine import errors
from tests.unit.amphora_agent import fakes

PUT = '/1.0/loadbalancer/amp-1/lb-1/l4'


@pytest.fixture
def engine():
    engine = fakes.FakeEngine()
    engine.l4 = fakes.FakeL4()
    return engine


@pytest.fixture
def app(engine):
    return fakes.make_app(engine=engine)


def test_put_then_get(app):
    response = fakes.request(app, 'PUT', PUT, fakes.L4_BODY)
    assert response.status_int == 202
    assert response.json['message'] == 'OK'

    shown = fakes.request(app, 'GET', '/1.0/loadbalancer/lb-1/l4')
    assert shown.status_int == 200
    assert shown.json['listeners'][0]['id'] == 'l-1'
    assert shown.json['health'] == {}


def test_invalid_document_is_400_naming_the_field(app, engine):
    body = copy.deepcopy(fakes.L4_BODY)
    body['listeners'][0]['pool']['members'][0]['weight'] = 999

    response = fakes.request(app, 'PUT', PUT, body)

    fakes.assert_error(response, 400,
                       'listeners[0].pool.members[0].weight')
    assert engine.l4.document is None


def test_path_and_body_must_name_the_same_load_balancer(app):
    response = fakes.request(app, 'PUT', '/1.0/loadbalancer/amp-1/lb-2/l4',
                             fakes.L4_BODY)
    fakes.assert_error(response, 400, 'loadbalancer_id')


def test_second_load_balancer_is_409(app):
    fakes.request(app, 'PUT', PUT, fakes.L4_BODY)
    other = dict(fakes.L4_BODY, loadbalancer_id='lb-2')

    response = fakes.request(app, 'PUT', '/1.0/loadbalancer/amp-1/lb-2/l4',
                             other)
    fakes.assert_error(response, 409, 'loadbalancer_id')


def test_get_without_document_is_404(app):
    fakes.assert_error(fakes.request(app, 'GET',
                                     '/1.0/loadbalancer/lb-1/l4'),
                       404, 'loadbalancer_id')


def test_not_json_is_415(app):
    response = fakes.request(app, 'PUT', PUT, fakes.L4_BODY,
                             content_type='text/plain')
    fakes.assert_error(response, 415, 'Content-Type')


def test_delete_clears_l4_and_is_idempotent(app, engine):
    fakes.request(app, 'PUT', PUT, fakes.L4_BODY)

    first = fakes.request(app, 'DELETE', '/1.0/loadbalancer/lb-1')
    second = fakes.request(app, 'DELETE', '/1.0/loadbalancer/lb-1')
    assert first.status_int == second.status_int == 200
    assert 'L4 listeners removed' in first.json['details']
    assert engine.l4.document is None


def test_status_merges_l4_into_haproxy_shape(app, engine, monkeypatch):
    fakes.request(app, 'PUT', PUT, fakes.L4_BODY)
    # haproxy serves a listener of its own: the answer has both.
    monkeypatch.setattr(engine.haproxy, 'status', lambda *args: {
        'frontends': {'l-h': {'status': 'OPEN'}},
        'backends': {'p-h:l-h': {'status': 'UP', 'servers': {}}}})

    status = fakes.request(app, 'GET', '/1.0/loadbalancer/lb-1/status').json
    assert status['frontends']['l-1']['stot'] == 2
    assert status['backends']['p-1:l-1']['status'] == 'UP'
    assert sorted(status['frontends']) == ['l-1', 'l-h']
    assert sorted(status['backends']) == ['p-1:l-1', 'p-h:l-h']


def test_status_without_haproxy_serves_l4_alone(app, engine):
    fakes.request(app, 'PUT', PUT, fakes.L4_BODY)
    engine.haproxy.failures['status'] = errors.NotRunning('no haproxy')

    response = fakes.request(app, 'GET', '/1.0/loadbalancer/lb-1/status')
    assert response.status_int == 200
    assert list(response.json['frontends']) == ['l-1']


def test_status_404_when_neither_serves(app, engine):
    engine.haproxy.failures['status'] = errors.NotRunning('no haproxy')

    response = fakes.request(app, 'GET', '/1.0/loadbalancer/lb-1/status')
    assert response.status_int == 404


def test_engine_without_l4_answers_404():
    plain = fakes.make_app()
    fakes.assert_error(fakes.request(plain, 'PUT', PUT, fakes.L4_BODY),
                       404, 'path')
