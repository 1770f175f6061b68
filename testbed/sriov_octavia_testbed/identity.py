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
"""The smallest Identity service the testbed's clients and services need.

Neutron, Octavia and the compute emulator run without Keystone (noauth):
they ask for no token and ignore one. Two parts of the cloud need more:

* the ``openstack`` CLI builds an Identity v3 client for some commands
  (``server list``, ``--project`` options) and fails without a version
  document and the project that exists: the one Neutron's noauth pipeline
  assigns, which the testbed's Octavia assigns as well;
* Barbican, as in any cloud, serves only tokens that Keystone validates
  (keystonemiddleware), and Octavia's certificate manager finds Barbican in
  its token's service catalog and grants its service user, by user ID, read
  access to a user's secret (Barbican ACLs). Users, projects, roles and a
  catalog have to be real enough for that.

So this serves version discovery, its projects and users, and Keystone's
token API for them: password (and token) authentication with
``POST /v3/auth/tokens`` and validation with ``GET /v3/auth/tokens``, the
catalog read from a file. Nothing can be created or changed.

Tokens are signed claims (user, project, expiry) rather than rows: the
process keeps nothing, and with the same key file a restart leaves every
issued token valid, as Keystone's Fernet tokens outlive a restart.

Run as ``python -m sriov_octavia_testbed.identity --port PORT
[--key-file FILE] [--catalog-file FILE]``.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import secrets
import socketserver
import time
import urllib.parse
import uuid
import wsgiref.simple_server
import wsgiref.util

DOMAIN = {'id': 'default', 'name': 'Default'}
# Every user's password: the stand-in listens on loopback only, and the
# testbed writes it into clouds.yaml and the services' configuration.
PASSWORD = 'sriov-testbed'
# Keystone's default is an hour; the clients renew theirs before expiry
# either way, and a long test session should not depend on it.
TOKEN_LIFETIME = 12 * 3600
_ID_NAMESPACE = uuid.UUID('6f0c1a47-3f55-4d0e-a8f0-5d6b8b7f2c21')


def _stable_id(kind, name):
    """Keystone-like hex IDs, the same in every instance."""
    return uuid.uuid5(_ID_NAMESPACE, f'{kind}/{name}').hex


PROJECT = {'id': 'fake_project_id', 'name': 'fake_project_id',
           'domain_id': 'default', 'description': 'The testbed project',
           'enabled': True, 'is_domain': False, 'parent_id': 'default',
           'tags': []}
# Where the services' own users are, as in a deployed cloud.
SERVICE_PROJECT = dict(PROJECT, id=_stable_id('project', 'service'),
                       name='service',
                       description='The services\' own users')
PROJECTS = (PROJECT, SERVICE_PROJECT)
ROLES = {name: {'id': _stable_id('role', name), 'name': name}
         for name in ('admin', 'member', 'reader', 'service')}

ADMIN_USER = 'admin'
OCTAVIA_USER = 'octavia'
BARBICAN_USER = 'barbican'
# user -> (project, roles), as an installation guide has them made: the
# CLI's user administers the testbed project; the service users (Octavia
# and the one Barbican validates tokens with) have admin and service roles
# in "service".
_ASSIGNMENTS = {
    ADMIN_USER: (PROJECT, ('admin', 'member', 'reader')),
    OCTAVIA_USER: (SERVICE_PROJECT, ('admin', 'service')),
    BARBICAN_USER: (SERVICE_PROJECT, ('admin', 'service')),
}
USERS = {name: {'id': _stable_id('user', name), 'name': name,
                'domain_id': DOMAIN['id'], 'enabled': True,
                'default_project_id': project['id'],
                'password_expires_at': None, 'options': {}}
         for name, (project, _) in _ASSIGNMENTS.items()}
# Who may validate somebody else's token (Keystone's identity:validate_token
# lets service users do it, and everybody validate their own).
_VALIDATOR_ROLES = ('admin', 'service')

VERSION = {'id': 'v3.14', 'status': 'stable',
           'updated': '2020-04-07T00:00:00Z',
           'media-types': [{
               'base': 'application/json',
               'type': 'application/vnd.openstack.identity-v3+json'}]}

_TITLES = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
           404: 'Not Found'}
_STATUS_LINES = {200: '200 OK', 201: '201 Created',
                 300: '300 Multiple Choices', 400: '400 Bad Request',
                 401: '401 Unauthorized', 403: '403 Forbidden',
                 404: '404 Not Found'}


class Error(Exception):
    """An answer in Keystone's error format."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self):
        return {'error': {'code': self.code, 'title': _TITLES[self.code],
                          'message': self.message}}


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def _iso(timestamp):
    """Keystone's timestamps: UTC, microseconds, a trailing Z."""
    moment = datetime.datetime.fromtimestamp(timestamp,
                                             datetime.timezone.utc)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class Tokens:
    """Issues tokens and tells whether one is valid.

    A token is its claims (user ID, project ID, methods, issue and expiry
    times, an audit ID) with an HMAC-SHA256 of them under ``key``: whoever
    holds the key can verify it, nothing needs to be remembered.
    """

    def __init__(self, key, lifetime=TOKEN_LIFETIME, clock=time.time):
        self._key = key
        self.lifetime = lifetime
        self._clock = clock

    def _mac(self, text):
        return _b64(hmac.new(self._key, text.encode(),
                             hashlib.sha256).digest())

    def issue(self, user_id, project_id, methods):
        """``(token, claims)`` for a new token."""
        now = self._clock()
        claims = {'user': user_id, 'project': project_id,
                  'methods': list(methods), 'issued': now,
                  'expires': now + self.lifetime,
                  'audit': _b64(secrets.token_bytes(16))}
        text = _b64(json.dumps(claims, sort_keys=True).encode())
        return f'{text}.{self._mac(text)}', claims

    def verify(self, token):
        """The claims of a valid, unexpired token; None for any other."""
        text, _, mac = (token or '').partition('.')
        if not text or not hmac.compare_digest(self._mac(text), mac):
            return None
        try:
            claims = json.loads(_unb64(text))
        except ValueError:
            return None
        if claims['expires'] <= self._clock():
            return None
        return claims


def _user_by_id(user_id):
    for user in USERS.values():
        if user['id'] == user_id:
            return user
    return None


def _project_by_id(project_id):
    for project in PROJECTS:
        if project['id'] == project_id:
            return project
    return None


def _in_default_domain(spec):
    """Whether a ``{"domain": {...}}`` reference, if any, is Default."""
    domain = spec.get('domain')
    if domain is None:
        return True
    return (domain.get('id') in (None, DOMAIN['id'])
            and domain.get('name') in (None, DOMAIN['name']))


def _find(spec, candidates):
    """The candidate a ``{"id": ...}`` or ``{"name", "domain"}`` names."""
    if not isinstance(spec, dict):
        raise Error(400, 'expected an object with "id" or "name"')
    for candidate in candidates:
        if 'id' in spec:
            if spec['id'] == candidate['id']:
                return candidate
        elif (spec.get('name') == candidate['name']
              and _in_default_domain(spec)):
            return candidate
    return None


def roles_of(user):
    return [ROLES[name] for name in _ASSIGNMENTS[user['name']][1]]


def project_of(user):
    return _ASSIGNMENTS[user['name']][0]


def authenticate(request, tokens):
    """``(user, project, methods)`` for a ``POST /v3/auth/tokens`` body.

    Password and token methods; the token is scoped to the project asked
    for, or without a scope to the user's default project, as Keystone
    does. Each user has roles on one project only.
    """
    try:
        identity = request['auth']['identity']
        methods = list(identity['methods'])
    except (KeyError, TypeError):
        raise Error(400, 'expected {"auth": {"identity": {"methods": ...}}}')
    if 'password' in methods:
        try:
            spec = identity['password']['user']
            password = spec['password']
        except (KeyError, TypeError):
            raise Error(400, 'expected password.user.password')
        user = _find(spec, USERS.values())
        if user is None or not hmac.compare_digest(password, PASSWORD):
            raise Error(401, 'The request you have made requires '
                             'authentication.')
    elif 'token' in methods:
        try:
            claims = tokens.verify(identity['token']['id'])
        except (KeyError, TypeError):
            raise Error(400, 'expected token.id')
        if claims is None:
            raise Error(401, 'The token is not valid.')
        user = _user_by_id(claims['user'])
    else:
        raise Error(401, f'methods {methods}: the testbed\'s identity '
                         f'stand-in knows password and token only')
    scope = request['auth'].get('scope')
    if scope is None:
        return user, project_of(user), methods
    if not isinstance(scope, dict) or 'project' not in scope:
        raise Error(401, 'the testbed\'s identity stand-in issues '
                         'project-scoped tokens only')
    project = _find(scope['project'], PROJECTS)
    if project is None or project is not project_of(user):
        raise Error(401, f'user {user["name"]} has no role on the project '
                         f'{scope["project"]}')
    return user, project, methods


def token_body(claims, catalog=None):
    """A token as Keystone v3 shows it; ``catalog`` None leaves it out."""
    user = _user_by_id(claims['user'])
    project = _project_by_id(claims['project'])
    token = {
        'methods': claims['methods'],
        'user': {'id': user['id'], 'name': user['name'], 'domain': DOMAIN,
                 'password_expires_at': None},
        'project': {'id': project['id'], 'name': project['name'],
                    'domain': DOMAIN},
        'roles': roles_of(user),
        'is_domain': False,
        'expires_at': _iso(claims['expires']),
        'issued_at': _iso(claims['issued']),
        'audit_ids': [claims['audit']],
    }
    if catalog is not None:
        token['catalog'] = catalog
    return {'token': token}


def _url(environ, path):
    return wsgiref.util.application_uri(environ).rstrip('/') + path


def _version(environ):
    return dict(VERSION, links=[{'rel': 'self',
                                 'href': _url(environ, '/v3/')}])


def _listing(environ, name, items):
    return {name: items, 'links': {'self': _url(environ, f'/v3/{name}'),
                                   'next': None, 'previous': None}}


def _project(environ, project):
    return dict(project, links={
        'self': _url(environ, f"/v3/projects/{project['id']}")})


def _user(environ, user):
    return dict(user, links={
        'self': _url(environ, f"/v3/users/{user['id']}")})


def _v3_path(path):
    """What follows ``/v3`` in ``path``, or None outside the v3 API."""
    head, sep, tail = path.partition('/v3')
    if not sep or (tail and not tail.startswith('/')):
        return None
    return tail


class IdentityApp:
    """The WSGI application: discovery, projects, users and tokens."""

    def __init__(self, tokens, catalog=()):
        self.tokens = tokens
        self.catalog = list(catalog)

    def route(self, environ):
        """``(status code, body, headers)`` for a request."""
        path = environ.get('PATH_INFO', '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''),
                                      keep_blank_values=True)
        tail = _v3_path(path)
        if tail == '/auth/tokens':
            if method == 'POST':
                return self._issue(environ, query)
            if method in ('GET', 'HEAD'):
                return self._validate(environ, query)
        if method != 'GET':
            raise Error(403, 'the testbed identity endpoint is read only')
        if path == '':
            return 300, {'versions': {'values': [_version(environ)]}}, {}
        if tail == '':
            return 200, {'version': _version(environ)}, {}
        if tail == '/projects':
            names = query.get('name')
            return 200, _listing(environ, 'projects', [
                _project(environ, project) for project in PROJECTS
                if not names or project['name'] in names]), {}
        if tail == '/users':
            names = query.get('name')
            return 200, _listing(environ, 'users', [
                _user(environ, user) for user in USERS.values()
                if not names or user['name'] in names]), {}
        kind, _, wanted = (tail or '').lstrip('/').partition('/')
        if kind == 'projects' and _project_by_id(wanted):
            return 200, {'project': _project(
                environ, _project_by_id(wanted))}, {}
        if kind == 'users' and _user_by_id(wanted):
            return 200, {'user': _user(environ, _user_by_id(wanted))}, {}
        raise Error(404, f'{path} is not served')

    def _catalog(self, query):
        return None if 'nocatalog' in query else self.catalog

    def _issue(self, environ, query):
        try:
            length = int(environ.get('CONTENT_LENGTH') or 0)
            request = json.loads(environ['wsgi.input'].read(length) or b'{}')
        except ValueError:
            raise Error(400, 'the body is not JSON')
        user, project, methods = authenticate(request, self.tokens)
        token, claims = self.tokens.issue(user['id'], project['id'],
                                          methods)
        return (201, token_body(claims, self._catalog(query)),
                {'X-Subject-Token': token})

    def _validate(self, environ, query):
        caller = self.tokens.verify(environ.get('HTTP_X_AUTH_TOKEN'))
        if caller is None:
            raise Error(401, 'The request you have made requires '
                             'authentication.')
        subject_token = environ.get('HTTP_X_SUBJECT_TOKEN')
        subject = self.tokens.verify(subject_token)
        if subject is None:
            raise Error(404, 'Could not find token.')
        caller_roles = {role['name']
                        for role in roles_of(_user_by_id(caller['user']))}
        if (caller['user'] != subject['user']
                and not caller_roles & set(_VALIDATOR_ROLES)):
            raise Error(403, 'You are not authorized to validate tokens.')
        return (200, token_body(subject, self._catalog(query)),
                {'X-Subject-Token': subject_token})

    def __call__(self, environ, start_response):
        try:
            code, body, headers = self.route(environ)
        except Error as error:
            code, body, headers = error.code, error.body(), {}
        payload = json.dumps(body).encode()
        if environ['REQUEST_METHOD'] == 'HEAD':
            payload = b''
        start_response(_STATUS_LINES[code], [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(payload)))] + list(headers.items()))
        return [payload]


def make_application(key=None, catalog=()):
    """The application; without ``key`` its tokens last as long as it."""
    return IdentityApp(Tokens(key or secrets.token_bytes(32)), catalog)


application = make_application()


class _Server(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--key-file',
                        help='the key that signs tokens (made by the '
                             'testbed); without it, one of this process')
    parser.add_argument('--catalog-file',
                        help='the service catalog tokens carry (JSON)')
    args = parser.parse_args(argv)
    key = None
    if args.key_file:
        with open(args.key_file, 'rb') as f:
            key = f.read()
    catalog = ()
    if args.catalog_file:
        with open(args.catalog_file) as f:
            catalog = json.load(f)
    server = wsgiref.simple_server.make_server(
        args.host, args.port, make_application(key, catalog),
        server_class=_Server)
    server.serve_forever()


if __name__ == '__main__':
    main()
