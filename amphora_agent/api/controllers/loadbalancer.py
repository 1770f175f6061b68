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
  frontends, backends and servers; 404 when no haproxy runs for it.
"""

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api.controllers import engine_answers
from amphora_agent.engine import haproxy

LOG = logging.getLogger(__name__)


class HaproxyConfigController:
    def __init__(self, engine, amphora_id, loadbalancer_id):
        self._engine = engine
        self._amphora_id = amphora_id
        self._loadbalancer_id = loadbalancer_id

    index = base.generic_index()

    @index.when(method='PUT', template='json')
    @base.engine_errors('haproxy')
    def index_put(self, *args, **kwargs):
        # Whatever pecan made of the body (form fields, for a client that
        # labels the file as a form) is ignored: the body is the file.
        text = engine_answers.read_text(pecan.request)
        output = self._engine.haproxy.store(self._loadbalancer_id, text)
        LOG.info('haproxy configuration of load balancer %s (amphora %s) '
                 'stored for %s', self._loadbalancer_id, self._amphora_id,
                 pecan.request.remote_addr)
        return engine_answers.ok(output or 'Configuration file is valid')


class ActionController:
    def __init__(self, engine, loadbalancer_id, action):
        self._engine = engine
        self._loadbalancer_id = loadbalancer_id
        self._action = action

    index = base.generic_index()

    @index.when(method='PUT', template='json')
    @base.engine_errors('haproxy')
    def index_put(self, *args, **kwargs):
        if self._action not in haproxy.ACTIONS:
            engine_answers.bad_action(self._action, haproxy.ACTIONS)
        details = self._engine.haproxy.act(self._loadbalancer_id,
                                           self._action)
        return engine_answers.ok(details)


class StatusController:
    def __init__(self, engine, loadbalancer_id):
        self._engine = engine
        self._loadbalancer_id = loadbalancer_id

    index = base.generic_index()

    @index.when(method='GET', template='json')
    @base.engine_errors('haproxy')
    def index_get(self):
        return self._engine.haproxy.status(self._loadbalancer_id)


class LoadBalancerResource:
    def __init__(self, engine, loadbalancer_id):
        self._engine = engine
        self._loadbalancer_id = loadbalancer_id

    index = base.generic_index()

    @index.when(method='DELETE', template='json')
    @base.engine_errors('haproxy')
    def index_delete(self):
        details = self._engine.haproxy.delete(self._loadbalancer_id)
        return engine_answers.ok(details, status=200)


class LoadBalancerController:
    """``/1.0/loadbalancer``: the paths are told apart by their length."""

    def __init__(self, engine):
        self._engine = engine

    @pecan.expose()
    def _lookup(self, first, *remainder):
        if not remainder:
            return LoadBalancerResource(self._engine, first), ()
        if len(remainder) == 1 and remainder[0] == 'status':
            return StatusController(self._engine, first), ()
        if len(remainder) == 1:
            return ActionController(self._engine, first, remainder[0]), ()
        if len(remainder) == 2 and remainder[1] == 'haproxy':
            return (HaproxyConfigController(self._engine, first,
                                            remainder[0]), ())
        pecan.abort(404)
