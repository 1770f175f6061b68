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
import io
import json
import wsgiref.util

import pytest

from sriov_octavia_testbed import identity

CATALOG = [{'type': 'key-manager', 'name': 'barbican', 'id': 'km',
            'endpoints': [{'id': 'e', 'interface': 'public',
                           'region': 'RegionOne', 'region_id': 'RegionOne',
                           'url': 'http://127.0.0.1:19311'}]}]


def request(app, path, query='', method='GET', body=None, headers=None):
    """``(status, headers, body)`` of ``app``'s answer."""
    payload = json.dumps(body).encode() if body is not None else b''
    environ = {'REQUEST_METHOD': method, 'PATH_INFO': path,
               'QUERY_STRING': query, 'wsgi.input': io.BytesIO(payload),
               'CONTENT_LENGTH': str(len(payload))}
    wsgiref.util.setup_testing_defaults(environ)
    environ['HTTP_HOST'] = '127.0.0.1:19701'
    for name, value in (headers or {}).items():
        environ['HTTP_' + name.upper().replace('-', '_')] = value
    answer = {}

    def start_response(status, response_headers):
        answer['status'] = status
        answer['headers'] = dict(response_headers)

    data = b''.join(app(environ, start_response))
    return answer['status'], answer['headers'], (
        json.loads(data) if data else None)


def call(path, query='', method='GET'):
    status, _, body = request(identity.application, path, query, method)
    return status, body


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(clock):
    return identity.IdentityApp(
        identity.Tokens(b'k' * 32, lifetime=3600, clock=clock), CATALOG)


def password_auth(user, password=identity.PASSWORD, project=None,
                  scope=None):
    auth = {'identity': {'methods': ['password'], 'password': {'user': {
        'name': user, 'domain': {'name': 'Default'}, 'password': password}}}}
    if project is not None:
        auth['scope'] = {'project': project}
    if scope is not None:
        auth['scope'] = scope
    return {'auth': auth}


def login(app, user, **kwargs):
    """The token and the body of a password login."""
    status, headers, body = request(app, '/v3/auth/tokens', method='POST',
                                    body=password_auth(user, **kwargs))
    assert status.startswith('201'), body
    return headers['X-Subject-Token'], body


def test_version_discovery_points_at_v3():
    status, body = call('/v3')
    assert status.startswith('200')
    assert body['version']['id'].startswith('v3.')
    assert body['version']['links'][0]['href'] == (
        'http://127.0.0.1:19701/v3/')


def test_the_noauth_project_is_found_by_name_and_id():
    _, listing = call('/v3/projects', 'name=fake_project_id')
    assert [p['id'] for p in listing['projects']] == ['fake_project_id']
    _, listing = call('/v3/projects', 'name=other')
    assert listing['projects'] == []
    status, shown = call('/v3/projects/fake_project_id')
    assert status.startswith('200')
    assert shown['project']['name'] == 'fake_project_id'
    assert call('/v3/projects/other')[0].startswith('404')


def test_nothing_can_be_changed():
    assert call('/v3/projects', method='POST')[0].startswith('403')


def test_a_user_logs_in_and_gets_roles_project_and_catalog(app):
    token, body = login(app, 'admin', project={
        'name': 'fake_project_id', 'domain': {'name': 'Default'}})
    token_data = body['token']
    assert token_data['user']['id'] == identity.USERS['admin']['id']
    assert token_data['project']['id'] == 'fake_project_id'
    assert {r['name'] for r in token_data['roles']} == {
        'admin', 'member', 'reader'}
    assert token_data['catalog'] == CATALOG
    assert token_data['methods'] == ['password']
    assert token_data['expires_at'].endswith('Z')
    assert token


def test_without_a_scope_the_default_project(app):
    _, body = login(app, 'octavia')
    assert body['token']['project']['name'] == 'service'
    assert {r['name'] for r in body['token']['roles']} == {
        'admin', 'service'}


@pytest.mark.parametrize('auth', [
    password_auth('admin', password='wrong'),
    password_auth('nobody'),
    # Each user has roles on its own project only.
    password_auth('admin', project={'name': 'service',
                                    'domain': {'id': 'default'}}),
    password_auth('admin', project={'id': 'no-such-project'}),
    {'auth': {'identity': {'methods': ['totp'], 'totp': {}}}},
    {'auth': {'identity': {'methods': ['token'], 'token': {'id': 'x.y'}}}},
    password_auth('admin', scope={'system': {'all': True}}),
])
def test_what_keystone_refuses_is_refused(app, auth):
    status, headers, body = request(app, '/v3/auth/tokens', method='POST',
                                    body=auth)
    assert status.startswith('401'), body
    assert body['error']['code'] == 401
    assert 'X-Subject-Token' not in headers


def test_malformed_requests_are_bad_requests(app):
    status, _, _ = request(app, '/v3/auth/tokens', method='POST',
                           body={'auth': {}})
    assert status.startswith('400')


def test_a_token_logs_in_again(app):
    token, _ = login(app, 'admin')
    status, headers, body = request(
        app, '/v3/auth/tokens', method='POST', body={'auth': {'identity': {
            'methods': ['token'], 'token': {'id': token}}}})
    assert status.startswith('201')
    assert body['token']['user']['name'] == 'admin'


def test_a_service_user_validates_a_users_token(app):
    user_token, _ = login(app, 'admin')
    service_token, _ = login(app, 'barbican')
    status, headers, body = request(
        app, '/v3/auth/tokens', headers={'X-Auth-Token': service_token,
                                         'X-Subject-Token': user_token})
    assert status.startswith('200')
    assert headers['X-Subject-Token'] == user_token
    assert body['token']['user']['name'] == 'admin'
    assert body['token']['project']['id'] == 'fake_project_id'
    assert body['token']['catalog'] == CATALOG
    _, _, body = request(
        app, '/v3/auth/tokens', query='nocatalog',
        headers={'X-Auth-Token': service_token,
                 'X-Subject-Token': user_token})
    assert 'catalog' not in body['token']
    status, _, body = request(
        app, '/v3/auth/tokens', method='HEAD',
        headers={'X-Auth-Token': service_token,
                 'X-Subject-Token': user_token})
    assert status.startswith('200') and body is None


def test_validation_needs_a_valid_caller_and_subject(app):
    user_token, _ = login(app, 'admin')
    service_token, _ = login(app, 'barbican')
    assert request(app, '/v3/auth/tokens', headers={
        'X-Subject-Token': user_token})[0].startswith('401')
    assert request(app, '/v3/auth/tokens', headers={
        'X-Auth-Token': service_token,
        'X-Subject-Token': user_token + 'x'})[0].startswith('404')
    # Everybody may validate their own token.
    assert request(app, '/v3/auth/tokens', headers={
        'X-Auth-Token': user_token,
        'X-Subject-Token': user_token})[0].startswith('200')


def test_tokens_expire(app, clock):
    token, body = login(app, 'admin')
    assert app.tokens.verify(token)['user'] == identity.USERS['admin']['id']
    clock.now += 3599
    assert app.tokens.verify(token) is not None
    clock.now += 1
    assert app.tokens.verify(token) is None


def test_tokens_are_signed(clock):
    tokens = identity.Tokens(b'k' * 32, clock=clock)
    token, claims = tokens.issue('u', 'p', ['password'])
    text, _, mac = token.partition('.')
    forged = identity._b64(json.dumps(dict(
        claims, user='other'), sort_keys=True).encode())
    assert tokens.verify(f'{forged}.{mac}') is None
    assert identity.Tokens(b'o' * 32, clock=clock).verify(token) is None
    for garbage in (None, '', 'no-dot', '.', 'a.b.c'):
        assert tokens.verify(garbage) is None
    # The same key verifies it, in another process as well.
    assert identity.Tokens(b'k' * 32, clock=clock).verify(token) == claims


def test_users_are_found_by_name_and_id():
    _, listing = call('/v3/users', 'name=octavia')
    [user] = listing['users']
    assert user['id'] == identity.USERS['octavia']['id']
    status, shown = call(f"/v3/users/{user['id']}")
    assert status.startswith('200')
    assert shown['user']['name'] == 'octavia'
    assert call('/v3/users/octavia')[0].startswith('404')
    assert {u['name'] for u in call('/v3/users')[1]['users']} == {
        'admin', 'octavia', 'barbican'}


def test_the_service_project_exists():
    _, listing = call('/v3/projects', 'name=service')
    [project] = listing['projects']
    assert project['id'] == identity.SERVICE_PROJECT['id']
    assert call('/v3/projects/' + project['id'])[0].startswith('200')
