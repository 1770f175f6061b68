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
"""The smallest Identity endpoint the ``openstack`` CLI needs.

The testbed runs without Keystone (every service uses noauth), but some CLI
commands (``server list``, ``--project`` options) build an Identity v3
client first and fail without a version document. This serves the version
discovery and the one project that exists: the one Neutron's noauth pipeline
assigns, which the testbed's Octavia assigns as well.

Run as ``python -m sriov_octavia_testbed.identity --port PORT``.
"""

import argparse
import json
import socketserver
import urllib.parse
import wsgiref.simple_server
import wsgiref.util

PROJECT = {'id': 'fake_project_id', 'name': 'fake_project_id',
           'domain_id': 'default', 'description': 'The testbed project',
           'enabled': True, 'is_domain': False, 'parent_id': 'default',
           'tags': []}
VERSION = {'id': 'v3.14', 'status': 'stable',
           'updated': '2020-04-07T00:00:00Z',
           'media-types': [{
               'base': 'application/json',
               'type': 'application/vnd.openstack.identity-v3+json'}]}


def _url(environ, path):
    return wsgiref.util.application_uri(environ).rstrip('/') + path


def _version(environ):
    return dict(VERSION, links=[{'rel': 'self',
                                 'href': _url(environ, '/v3/')}])


def _project(environ):
    return dict(PROJECT, links={
        'self': _url(environ, f"/v3/projects/{PROJECT['id']}")})


def route(environ):
    """(status, body) for a request."""
    path = environ.get('PATH_INFO', '/').rstrip('/')
    if environ['REQUEST_METHOD'] != 'GET':
        return '403 Forbidden', {'error': {
            'code': 403, 'title': 'Forbidden',
            'message': 'the testbed identity endpoint is read only'}}
    if path == '':
        return '300 Multiple Choices', {
            'versions': {'values': [_version(environ)]}}
    if path.endswith('/v3'):
        return '200 OK', {'version': _version(environ)}
    if path.endswith('/v3/projects'):
        query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
        names = query.get('name')
        found = [] if names and PROJECT['name'] not in names else [
            _project(environ)]
        return '200 OK', {'projects': found, 'links': {
            'self': _url(environ, '/v3/projects'), 'next': None,
            'previous': None}}
    if path.endswith(f"/v3/projects/{PROJECT['id']}"):
        return '200 OK', {'project': _project(environ)}
    return '404 Not Found', {'error': {'code': 404, 'title': 'Not Found',
                                       'message': f'{path} is not served'}}


def application(environ, start_response):
    status, body = route(environ)
    payload = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(payload)))])
    return [payload]


class _Server(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args(argv)
    server = wsgiref.simple_server.make_server(
        args.host, args.port, application, server_class=_Server)
    server.serve_forever()


if __name__ == '__main__':
    main()
