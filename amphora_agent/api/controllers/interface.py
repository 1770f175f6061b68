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
"""Upstream Octavia's ``PUT /1.0/interface/<ip>/rules``.

Upstream's controller sends the rules of one VIP interface as a JSON list
of ``{"protocol", "cidr", "port"}`` (VRRP as protocol ``"VRRP"``); serving it
through the same engine lets an unmodified upstream controller drive this
agent. The answers follow upstream's: 400 for an address that is not one,
404 when no interface holds it, 200 ``{"message": "OK"}`` on success.
"""

import functools
import ipaddress

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api import errors
from amphora_agent.api import request_body
from amphora_agent.firewall import model

LOG = logging.getLogger(__name__)


def _apply_rules(firewall, address):
    try:
        ipaddress.ip_address(address)
    except ValueError as error:
        raise errors.ApiError(400, 'ip', str(error)) from error
    rules = request_body.read_json(pecan.request)
    if not isinstance(rules, list):
        raise errors.ApiError(
            400, 'body', 'must be a JSON list of rules, not '
            f'{type(rules).__name__}')
    security_group = model.from_upstream_rules(address, rules)
    try:
        applied = firewall.apply(security_group)
    except model.InvalidRequest as error:
        # The one address of an upstream request is the VIP interface:
        # the engine refusing it means no interface holds it.
        if error.field != 'vip_interfaces[0]':
            raise
        raise errors.ApiError(404, 'ip', error.reason) from error
    LOG.info('Rules for interface %s applied for %s (%s)',
             address, pecan.request.remote_addr,
             pecan.request.environ.get('SSL_CLIENT_S_DN_CN'))
    return {'message': 'OK', 'rules': applied}


class AddressController:
    """``/1.0/interface/<ip>``: only its ``rules`` are served."""

    def __init__(self, firewall, address):
        self.rules = base.Endpoint(put=functools.partial(
            _apply_rules, firewall, address))


class InterfaceController:
    def __init__(self, firewall):
        self._firewall = firewall

    @pecan.expose()
    def _lookup(self, address, *remainder):
        return AddressController(self._firewall, address), remainder
