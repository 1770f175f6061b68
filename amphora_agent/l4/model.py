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
"""The L4 document (UDP and SCTP listeners): parsed, validated, normalised.

The controller sends the whole desired state of the amphora's UDP and SCTP
load balancing in one document (``PUT .../<lb_id>/l4``). Everything is
checked here, before the engine touches the kernel, so an invalid document
changes nothing; an error names the field as a JSON path
(``listeners[1].pool.members[0].weight``) and is the firewall's error type,
which the API already answers with 400 in the agent's error shape.
"""

import dataclasses
import ipaddress

from amphora_agent.l4 import probes
from amphora_agent import validation

InvalidRequest = validation.InvalidRequest

PROTOCOLS = ('UDP', 'SCTP')
ALGORITHMS = ('ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP')
MONITOR_TYPES = ('UDP-CONNECT', 'SCTP', 'TCP', 'HTTP', 'PING')
HTTP_METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'OPTIONS',
                'PATCH', 'CONNECT')
DEFAULT_FLOW_LIMIT = 65536
# Ids become parts of nftables object names and of log lines.
_ID = {'type': 'string', 'pattern': '^[A-Za-z0-9_-]{1,64}$'}
_PORT = {'type': 'integer', 'minimum': 1, 'maximum': 65535}
_NULLABLE_PORT = {'type': ['integer', 'null'], 'minimum': 1,
                  'maximum': 65535}
_SECONDS = {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 86400}
_COUNT = {'type': 'integer', 'minimum': 1, 'maximum': 10}

MEMBER_SCHEMA = {
    'type': 'object', 'additionalProperties': False,
    'required': ['id', 'address', 'port'],
    'properties': {
        'id': _ID, 'address': {'type': 'string'}, 'port': _PORT,
        'weight': {'type': 'integer', 'minimum': 0, 'maximum': 256},
        'backup': {'type': 'boolean'}, 'enabled': {'type': 'boolean'},
        'monitor_address': {'type': ['string', 'null']},
        'monitor_port': _NULLABLE_PORT,
    },
}

MONITOR_SCHEMA = {
    'type': ['object', 'null'], 'additionalProperties': False,
    'required': ['type', 'delay', 'timeout', 'rise', 'fall'],
    'properties': {
        'type': {'enum': list(MONITOR_TYPES)},
        'delay': _SECONDS, 'timeout': _SECONDS, 'rise': _COUNT,
        'fall': _COUNT,
        'http_method': {'enum': list(HTTP_METHODS)},
        'url_path': {'type': 'string', 'pattern': '^/[\x21-\x7e]*$',
                     'maxLength': 2048},
        'expected_codes': {
            'type': 'string',
            'pattern': r'^[1-5][0-9]{2}((-|,)[1-5][0-9]{2})*$'},
        'domain_name': {'type': ['string', 'null'],
                        'pattern': r'^[A-Za-z0-9.-]{1,255}$'},
        'http_version': {'enum': [1.0, 1.1]},
    },
}

POOL_SCHEMA = {
    'type': ['object', 'null'], 'additionalProperties': False,
    'required': ['id', 'algorithm', 'members'],
    'properties': {
        'id': _ID,
        'algorithm': {'enum': list(ALGORITHMS)},
        'persistence': {
            'type': ['object', 'null'], 'additionalProperties': False,
            'required': ['type'],
            'properties': {'type': {'enum': ['SOURCE_IP']},
                           'granularity': {'type': ['string', 'null']}},
        },
        'members': {'type': 'array', 'items': MEMBER_SCHEMA},
        'monitor': MONITOR_SCHEMA,
    },
}

DOCUMENT_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'Amphora SR-IOV L4 (UDP, SCTP) load balancing',
    'type': 'object', 'additionalProperties': False,
    'required': ['loadbalancer_id', 'listeners'],
    'properties': {
        'loadbalancer_id': _ID,
        'flow_limit': {'type': 'integer', 'minimum': 1,
                       'maximum': 4 * 1024 * 1024},
        'listeners': {
            'type': 'array',
            'items': {
                'type': 'object', 'additionalProperties': False,
                'required': ['id', 'protocol', 'port', 'addresses'],
                'properties': {
                    'id': _ID,
                    'protocol': {'enum': list(PROTOCOLS)},
                    'port': _PORT,
                    'addresses': {'type': 'array', 'minItems': 1,
                                  'items': {'type': 'string'}},
                    'connection_limit': {'type': ['integer', 'null'],
                                         'minimum': 1},
                    'pool': POOL_SCHEMA,
                },
            },
        },
    },
}

_SCHEMA = validation.Schema(DOCUMENT_SCHEMA)


@dataclasses.dataclass(frozen=True)
class Member:
    id: str
    address: str  # canonical text
    family: int  # 4 or 6
    port: int
    weight: int = 1
    backup: bool = False
    enabled: bool = True
    monitor_address: str = None
    monitor_port: int = None


@dataclasses.dataclass(frozen=True)
class Pool:
    id: str
    algorithm: str
    members: tuple = ()
    # None, or the source prefix lengths {4: n, 6: m} hashed for
    # SOURCE_IP persistence (a family absent hashes the whole address).
    persistence: dict = None
    granularity: str = None
    monitor: dict = None

    @property
    def hashed(self):
        """Whether the member is chosen by a hash of the source."""
        return self.algorithm == 'SOURCE_IP' or self.persistence is not None


@dataclasses.dataclass(frozen=True)
class Listener:
    id: str
    protocol: str
    port: int
    addresses: tuple  # ((family, canonical text), ...), de-duplicated
    connection_limit: int = None
    pool: Pool = None


@dataclasses.dataclass(frozen=True)
class Document:
    loadbalancer_id: str
    listeners: tuple = ()
    flow_limit: int = DEFAULT_FLOW_LIMIT
    # What GET shows and the state file holds: the request, normalised.
    canonical: dict = dataclasses.field(default=None, compare=False,
                                        repr=False)

    def to_dict(self):
        return dict(self.canonical)

    def members(self):
        """Every (listener, member) pair."""
        for listener in self.listeners:
            if listener.pool is not None:
                for member in listener.pool.members:
                    yield listener, member


def _address(text, field):
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidRequest(field, f'{text!r} is not a valid IP '
                             'address') from None
    return address.version, str(address)


def granularity_prefix(text, field):
    """The prefix length a netmask such as ``255.255.255.0`` keeps.

    nftables hashes a prefix of the source as raw payload bits; a mask with
    holes (``255.0.255.0``) is no prefix and ``jhash ip saddr & mask`` is
    refused by nft, so such masks are refused here.
    """
    family, _ = _address(text, field)
    try:
        network = ipaddress.ip_network(f'0.0.0.0/{text}' if family == 4
                                       else f'::/{text}')
    except ValueError:
        network = None
    if family == 6:
        # ipaddress reads "::/ffff::" as a prefix length only for digits.
        value = int(ipaddress.ip_address(text))
        bits = bin(value)[2:].zfill(128)
        if '01' in bits:
            network = None
        else:
            network = ipaddress.ip_network(f'::/{bits.count("1")}')
    if network is None:
        raise InvalidRequest(field, f'{text!r} is not a netmask of '
                             'contiguous leading bits')
    if network.prefixlen < 8:
        # The hash reads whole bytes (see render._hash_source).
        raise InvalidRequest(field, f'{text!r} keeps less than the first '
                             'byte of the source address')
    return family, network.prefixlen


def _member(body, field, families):
    family, address = _address(body['address'], f'{field}.address')
    if family not in families:
        raise InvalidRequest(f'{field}.address', f'an IPv{family} member '
                             'cannot serve a listener without an IPv'
                             f'{family} address')
    monitor_address = body.get('monitor_address')
    if monitor_address is not None:
        monitor_address = _address(monitor_address,
                                   f'{field}.monitor_address')[1]
    return Member(id=body['id'], address=address, family=family,
                  port=body['port'], weight=body.get('weight', 1),
                  backup=body.get('backup', False),
                  enabled=body.get('enabled', True),
                  monitor_address=monitor_address,
                  monitor_port=body.get('monitor_port'))


def _monitor(body, field):
    if body is None:
        return None
    if body['timeout'] > body['delay']:
        raise InvalidRequest(f'{field}.timeout', 'is longer than the delay '
                             'between two probes')
    if body.get('domain_name') and body.get('http_version', 1.0) != 1.1:
        raise InvalidRequest(f'{field}.domain_name', 'needs http_version '
                             '1.1 (HTTP/1.0 sends no Host)')
    codes = body.get('expected_codes', '200')
    try:
        probes.parse_expected_codes(codes)
    except ValueError:
        raise InvalidRequest(f'{field}.expected_codes',
                             f'{codes!r} is not a code, a list of codes or '
                             f'a range of codes from 100 to 599')
    return {'type': body['type'], 'delay': body['delay'],
            'timeout': body['timeout'], 'rise': body['rise'],
            'fall': body['fall'],
            'http_method': body.get('http_method', 'GET'),
            'url_path': body.get('url_path', '/'),
            'expected_codes': codes,
            'domain_name': body.get('domain_name'),
            'http_version': body.get('http_version', 1.0)}


def _pool(body, field, families):
    members = []
    seen = {}
    for index, member_body in enumerate(body['members']):
        member_field = f'{field}.members[{index}]'
        member = _member(member_body, member_field, families)
        for key, what in ((member.id, 'id'),
                          ((member.address, member.port), 'address')):
            if key in seen.get(what, ()):
                name = 'id' if what == 'id' else 'address'
                raise InvalidRequest(
                    f'{member_field}.{name}',
                    f'the same member as members[{seen[what][key]}]')
            seen.setdefault(what, {})[key] = index
        members.append(member)
    persistence = None
    granularity = None
    if body.get('persistence') is not None:
        granularity = body['persistence'].get('granularity')
        persistence = {}
        if granularity is not None:
            family, prefix = granularity_prefix(
                granularity, f'{field}.persistence.granularity')
            persistence[family] = prefix
    monitor = _monitor(body.get('monitor'), f'{field}.monitor')
    return Pool(id=body['id'], algorithm=body['algorithm'],
                members=tuple(members), persistence=persistence,
                granularity=granularity, monitor=monitor)


def _listener(body, field, seen):
    addresses = {}
    for index, text in enumerate(body['addresses']):
        addresses.setdefault(_address(text, f'{field}.addresses[{index}]'),
                             None)
        key = (body['protocol'], next(reversed(addresses))[1], body['port'])
        if key in seen and seen[key] != field:
            raise InvalidRequest(f'{field}.addresses[{index}]',
                                 f'{key[0]} {key[1]} port {key[2]} is '
                                 f'already served by {seen[key]}')
        seen[key] = field
    families = {family for family, _ in addresses}
    pool = None
    if body.get('pool') is not None:
        pool = _pool(body['pool'], f'{field}.pool', families)
    return Listener(id=body['id'], protocol=body['protocol'],
                    port=body['port'], addresses=tuple(addresses),
                    connection_limit=body.get('connection_limit'),
                    pool=pool)


def parse_document(body):
    """Validate a request body and return its Document."""
    _SCHEMA.check(body)
    listeners = []
    ids = {}
    served = {}
    for index, listener_body in enumerate(body['listeners']):
        field = f'listeners[{index}]'
        if listener_body['id'] in ids:
            raise InvalidRequest(f'{field}.id', 'the same listener as '
                                 f'listeners[{ids[listener_body["id"]]}]')
        ids[listener_body['id']] = index
        listeners.append(_listener(listener_body, field, served))
    pools = {}
    for index, listener in enumerate(listeners):
        if listener.pool is None:
            continue
        if listener.pool.id in pools:
            raise InvalidRequest(
                f'listeners[{index}].pool.id',
                f'the pool of listeners[{pools[listener.pool.id]}]; a pool '
                'serves one listener here')
        pools[listener.pool.id] = index
    document = Document(loadbalancer_id=body['loadbalancer_id'],
                        listeners=tuple(listeners),
                        flow_limit=body.get('flow_limit',
                                            DEFAULT_FLOW_LIMIT))
    return dataclasses.replace(document, canonical=to_canonical(document))


def to_canonical(document):
    def member(item):
        return {'id': item.id, 'address': item.address, 'port': item.port,
                'weight': item.weight, 'backup': item.backup,
                'enabled': item.enabled,
                'monitor_address': item.monitor_address,
                'monitor_port': item.monitor_port}

    def pool(item):
        if item is None:
            return None
        return {'id': item.id, 'algorithm': item.algorithm,
                'persistence': (None if item.persistence is None else
                                {'type': 'SOURCE_IP',
                                 'granularity': item.granularity}),
                'members': [member(m) for m in item.members],
                'monitor': None if item.monitor is None else dict(
                    item.monitor)}

    return {'loadbalancer_id': document.loadbalancer_id,
            'flow_limit': document.flow_limit,
            'listeners': [{'id': item.id, 'protocol': item.protocol,
                           'port': item.port,
                           'addresses': [text for _, text in item.addresses],
                           'connection_limit': item.connection_limit,
                           'pool': pool(item.pool)}
                          for item in document.listeners]}
