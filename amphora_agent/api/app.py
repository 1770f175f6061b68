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


def build_app(firewall, engine, credentials, max_body_size,
              network_namespace='', vf_link_kinds=()):
    """The WSGI app serving the agent API.

    ``firewall`` is the firewall engine (amphora_agent.firewall.engine.
    Firewall); ``engine`` the load-balancing engine
    (amphora_agent.engine.service.Engine); ``credentials`` the server's
    certificate (amphora_agent.tls.TLSCredentials), which
    ``PUT /1.0/certificate`` replaces; ``vf_link_kinds`` the link kinds
    the firewall engine treats as VFs, as it was built with.
    """
    app = pecan.make_app(
        root.RootController(firewall, engine, credentials,
                            network_namespace, vf_link_kinds),
        hooks=[errors.JsonErrorHook()],
        request_cls=request_body.AgentRequest,
        # "/1.0/interface/203.0.113.10/rules": an address is not a file
        # name extension.
        guess_content_type_from_ext=False,
        # Tracebacks go to the log, never to the caller.
        debug=False,
        force_canonical=False)
    return middleware.BodySizeLimit(app, max_body_size)
