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
"""What a plug request asks for: validated, then turned into a port plan.

A plug request describes a Neutron port (its MAC, fixed IPs, subnets,
gateways, host routes, MTU); the plan is the kernel state that port needs
on its interface, independent of what is there now. The interfaces module
then makes the kernel match the plan, which is what makes plugging
idempotent: the same request twice is the same plan, and a changed request
moves the interface to the new plan instead of adding to the old one.

Routing follows the source address: every address the agent puts on an
interface (the VRRP address, the VIPs, a member network's fixed IPs) gets a
policy rule sending packets *from* it to the interface's own routing table,
which holds the interface's subnets, its gateway and its host routes. A
reply from the VIP therefore leaves through the VIP's VF towards the VIP
subnet's gateway, whatever the main table says. The main table only gets
what the amphora needs to originate traffic: the VIP interface's default
route and the host routes of every plugged subnet; a member network's
gateway stays in that network's own table, so it never competes with the
VIP's default route.

Validation is complete before the kernel is touched; every error names the
offending field as a JSON path (``host_routes[1].nexthop``).
"""

import dataclasses
import ipaddress

import jsonschema

from amphora_agent import validation

# Routing tables of plugged interfaces are TABLE_BASE + the ifindex: unique
# within the namespace, stable while the interface exists, and clear of the
# kernel's reserved tables (253-255) and of small numbers people pick.
TABLE_BASE = 1000
# The priority of the agent's source rules: before "main" (32766).
RULE_PRIORITY = 100
MIN_IPV6_MTU = 1280
# Route.table: the main table, or the plugged interface's own table.
MAIN = 'main'
OWN = 'own'

_MAC = {'type': 'string',
        'pattern': '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$'}
_TEXT = {'type': 'string'}
_OPTIONAL_TEXT = {'type': ['string', 'null']}
_MTU = {'type': ['integer', 'null'], 'minimum': 68, 'maximum': 65535}
_HOST_ROUTES = {
    'type': ['array', 'null'],
    'items': {
        'type': 'object',
        'additionalProperties': False,
        'required': ['destination', 'nexthop'],
        'properties': {'destination': _TEXT, 'nexthop': _TEXT},
    },
}

PLUG_VIP_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'Plug the VIP port (VRRP base port) of an amphora',
    'type': 'object',
    'additionalProperties': False,
    'required': ['mac_address', 'vrrp_ip', 'subnet_cidr'],
    'properties': {
        'mac_address': _MAC,
        'vrrp_ip': _TEXT,
        'subnet_cidr': _TEXT,
        'gateway': _OPTIONAL_TEXT,
        'host_routes': _HOST_ROUTES,
        'mtu': _MTU,
        'additional_vips': {
            'type': ['array', 'null'],
            'items': {
                'type': 'object',
                'additionalProperties': False,
                'required': ['ip_address', 'subnet_cidr'],
                'properties': {'ip_address': _TEXT, 'subnet_cidr': _TEXT,
                               'gateway': _OPTIONAL_TEXT},
            },
        },
        'vip_on_interface': {'type': 'boolean'},
    },
}

PLUG_NETWORK_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'Plug a member network port of an amphora',
    'type': 'object',
    'additionalProperties': False,
    'required': ['mac_address', 'fixed_ips'],
    'properties': {
        'mac_address': _MAC,
        'fixed_ips': {
            'type': 'array',
            'items': {
                'type': 'object',
                'additionalProperties': False,
                'required': ['ip_address', 'subnet_cidr'],
                'properties': {'ip_address': _TEXT, 'subnet_cidr': _TEXT,
                               'gateway': _OPTIONAL_TEXT,
                               'host_routes': _HOST_ROUTES},
            },
        },
        'mtu': _MTU,
    },
}


def _not_a_mac(value):
    return f'{value!r} is not a MAC address'


_VIP_SCHEMA = validation.Schema(PLUG_VIP_SCHEMA, pattern_reason=_not_a_mac)
_NETWORK_SCHEMA = validation.Schema(PLUG_NETWORK_SCHEMA,
                                    pattern_reason=_not_a_mac)

InvalidRequest = validation.InvalidRequest


@dataclasses.dataclass(frozen=True)
class Route:
    """A route through the plugged interface.

    ``table`` is MAIN or OWN (the interface's own table, known only once
    the interface is found); a route without gateway is on-link.
    """

    destination: object  # ipaddress network
    gateway: object = None  # ipaddress address
    table: str = OWN


@dataclasses.dataclass(frozen=True)
class PortPlan:
    """The kernel state one plugged port needs on its interface."""

    mac_address: str  # lower case
    mtu: int = None  # None: leave the interface's MTU alone
    addresses: tuple = ()  # ipaddress interfaces the agent owns
    # VIPs keepalived owns (ACTIVE_STANDBY): never added, never removed.
    foreign_addresses: tuple = ()
    routes: tuple = ()  # Route
    rule_sources: tuple = ()  # addresses routed by the interface's table


def _address(text, field):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidRequest(
            field, f'{text!r} is not a valid IP address') from None


def _network(text, field):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidRequest(
            field, f'{text!r} is not a valid IP network') from None


def _gateway(text, subnet, field):
    if text is None:
        return None
    gateway = _address(text, field)
    if gateway.version != subnet.version:
        raise InvalidRequest(field, f'{text} is not an IPv{subnet.version} '
                                    f'address like its subnet {subnet}')
    return gateway


def _address_in(text, subnet, field, subnet_field):
    address = _address(text, field)
    if address not in subnet:
        raise InvalidRequest(field, f'{text} is not in {subnet_field} '
                                    f'{subnet}')
    return address


def _host_routes(routes, field):
    parsed = []
    for index, route in enumerate(routes or ()):
        item = f'{field}[{index}]'
        destination = _network(route['destination'], f'{item}.destination')
        nexthop = _address(route['nexthop'], f'{item}.nexthop')
        if nexthop.version != destination.version:
            raise InvalidRequest(
                f'{item}.nexthop', f'{nexthop} and the destination '
                f'{destination} are of different IP versions')
        parsed.append((destination, nexthop))
    return parsed


def _check_mtu(mtu, addresses):
    if mtu is not None and mtu < MIN_IPV6_MTU and any(
            address.version == 6 for address in addresses):
        raise InvalidRequest(field='mtu',
                             reason=f'{mtu} is below {MIN_IPV6_MTU}, the '
                                    'least IPv6 needs')


def _default(gateway):
    return ipaddress.ip_network('::/0' if gateway.version == 6
                                else '0.0.0.0/0')


def _unique(items):
    return tuple(dict.fromkeys(items))


def _routes(entries):
    """Routes from ``(destination, gateway, tables)``; later ones win.

    A host route to the same destination as a default route replaces it
    in the same table, as Neutron's own routers do.
    """
    by_key = {}
    for destination, gateway, tables in entries:
        for table in tables:
            by_key[(table, destination)] = Route(destination, gateway, table)
    return tuple(by_key.values())


def parse_plug_vip(vip_text, body):
    """Validate ``POST /1.0/plug/vip/<vip>`` and return its PortPlan."""
    _VIP_SCHEMA.check(body)
    subnet = _network(body['subnet_cidr'], 'subnet_cidr')
    vip = _address_in(vip_text, subnet, 'vip', 'subnet_cidr')
    vrrp_ip = _address_in(body['vrrp_ip'], subnet, 'vrrp_ip', 'subnet_cidr')
    if vrrp_ip == vip:
        raise InvalidRequest(field='vrrp_ip',
                             reason=f'{vrrp_ip} is the VIP itself; the VRRP '
                                    'port has an address of its own')
    vips = [(vip, subnet, _gateway(body.get('gateway'), subnet, 'gateway'))]
    for index, extra in enumerate(body.get('additional_vips') or ()):
        field = f'additional_vips[{index}]'
        extra_subnet = _network(extra['subnet_cidr'], f'{field}.subnet_cidr')
        address = _address_in(extra['ip_address'], extra_subnet,
                              f'{field}.ip_address', f'{field}.subnet_cidr')
        vips.append((address, extra_subnet,
                     _gateway(extra.get('gateway'), extra_subnet,
                              f'{field}.gateway')))
    host_routes = _host_routes(body.get('host_routes'), 'host_routes')
    vip_list = [address for address, _, _ in vips]
    vip_addresses = [
        ipaddress.ip_interface(f'{address}/{address.max_prefixlen}')
        for address in vip_list]
    _check_mtu(body.get('mtu'), [vrrp_ip] + vip_list)

    entries = []
    # The VRRP address puts the primary subnet into the main table; other
    # VIP subnets need an on-link route there.
    for _, vip_subnet, _ in vips:
        tables = (OWN,) if vip_subnet == subnet else (MAIN, OWN)
        entries.append((vip_subnet, None, tables))
    # One default route per IP version: the first VIP of that version with
    # a gateway (the primary VIP first) gives it.
    defaults = {}
    for _, _, gateway in vips:
        if gateway is not None:
            defaults.setdefault(gateway.version, gateway)
    for gateway in defaults.values():
        entries.append((_default(gateway), gateway, (MAIN, OWN)))
    for destination, nexthop in host_routes:
        entries.append((destination, nexthop, (MAIN, OWN)))

    on_interface = body.get('vip_on_interface', True)
    return PortPlan(
        mac_address=body['mac_address'].lower(),
        mtu=body.get('mtu'),
        addresses=_unique(
            [ipaddress.ip_interface(f'{vrrp_ip}/{subnet.prefixlen}')] +
            (vip_addresses if on_interface else [])),
        foreign_addresses=() if on_interface else _unique(vip_addresses),
        routes=_routes(entries),
        rule_sources=_unique([vrrp_ip] + vip_list))


def parse_plug_network(body):
    """Validate ``POST /1.0/plug/network`` and return its PortPlan."""
    _NETWORK_SCHEMA.check(body)
    addresses = []
    entries = []
    defaults = {}
    for index, fixed_ip in enumerate(body['fixed_ips']):
        field = f'fixed_ips[{index}]'
        subnet = _network(fixed_ip['subnet_cidr'], f'{field}.subnet_cidr')
        address = _address_in(fixed_ip['ip_address'], subnet,
                              f'{field}.ip_address', f'{field}.subnet_cidr')
        gateway = _gateway(fixed_ip.get('gateway'), subnet,
                           f'{field}.gateway')
        addresses.append((address, subnet))
        entries.append((subnet, None, (OWN,)))
        if gateway is not None:
            defaults.setdefault(gateway.version, gateway)
        for destination, nexthop in _host_routes(fixed_ip.get('host_routes'),
                                                 f'{field}.host_routes'):
            entries.append((destination, nexthop, (MAIN, OWN)))
    # A member network's gateway serves replies from its own addresses only.
    entries[:0] = [(_default(gateway), gateway, (OWN,))
                   for gateway in defaults.values()]
    _check_mtu(body.get('mtu'), [address for address, _ in addresses])
    return PortPlan(
        mac_address=body['mac_address'].lower(),
        mtu=body.get('mtu'),
        addresses=_unique(
            ipaddress.ip_interface(f'{address}/{subnet.prefixlen}')
            for address, subnet in addresses),
        routes=_routes(entries),
        rule_sources=_unique(address for address, _ in addresses))


def parse_mac(text):
    """A MAC address from a URL, lower case, or InvalidRequest."""
    if not isinstance(text, str) or not jsonschema.Draft7Validator(
            _MAC).is_valid(text):
        raise InvalidRequest(field='mac_address', reason=_not_a_mac(text))
    return text.lower()
