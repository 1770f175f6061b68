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
"""The agent's own security-group endpoint: the whole desired state.

``POST /1.0/security-group`` replaces the rules in force with the ones the
body describes, ``GET`` shows them, ``GET .../counters`` shows what they
matched (an SR-IOV VF bypasses the host, so these counters are the only
place an operator sees the firewall at work).
"""

import functools

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api import request_body
from amphora_agent.firewall import model

LOG = logging.getLogger(__name__)


def security_group_endpoint(firewall):
    endpoint = base.Endpoint(get=firewall.current,
                             post=functools.partial(_apply, firewall))
    endpoint.counters = base.Endpoint(get=firewall.counters)
    return endpoint


def _apply(firewall):
    # Parsing completes before the engine is involved: a request that
    # fails here cannot touch the rules in force.
    security_group = model.parse_security_group(
        request_body.read_json(pecan.request))
    applied = firewall.apply(security_group)
    LOG.info('Security group generation %s applied for %s (%s)',
             applied.get('generation'), pecan.request.remote_addr,
             pecan.request.environ.get('SSL_CLIENT_S_DN_CN'))
    return applied
