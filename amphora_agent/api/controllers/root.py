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
        self.info = info.InfoController(network_namespace, engine)
        self.certificate = certificate.CertificateController(credentials)
        self.loadbalancer = loadbalancer.LoadBalancerController(engine)
        self.vrrp = vrrp.VrrpController(engine)
        self.interface = interface.InterfaceController(firewall)
        pecan.route(self, 'security-group',
                    security_group.SecurityGroupController(firewall))
        # A VF is brought up only once the firewall filters it.
        network = interfaces.DataNamespace(
            network_namespace, vf_link_kinds,
            before_link_up=firewall.refresh)
        self.plug = plug.PlugController(network, firewall)
        self.interfaces = plug.InterfacesController(network, firewall)


class RootController:
    def __init__(self, firewall, engine, credentials, network_namespace,
                 vf_link_kinds):
        pecan.route(self, info.API_VERSION,
                    V1Controller(firewall, engine, credentials,
                                 network_namespace, vf_link_kinds))

    index = base.generic_index()

    @index.when(method='GET', template='json')
    def index_get(self):
        # Upstream's version discovery: its controller asks "/" first.
        return {'api_version': info.API_VERSION}
