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

import functools

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


def _plugged(view, firewall):
    return {'message': 'OK', 'interface': _with_roles([view], firewall)[0]}


def _plug_vip(network, firewall, vip):
    plan = _parse(model.parse_plug_vip, vip,
                  request_body.read_json(pecan.request))
    view = _run(network.plug, plan)
    LOG.info('VIP %s plugged on %s for %s', vip, view['name'],
             pecan.request.remote_addr)
    return _plugged(view, firewall)


def _plug_network(network, firewall):
    plan = _parse(model.parse_plug_network,
                  request_body.read_json(pecan.request))
    view = _run(network.plug, plan)
    LOG.info('Network port %s plugged on %s for %s', plan.mac_address,
             view['name'], pecan.request.remote_addr)
    return _plugged(view, firewall)


def _unplug(network, firewall, mac_address):
    mac_address = _parse(model.parse_mac, mac_address)
    view = _run(network.unplug, mac_address)
    LOG.info('Port %s unplugged from %s for %s', mac_address,
             view['name'], pecan.request.remote_addr)
    return _plugged(view, firewall)


def _interfaces(network, firewall):
    return {'interfaces': _with_roles(_run(network.interfaces), firewall)}


class VipsController:
    def __init__(self, network, firewall):
        self._network = network
        self._firewall = firewall

    @pecan.expose()
    def _lookup(self, vip, *remainder):
        if remainder:
            pecan.abort(404)
        return base.Endpoint(post=functools.partial(
            _plug_vip, self._network, self._firewall, vip)), remainder


class NetworkController(base.Endpoint):
    def __init__(self, network, firewall):
        super().__init__(post=functools.partial(_plug_network, network,
                                                firewall))
        self._network = network
        self._firewall = firewall

    @pecan.expose()
    def _lookup(self, mac_address, *remainder):
        if remainder:
            pecan.abort(404)
        return base.Endpoint(delete=functools.partial(
            _unplug, self._network, self._firewall, mac_address)), remainder


class PlugController:
    """``/1.0/plug``: only its ``vip`` and ``network`` are served."""

    def __init__(self, network, firewall):
        self.vip = VipsController(network, firewall)
        self.network = NetworkController(network, firewall)


def interfaces_endpoint(network, firewall):
    return base.Endpoint(get=functools.partial(_interfaces, network,
                                               firewall))
