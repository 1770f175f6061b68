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
"""keepalived, at upstream Octavia's agent paths.

- ``PUT /1.0/vrrp/upload``: the body is the keepalived configuration;
  checked with ``keepalived -t`` in the data namespace and stored (202),
  or refused with keepalived's words in ``details`` (400).
- ``PUT /1.0/vrrp/<start|stop|reload>`` (202): start and reload make the
  stored configuration run (409 before any was uploaded), stop ends
  keepalived, which releases the VIPs it held.
"""

import functools

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api.controllers import engine_answers
from amphora_agent.engine import keepalived

LOG = logging.getLogger(__name__)


@base.engine_errors('keepalived')
def _upload(engine):
    text = engine_answers.read_text(pecan.request)
    output = engine.keepalived.store(text)
    LOG.info('keepalived configuration stored for %s',
             pecan.request.remote_addr)
    return engine_answers.ok(output or 'Configuration file is valid')


@base.engine_errors('keepalived')
def _act(engine, action):
    if action not in keepalived.ACTIONS:
        engine_answers.bad_action(action, keepalived.ACTIONS)
    return engine_answers.ok(engine.keepalived.act(action))


class VrrpController:
    def __init__(self, engine):
        self._engine = engine

    @pecan.expose()
    def _lookup(self, name, *remainder):
        if remainder:
            pecan.abort(404)
        if name == 'upload':
            return base.Endpoint(put=functools.partial(_upload,
                                                       self._engine)), ()
        return base.Endpoint(put=functools.partial(_act, self._engine,
                                                   name)), ()
