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
"""WSGI plumbing shared by the emulator's APIs: routing, JSON, serving."""

import json
import socketserver
from wsgiref import simple_server

from oslo_log import log as logging
import routes
import webob
import webob.dec
import webob.exc

from sriov_octavia_testbed.nova import errors

LOG = logging.getLogger(__name__)


def json_response(body, status=200, headers=None):
    response = webob.Response(status=status, headers=headers or {})
    if body is not None:
        response.content_type = 'application/json'
        response.charset = 'UTF-8'
        response.text = json.dumps(body)
    return response


def error_response(error):
    """Nova's error document: {"<title>": {"code": ..., "message": ...}}."""
    return json_response(
        {error.title: {'code': error.code, 'message': error.message}},
        status=error.code)


def json_body(req):
    if not req.body:
        return {}
    try:
        return json.loads(req.body)
    except ValueError:
        raise errors.BadRequest('Malformed request body')


class Router:
    """Dispatch ``(method, path)`` to a handler ``handler(req, **args)``."""

    def __init__(self):
        self.mapper = routes.Mapper()

    def add(self, method, path, handler):
        self.mapper.connect(path, handler=handler,
                            conditions={'method': [method]})

    def match(self, req):
        return self.mapper.match(req.path_info, req.environ)


class Application:
    """One WSGI app over several routers, with Nova-style error bodies."""

    def __init__(self, routers, before_request=None):
        self.routers = routers
        self.before_request = before_request

    @webob.dec.wsgify
    def __call__(self, req):
        for router in self.routers:
            match = router.match(req)
            if match is None:
                continue
            handler = match.pop('handler')
            if self.before_request is not None:
                self.before_request(req)
            try:
                return handler(req, **match)
            except errors.ApiError as e:
                return error_response(e)
            except webob.exc.HTTPException as e:
                # The Image API answers with plain HTTP errors, like Glance.
                return e
            except Exception:
                LOG.exception('%s %s failed', req.method, req.path)
                return json_response(
                    {'computeFault': {
                        'code': 500,
                        'message': 'Unexpected API Error. Please report '
                                   'this at the testbed.'}}, status=500)
        return json_response(
            {'itemNotFound': {'code': 404,
                              'message': 'The resource could not be found.'}},
            status=404)


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.debug('%s %s', self.client_address[0], fmt % args)


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    # Builds and API calls run side by side; requests must not queue behind
    # a slow one (Neutron calls, injected latency).
    daemon_threads = True


def make_server(host, port, app):
    return simple_server.make_server(
        host, port, app, server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler)
