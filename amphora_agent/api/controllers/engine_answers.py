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
"""How the engine endpoints read configurations and word their answers.

Errors keep the agent's error shape (``faultstring``, ``message``,
``field``, ``reason``, ``code``) and add ``details``: the program's own
output (haproxy's or keepalived's), which is what tells an operator which
line of a configuration is wrong.
"""

from oslo_log import log as logging
import pecan

from amphora_agent.api import errors as api_errors
from amphora_agent.engine import errors

LOG = logging.getLogger(__name__)


def read_text(request):
    """The request body as text: a configuration file, any content type."""
    body = request.body
    if not body.strip():
        raise api_errors.ApiError(400, 'body',
                                  'a configuration file is required')
    try:
        return body.decode('utf-8')
    except UnicodeDecodeError as error:
        raise api_errors.ApiError(
            400, 'body', f'not UTF-8 text ({error.reason} at byte '
            f'{error.start})') from error


def ok(details, status=202):
    pecan.response.status = status
    return {'message': 'OK', 'details': details}


def failure(error, program):
    """The error answer for an engine error raised while serving."""
    if isinstance(error, errors.InvalidName):
        status, field = 400, 'loadbalancer_id'
    elif isinstance(error, errors.ConfigRejected):
        status, field = 400, 'config'
    elif isinstance(error, (errors.UnknownLoadBalancer, errors.NotRunning)):
        status, field = 404, 'loadbalancer_id'
    elif isinstance(error, errors.UnknownFile):
        status, field = 404, 'filename'
    elif isinstance(error, errors.NoConfiguration):
        status, field = 409, 'config'
    else:
        status, field = 500, program
        LOG.error('%s %s failed: %s %s', pecan.request.method,
                  pecan.request.path, error.message, error.output)
    pecan.response.status = status
    body = api_errors.error_body(status, field, error.message)
    body['details'] = error.output
    return body


def bad_action(action, actions):
    raise api_errors.ApiError(
        400, 'action', f'{action!r} is not one of {", ".join(actions)}')
