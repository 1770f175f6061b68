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
"""haproxy per load balancer, at upstream Octavia's agent paths.

- ``PUT /1.0/loadbalancer/<amphora_id>/<lb_id>/haproxy``: the body is the
  haproxy configuration; checked with ``haproxy -c`` and stored (202), or
  refused with haproxy's words in ``details`` (400), keeping the stored
  one. Storing does not start or reload anything.
- ``PUT /1.0/loadbalancer/<lb_id>/<start|stop|reload>`` (202): start and
  reload both make the stored configuration serve (a running haproxy is
  reloaded without dropping connections, a stopped one is started).
- ``DELETE /1.0/loadbalancer/<lb_id>`` (200): stop and forget; idempotent.
- ``GET /1.0/loadbalancer/<lb_id>/status``: haproxy's own view of its
  frontends, backends and servers, with the UDP and SCTP listeners of the
  L4 engine added in the same shape; 404 when neither serves it.
- ``PUT /1.0/loadbalancer/<amphora_id>/<lb_id>/l4``, ``GET
  /1.0/loadbalancer/<lb_id>/l4``: UDP and SCTP load balancing
  (amphora_agent.api.controllers.l4); deleting the load balancer removes
  it too.
- ``/1.0/loadbalancer/[<amphora_id>/]<lb_id>/certificates/<filename>``:
  the load balancer's TLS files (amphora_agent.api.controllers.
  certificate_files); deleting the load balancer removes them too.
"""

import functools

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api.controllers import certificate_files
from amphora_agent.api.controllers import engine_answers
from amphora_agent.api.controllers import l4
from amphora_agent.engine import errors
from amphora_agent.engine import haproxy

LOG = logging.getLogger(__name__)


@base.engine_errors('haproxy')
def _store(engine, amphora_id, loadbalancer_id):
    # The body is the file, whatever content type the client labelled it.
    text = engine_answers.read_text(pecan.request)
    output = engine.haproxy.store(loadbalancer_id, text)
    LOG.info('haproxy configuration of load balancer %s (amphora %s) '
             'stored for %s', loadbalancer_id, amphora_id,
             pecan.request.remote_addr)
    return engine_answers.ok(output or 'Configuration file is valid')


@base.engine_errors('haproxy')
def _act(engine, loadbalancer_id, action):
    if action not in haproxy.ACTIONS:
        engine_answers.bad_action(action, haproxy.ACTIONS)
    return engine_answers.ok(engine.haproxy.act(loadbalancer_id, action))


@base.engine_errors('haproxy')
def _status(engine, loadbalancer_id):
    l4_view = l4.status(engine, loadbalancer_id)
    try:
        haproxy_view = engine.haproxy.status(loadbalancer_id)
    except (errors.UnknownLoadBalancer, errors.NotRunning):
        # A load balancer of UDP listeners only has no haproxy.
        if l4_view is None:
            raise
        haproxy_view = {}
    if l4_view is None:
        return haproxy_view
    return l4.merge_status(haproxy_view, l4_view)


@base.engine_errors('haproxy')
def _delete(engine, loadbalancer_id):
    # First: the flows it balances must not outlive the load balancer
    # even if stopping haproxy fails.
    l4_removed = l4.delete(engine, loadbalancer_id)
    details = engine.haproxy.delete(loadbalancer_id)
    if l4_removed:
        details += '; L4 listeners removed'
    # After haproxy stopped: it never runs without the files it names.
    if engine.certificates.delete_all(loadbalancer_id):
        details += '; TLS files removed'
    return engine_answers.ok(details, status=200)


class LoadBalancerController:
    """``/1.0/loadbalancer``: the paths are told apart by their length."""

    def __init__(self, engine):
        self._engine = engine

    @pecan.expose()
    def _lookup(self, first, *remainder):
        bind = functools.partial
        if not remainder:
            endpoint = base.Endpoint(delete=bind(_delete, self._engine,
                                                 first))
        elif len(remainder) == 1 and remainder[0] == 'status':
            endpoint = base.Endpoint(get=bind(_status, self._engine, first))
        elif len(remainder) == 1 and remainder[0] == 'l4':
            endpoint = base.Endpoint(get=bind(l4.show, self._engine, first))
        elif len(remainder) == 1:
            endpoint = base.Endpoint(put=bind(_act, self._engine, first,
                                              remainder[0]))
        elif len(remainder) == 2 and remainder[1] == 'l4':
            endpoint = base.Endpoint(put=bind(l4.store, self._engine, first,
                                              remainder[0]))
        elif len(remainder) == 2 and remainder[1] == 'haproxy':
            endpoint = base.Endpoint(put=bind(_store, self._engine, first,
                                              remainder[0]))
        elif len(remainder) == 2 and remainder[0] == 'certificates':
            # Upstream's path: <lb_id>/certificates/<filename>.
            endpoint = certificate_files.endpoint(self._engine, None, first,
                                                  remainder[1])
        elif len(remainder) == 3 and remainder[1] == 'certificates':
            endpoint = certificate_files.endpoint(
                self._engine, first, remainder[0], remainder[2])
        else:
            pecan.abort(404)
        return endpoint, ()
