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
"""One JSON shape for every error the agent API returns.

A caller (the controller's flows, an operator with curl) always gets
``{"faultstring": "<field>: <reason>", "message": ..., "field": ...,
"reason": ..., "code": <status>}``: ``faultstring`` as Octavia's own API
words it, ``message`` as upstream's amphora agent does, so either kind of
client finds the text where it looks for it.
"""

from oslo_log import log as logging
from pecan import hooks
import webob
from webob import exc
from webob import request as webob_request

from amphora_agent.firewall import engine
from amphora_agent.firewall import model

LOG = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses, with the field that made it refuse."""

    def __init__(self, status, field, reason):
        super().__init__(f'{field}: {reason}')
        self.status = status
        self.field = field
        self.reason = reason


def error_body(status, field, reason):
    text = f'{field}: {reason}'
    return {'faultstring': text, 'message': text, 'field': field,
            'reason': reason, 'code': status}


def error_response(status, field, reason):
    return webob.Response(json=error_body(status, field, reason),
                          status=status, charset='UTF-8')


def _http_error_response(request, error):
    """Reword pecan's routing errors into the agent's error shape."""
    if error.status_int == 404:
        response = error_response(404, 'path',
                                  f'no resource at {request.path}')
    elif error.status_int == 405:
        response = error_response(
            405, 'method',
            f'{request.method} is not allowed on {request.path}')
        allowed = error.headers.get('Allow')
        if allowed:
            response.headers['Allow'] = allowed
    else:
        response = error_response(error.status_int, 'request',
                                  error.explanation)
    return response


class JsonErrorHook(hooks.PecanHook):
    """Turn every exception a request raises into a JSON error answer."""

    def on_error(self, state, error):
        if isinstance(error, ApiError):
            return error_response(error.status, error.field, error.reason)
        if isinstance(error, model.InvalidRequest):
            return error_response(400, error.field, error.reason)
        if isinstance(error, exc.HTTPException):
            return _http_error_response(state.request, error)
        if isinstance(error, webob_request.DisconnectionError):
            # The caller went away mid-body: nothing is wrong here, and
            # the answer will most likely not reach it.
            LOG.warning('%s %s from %s: the client closed the connection '
                        'before sending its whole body',
                        state.request.method, state.request.path,
                        state.request.remote_addr)
            return error_response(400, 'body', 'the connection closed '
                                  'before the whole body arrived')
        if isinstance(error, engine.FirewallError):
            # nft's own words are what an operator needs here.
            LOG.error('%s %s: the kernel refused the ruleset: %s',
                      state.request.method, state.request.path, error)
            return error_response(
                500, 'firewall',
                f'the kernel refused the new ruleset, the previous one '
                f'stays in force ({error})')
        # Anything else is a bug or a failure of the system below (nft):
        # the log gets the details, the caller a pointer to the log.
        LOG.exception('%s %s failed', state.request.method,
                      state.request.path)
        return error_response(500, 'agent',
                              f'internal error ({type(error).__name__}); '
                              'see the amphora agent log')
