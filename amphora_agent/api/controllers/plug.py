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
"""Plugging hot-plugged VFs: ``/1.0/plug/...`` and ``/1.0/interfaces``.

Nova hot-plugs a VF down and without addresses; the controller then tells
the agent which Neutron port it is:

- ``POST /1.0/plug/vip/<vip>``: the VRRP base port carrying the VIP(s).
- ``POST /1.0/plug/network``: a member network port.
- ``DELETE /1.0/plug/network/<mac>``: before Nova detaches a port.
- ``GET /1.0/interfaces``: what the data namespace holds, so a flow can
  wait for a VF to appear and an operator can see what the agent did.

Plugging is idempotent and answers 200 with the interface as it now is.
The firewall engine watches the links itself, so a security-group request
naming the new address works as soon as the plug has answered.
"""

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api import errors
from amphora_agent.api import request_body
from amphora_agent.network import interfaces
from amphora_agent.network import model

LOG = logging.getLogger(__name__)


def _run(operation, *args):
    """Run a network operation; its failures in the API's error shape."""
    try:
        return operation(*args)
    except interfaces.InterfaceNotFound as error:
        raise errors.ApiError(
            404, 'mac_address',
            f'no interface with MAC {error.mac_address} in the data '
            'namespace or the agent\'s; has Nova attached the port yet?'
        ) from error
    except interfaces.RefusedToMove as error:
        raise errors.ApiError(409, 'mac_address', str(error)) from error
    except interfaces.NamespaceUnavailable as error:
        raise errors.ApiError(503, 'network_namespace', str(error)) from error
    except interfaces.KernelRefused as error:
        raise errors.ApiError(
            500, 'interface',
            f'{error}; plugging again continues from there, the amphora '
            'agent log has the details') from error


def _parse(parser, *args):
    try:
        return parser(*args)
    except model.InvalidRequest as error:
        raise errors.ApiError(400, error.field, error.reason) from error


def _with_roles(views, firewall):
    """Add the role the firewall gives each interface (None: unfiltered)."""
    roles = firewall.current().get('interfaces') or {}
    for view in views:
        view['firewall_role'] = roles.get(view['name'])
    return views


def _with_role(view, firewall):
    return _with_roles([view], firewall)[0]


class VipController:
    def __init__(self, network, firewall, vip):
        self._network = network
        self._firewall = firewall
        self._vip = vip

    index = base.generic_index()

    @index.when(method='POST', template='json')
    def index_post(self):
        plan = _parse(model.parse_plug_vip, self._vip,
                      request_body.read_json(pecan.request))
        view = _run(self._network.plug, plan)
        LOG.info('VIP %s plugged on %s for %s', self._vip, view['name'],
                 pecan.request.remote_addr)
        return {'message': 'OK', 'interface': _with_role(view,
                                                         self._firewall)}


class VipsController:
    def __init__(self, network, firewall):
        self._network = network
        self._firewall = firewall

    @pecan.expose()
    def _lookup(self, vip, *remainder):
        if remainder:
            pecan.abort(404)
        return VipController(self._network, self._firewall, vip), remainder


class NetworkPortController:
    def __init__(self, network, firewall, mac_address):
        self._network = network
        self._firewall = firewall
        self._mac_address = mac_address

    index = base.generic_index()

    @index.when(method='DELETE', template='json')
    def index_delete(self):
        mac_address = _parse(model.parse_mac, self._mac_address)
        view = _run(self._network.unplug, mac_address)
        LOG.info('Port %s unplugged from %s for %s', mac_address,
                 view['name'], pecan.request.remote_addr)
        return {'message': 'OK', 'interface': _with_role(view,
                                                         self._firewall)}


class NetworkController:
    def __init__(self, network, firewall):
        self._network = network
        self._firewall = firewall

    index = base.generic_index()

    @index.when(method='POST', template='json')
    def index_post(self):
        plan = _parse(model.parse_plug_network,
                      request_body.read_json(pecan.request))
        view = _run(self._network.plug, plan)
        LOG.info('Network port %s plugged on %s for %s', plan.mac_address,
                 view['name'], pecan.request.remote_addr)
        return {'message': 'OK', 'interface': _with_role(view,
                                                         self._firewall)}

    @pecan.expose()
    def _lookup(self, mac_address, *remainder):
        if remainder:
            pecan.abort(404)
        return (NetworkPortController(self._network, self._firewall,
                                      mac_address), remainder)


class PlugController:
    """``/1.0/plug``: only its ``vip`` and ``network`` are served."""

    def __init__(self, network, firewall):
        self.vip = VipsController(network, firewall)
        self.network = NetworkController(network, firewall)


class InterfacesController:
    def __init__(self, network, firewall):
        self._network = network
        self._firewall = firewall

    index = base.generic_index()

    @index.when(method='GET', template='json')
    def index_get(self):
        return {'interfaces': _with_roles(_run(self._network.interfaces),
                                          self._firewall)}
