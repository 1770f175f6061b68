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
"""UDP and SCTP load balancing (the L4 engine) at the agent's load
balancer paths:

- ``PUT /1.0/loadbalancer/<amphora_id>/<lb_id>/l4``: the whole L4 document
  (amphora_agent.l4.model); validated completely first (400 naming the
  field), then put in force atomically (202). 409 while another load
  balancer holds the amphora.
- ``GET /1.0/loadbalancer/<lb_id>/l4``: the document in force and each
  member's state; 404 when none is held for ``lb_id``.

The load balancer's DELETE and status (amphora_agent.api.controllers.
loadbalancer) use ``delete`` and ``merge_status`` from here.
"""

from oslo_log import log as logging
import pecan

from amphora_agent.api import errors as api_errors
from amphora_agent.api import request_body
from amphora_agent.l4 import errors
from amphora_agent.l4 import model

LOG = logging.getLogger(__name__)


def engine_of(engine):
    """The L4 engine, None where the agent runs without one."""
    return getattr(engine, 'l4', None)


def _require(engine):
    l4 = engine_of(engine)
    if l4 is None:
        raise api_errors.ApiError(404, 'path',
                                  'this agent has no L4 engine')
    return l4


def store(engine, amphora_id, loadbalancer_id):
    l4 = _require(engine)
    # Validated before the engine is involved: an invalid document
    # cannot touch the one in force.
    document = model.parse_document(request_body.read_json(pecan.request))
    if document.loadbalancer_id != loadbalancer_id:
        raise model.InvalidRequest(
            'loadbalancer_id', f'{document.loadbalancer_id!r} is not the '
            f'load balancer of the path ({loadbalancer_id!r})')
    try:
        applied = l4.apply(document)
    except errors.Conflict as error:
        raise api_errors.ApiError(409, 'loadbalancer_id',
                                  str(error)) from error
    except errors.L4Error as error:
        LOG.error('PUT %s: the kernel refused the L4 ruleset: %s',
                  pecan.request.path, error)
        raise api_errors.ApiError(
            500, 'l4', 'the kernel refused the new ruleset, the previous '
            f'one stays in force ({error})') from error
    LOG.info('L4 document of load balancer %s (amphora %s) in force for '
             '%s', loadbalancer_id, amphora_id, pecan.request.remote_addr)
    pecan.response.status = 202
    return {'message': 'OK', 'details': applied}


def show(engine, loadbalancer_id):
    current = _require(engine).current(loadbalancer_id)
    if current is None:
        raise api_errors.ApiError(
            404, 'loadbalancer_id',
            f'no L4 document in force for load balancer {loadbalancer_id}')
    return current


def delete(engine, loadbalancer_id):
    """Forget the load balancer's L4 document; True if there was one."""
    l4 = engine_of(engine)
    return bool(l4 is not None and l4.delete(loadbalancer_id))


def status(engine, loadbalancer_id):
    """The L4 engine's haproxy-shaped view, None if it serves none."""
    l4 = engine_of(engine)
    return None if l4 is None else l4.status(loadbalancer_id)


def merge_status(haproxy_view, l4_view):
    """haproxy's view with the L4 frontends and backends added."""
    merged = dict(haproxy_view or {})
    for key in ('frontends', 'backends'):
        merged[key] = dict(merged.get(key) or {},
                           **((l4_view or {}).get(key) or {}))
    return merged
