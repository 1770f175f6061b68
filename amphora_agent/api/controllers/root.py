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

    ``engine`` (amphora_agent.engine.service.Engine) adds haproxy and
    keepalived; without it the agent serves the firewall only.
    ``credentials`` (amphora_agent.tls.TLSCredentials) adds the
    replacement of the server certificate.
    """

    def __init__(self, firewall, network_namespace, engine=None,
                 credentials=None):
        self.info = info.InfoController(network_namespace, engine)
        if credentials is not None:
            self.certificate = certificate.CertificateController(
                credentials)
        if engine is not None:
            self.loadbalancer = loadbalancer.LoadBalancerController(engine)
            self.vrrp = vrrp.VrrpController(engine)
        self.interface = interface.InterfaceController(firewall)
        pecan.route(self, 'security-group',
                    security_group.SecurityGroupController(firewall))
        # VFs are recognised as the firewall engine recognises them; a
        # stand-in engine without link kinds has real VFs only.
        network = interfaces.DataNamespace(
            network_namespace, getattr(firewall, 'vf_link_kinds', ()),
            before_link_up=getattr(firewall, 'refresh', None))
        self.plug = plug.PlugController(network, firewall)
        self.interfaces = plug.InterfacesController(network, firewall)


class RootController:
    def __init__(self, firewall, network_namespace, engine=None,
                 credentials=None):
        pecan.route(self, info.API_VERSION,
                    V1Controller(firewall, network_namespace, engine,
                                 credentials))

    index = base.generic_index()

    @index.when(method='GET', template='json')
    def index_get(self):
        # Upstream's version discovery: its controller asks "/" first.
        return {'api_version': info.API_VERSION}
