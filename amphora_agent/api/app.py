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
"""The agent's WSGI application."""

import pecan

from amphora_agent.api.controllers import root
from amphora_agent.api import errors
from amphora_agent.api import middleware
from amphora_agent.api import request_body


def build_app(firewall, max_body_size, network_namespace='', engine=None,
              credentials=None):
    """The WSGI app serving the agent API over ``firewall``.

    ``firewall`` is the engine (amphora_agent.firewall.engine.Firewall or
    anything with its apply/current/counters methods); ``engine`` the
    load-balancing engine (amphora_agent.engine.service.Engine), whose
    endpoints are served only when it is given; ``credentials`` the
    server's certificate (amphora_agent.tls.TLSCredentials), which
    ``PUT /1.0/certificate`` replaces only when it is given.
    """
    app = pecan.make_app(
        root.RootController(firewall, network_namespace, engine,
                            credentials),
        hooks=[errors.JsonErrorHook()],
        request_cls=request_body.AgentRequest,
        # "/1.0/interface/203.0.113.10/rules": an address is not a file
        # name extension.
        guess_content_type_from_ext=False,
        # Tracebacks go to the log, never to the caller.
        debug=False,
        force_canonical=False)
    return middleware.BodySizeLimit(app, max_body_size)
