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
"""The URL tree of the agent API."""

import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api.controllers import certificate
from amphora_agent.api.controllers import info
from amphora_agent.api.controllers import interface
from amphora_agent.api.controllers import loadbalancer
from amphora_agent.api.controllers import plug
from amphora_agent.api.controllers import security_group
from amphora_agent.api.controllers import vrrp
from amphora_agent.network import interfaces


class V1Controller:
    """Everything under ``/1.0``.

    ``firewall`` (amphora_agent.firewall.engine.Firewall) serves the
    security group and the interface rules; ``engine``
    (amphora_agent.engine.service.Engine) haproxy and keepalived;
    ``credentials`` (amphora_agent.tls.TLSCredentials) the replacement of
    the server certificate. ``vf_link_kinds``: the link kinds the firewall
    engine treats as VFs, so that the plug endpoints recognise VFs as it
    does.
    """

    def __init__(self, firewall, engine, credentials, network_namespace,
                 vf_link_kinds):
        self.info = info.info_endpoint(network_namespace, engine, firewall)
        self.certificate = certificate.certificate_endpoint(credentials)
        self.loadbalancer = loadbalancer.LoadBalancerController(engine)
        self.vrrp = vrrp.VrrpController(engine)
        self.interface = interface.InterfaceController(firewall)
        pecan.route(self, 'security-group',
                    security_group.security_group_endpoint(firewall))
        # A VF is brought up only once the firewall filters it.
        network = interfaces.DataNamespace(
            network_namespace, vf_link_kinds,
            before_link_up=firewall.refresh)
        self.plug = plug.PlugController(network, firewall)
        self.interfaces = plug.interfaces_endpoint(network, firewall)


class RootController(base.Endpoint):
    def __init__(self, firewall, engine, credentials, network_namespace,
                 vf_link_kinds):
        # Upstream's version discovery: its controller asks "/" first.
        super().__init__(get=lambda: {'api_version': info.API_VERSION})
        pecan.route(self, info.API_VERSION,
                    V1Controller(firewall, engine, credentials,
                                 network_namespace, vf_link_kinds))
