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
"""The desired firewall state: parsed, validated and normalised.

Two request forms lead here. The native one (``POST /1.0/security-group``)
carries the whole state of the amphora: VIP interfaces, listeners with their
allowed CIDRs, VRRP peers and members. Upstream Octavia's
``PUT /1.0/interface/<ip>/rules`` carries a flat list of
``{"protocol", "cidr", "port"}`` and knows nothing of members.

Validation happens completely here, before the engine touches the kernel,
so an invalid request changes nothing. Every error names the offending field
as a JSON path (``listeners[2].allowed_cidrs[5]``).
"""

import collections
import dataclasses
import functools

from amphora_agent.firewall import addresses
from amphora_agent.firewall import bulk
from amphora_agent.firewall import sourcesets
from amphora_agent.firewall import state
from amphora_agent import validation

LISTENER_PROTOCOLS = ('TCP', 'UDP', 'SCTP')
MEMBER_PROTOCOLS = ('TCP', 'UDP', 'SCTP', 'ICMP')
UPSTREAM_VRRP = 'VRRP'

_PORT = {'type': 'integer', 'minimum': 1, 'maximum': 65535}
_STRING_LIST = {'type': 'array', 'items': {'type': 'string'}}

SECURITY_GROUP_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'Amphora SR-IOV firewall: the whole desired state',
    'type': 'object',
    'additionalProperties': False,
    'required': ['vip_interfaces'],
    'properties': {
        'vip_interfaces': dict(_STRING_LIST, minItems=1),
        'listeners': {
            'type': 'array',
            'items': {
                'type': 'object',
                'additionalProperties': False,
                'required': ['protocol', 'port'],
                'properties': {
                    'protocol': {'enum': list(LISTENER_PROTOCOLS)},
                    'port': _PORT,
                    # Items are checked by _networks(): a per-item schema
                    # check costs ~10 us each, too slow for 50k CIDRs.
                    'allowed_cidrs': {'type': ['array', 'null']},
                },
            },
        },
        'vrrp_peers': _STRING_LIST,
        # Absent or null: the members are unknown (see SecurityGroup).
        'members': {
            'type': ['array', 'null'],
            'items': {
                'type': 'object',
                'additionalProperties': False,
                'required': ['address', 'protocol'],
                'properties': {
                    'address': {'type': 'string'},
                    'protocol': {'enum': list(MEMBER_PROTOCOLS)},
                    'port': {'type': ['integer', 'null'], 'minimum': 1,
                             'maximum': 65535},
                },
            },
        },
    },
}

UPSTREAM_RULES_SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'Upstream Octavia amphora interface rules',
    'type': 'array',
    'items': {
        'type': 'object',
        'additionalProperties': False,
        'required': ['protocol', 'cidr', 'port'],
        'properties': {
            # Upstream sends 'TCP', 'UDP', 'SCTP' and 'vrrp'; the case is
            # checked after the schema.
            'protocol': {'type': 'string'},
            'cidr': {'type': ['string', 'null']},
            'port': _PORT,
        },
    },
}

_SCHEMA = validation.Schema(SECURITY_GROUP_SCHEMA)
_UPSTREAM_SCHEMA = validation.Schema(UPSTREAM_RULES_SCHEMA)

InvalidRequest = validation.InvalidRequest


@dataclasses.dataclass(frozen=True)
class Listener:
    protocol: str
    port: int
    # Sorted, de-duplicated network tuples (see addresses); empty means
    # any source.
    allowed_cidrs: tuple = ()

    @property
    def key(self):
        return f'{self.protocol}:{self.port}'

    # The cached properties below are computed once per Listener object, and
    # an unchanged CIDR list yields the same object apply after apply (see
    # _parse_listeners): an apply that does not touch a listener's CIDRs
    # then does nothing per CIDR.

    @functools.cached_property
    def cidr_texts(self):
        """The canonical CIDR texts; shared, not to be changed."""
        return [network[3] for network in self.allowed_cidrs]

    @functools.cached_property
    def sources(self):
        """``{family: sourcesets.SourceSet}`` of the allowed CIDRs."""
        return sourcesets.of_networks(self.allowed_cidrs)

    @functools.cached_property
    def cidrs_blob(self):
        """``(digest, JSON text)`` of cidr_texts, for state.save."""
        return state.blob(self.cidr_texts)

    def to_dict(self):
        return {'protocol': self.protocol, 'port': self.port,
                'allowed_cidrs': self.cidr_texts}


@dataclasses.dataclass(frozen=True)
class Member:
    family: int
    address: int
    protocol: str
    # None for ICMP (ping monitors).
    port: int = None

    def to_dict(self):
        member = {'address': addresses.format_address(self.family,
                                                      self.address),
                  'protocol': self.protocol}
        if self.port is not None:
            member['port'] = self.port
        return member


@dataclasses.dataclass(frozen=True)
class SecurityGroup:
    """The whole desired firewall state of one amphora.

    ``members`` is None when the members are unknown (the upstream rules
    API carries none): the firewall then lets replies to the amphora's own
    connections in by their shape instead of by their source.
    """

    vip_interfaces: tuple  # (family, value) addresses
    listeners: tuple = ()  # Listener, sorted by protocol and port
    vrrp_peers: tuple = ()  # network tuples (see addresses), sorted
    members: tuple = None  # Member, sorted; None: unknown

    # Computed once: apply, persist and GET all need it; the listeners'
    # CIDR texts are their own cached lists.
    @functools.cached_property
    def canonical(self):
        return {
            'vip_interfaces': [addresses.format_address(*address)
                               for address in self.vip_interfaces],
            'listeners': [listener.to_dict() for listener in self.listeners],
            'vrrp_peers': [network[3] for network in self.vrrp_peers],
            'members': (None if self.members is None else
                        [member.to_dict() for member in self.members]),
        }

    def to_dict(self):
        """The canonical JSON form (a fresh copy of the top level)."""
        return dict(self.canonical)


def _parsed(parse, kind, text, field):
    try:
        return parse(text)
    except ValueError:
        raise InvalidRequest(
            field, f'{text!r} is not a valid IP {kind}') from None


def _network(text, field):
    return _parsed(addresses.parse_network, 'network', text, field)


def _address(text, field):
    return _parsed(addresses.parse_address, 'address', text, field)


def _networks(texts, field):
    parse = addresses.parse_network
    networks = []
    for index, text in enumerate(texts):
        try:
            networks.append(parse(text))
        except ValueError:
            reason = (f'{text!r} is not a valid IP network'
                      if isinstance(text, str) else
                      f'{text!r} is not of type \'string\'')
            raise InvalidRequest(f'{field}[{index}]', reason) from None
    return networks


def _merge_listeners(entries):
    """Build listeners from ``((protocol, port), networks or None)``.

    Two entries for the same protocol and port are one listener accepting
    the union of their sources; an entry without sources opens it to all.
    """
    merged = {}
    for key, networks in entries:
        if key in merged and merged[key] is None:
            continue
        if networks is None:
            merged[key] = None
        else:
            merged.setdefault(key, set()).update(networks)
    return tuple(Listener(protocol, port, tuple(sorted(networks or ())))
                 for (protocol, port), networks in sorted(merged.items()))


# Listeners of the last native request whose CIDR list was parsed:
# ``{(protocol, port): (the raw CIDR list, Listener)}``. Comparing a raw list
# with the one parsed last time costs ~1 ms at 50k strings, parsing it again
# ~100 ms; only the last request's listeners are kept, so the cache holds
# one copy of a request's CIDRs at most. Replaced as a whole, never changed
# in place: concurrent parses each see one consistent dict.
_parsed_listeners = {}


def _parse_listeners(listeners):
    """The Listeners of a request's ``listeners``, reusing unchanged ones.

    A listener is reused when its (protocol, port) occurs once in the
    request and its raw ``allowed_cidrs`` equals the list it was parsed
    from last time: then it is valid and yields the same Listener. Entries
    are still parsed in request order, so the first invalid one is the one
    reported, as before.
    """
    global _parsed_listeners
    known = _parsed_listeners
    keys = [(listener['protocol'], int(listener['port']))
            for listener in listeners]
    occurrences = collections.Counter(keys)
    reused = {}
    entries = []
    for index, (key, listener) in enumerate(zip(keys, listeners)):
        cidrs = listener.get('allowed_cidrs')
        if cidrs and occurrences[key] == 1:
            hit = known.get(key)
            if hit is not None and hit[0] == cidrs:
                reused[key] = hit
                continue
        networks = (_networks(cidrs, f'listeners[{index}].allowed_cidrs')
                    if cidrs else None)
        entries.append((key, networks))
    merged = _merge_listeners(entries)
    remembered = dict(reused)
    for key, listener in zip(keys, listeners):
        cidrs = listener.get('allowed_cidrs')
        if cidrs and occurrences[key] == 1 and key not in reused:
            # A copy: the caller's list may change after we return.
            remembered[key] = (list(cidrs), None)
    for parsed in merged:
        key = (parsed.protocol, parsed.port)
        if key in remembered:
            remembered[key] = (remembered[key][0], parsed)
    _parsed_listeners = remembered
    return tuple(sorted(merged + tuple(hit[1] for hit in reused.values()),
                        key=lambda parsed: (parsed.protocol, parsed.port)))


def parse_security_group(body):
    """Validate a native request body and return its SecurityGroup."""
    with bulk.gc_paused():
        return _parse_security_group(body)


def _parse_security_group(body):
    _SCHEMA.check(body)
    # A dict keeps the first occurrence of each address, in order, in
    # linear time.
    vip_interfaces = {}
    for index, text in enumerate(body['vip_interfaces']):
        vip_interfaces.setdefault(
            _address(text, f'vip_interfaces[{index}]'), None)
    listeners = _parse_listeners(body.get('listeners', ()))
    peers = _networks(body.get('vrrp_peers', ()), 'vrrp_peers')
    members = None
    if body.get('members') is not None:
        members = set()
        for index, member in enumerate(body['members']):
            field = f'members[{index}]'
            family, value = _address(member['address'], f'{field}.address')
            port = member.get('port')
            if member['protocol'] == 'ICMP':
                if port is not None:
                    raise InvalidRequest(f'{field}.port',
                                         'ICMP members have no port')
            elif port is None:
                raise InvalidRequest(
                    f'{field}.port',
                    f'is required for {member["protocol"]} members')
            members.add(Member(family, value, member['protocol'],
                               None if port is None else int(port)))
        members = tuple(sorted(members, key=_member_order))
    return SecurityGroup(vip_interfaces=tuple(vip_interfaces),
                         listeners=listeners,
                         vrrp_peers=tuple(sorted(set(peers))),
                         members=members)


def _member_order(member):
    return (member.family, member.address, member.protocol, member.port or 0)


def from_upstream_rules(interface_address, rules):
    """Translate upstream Octavia's interface rules into a SecurityGroup.

    ``interface_address`` (the VRRP base port address in the URL) names the
    VIP interface. A rule with a null CIDR opens its port (or VRRP) to every
    source. Members are unknown on this path.
    """
    with bulk.gc_paused():
        return _from_upstream_rules(interface_address, rules)


def _from_upstream_rules(interface_address, rules):
    vip = _address(interface_address, 'interface_address')
    _UPSTREAM_SCHEMA.check(rules)
    entries = []
    peers = set()
    for index, rule in enumerate(rules):
        protocol = rule['protocol'].upper()
        cidr = rule['cidr']
        network = None if cidr is None else _network(cidr,
                                                     f'[{index}].cidr')
        if protocol == UPSTREAM_VRRP:
            peers.update([network] if network else
                         [addresses.parse_network('0.0.0.0/0'),
                          addresses.parse_network('::/0')])
        elif protocol in LISTENER_PROTOCOLS:
            entries.append(((protocol, int(rule['port'])),
                            None if network is None else [network]))
        else:
            raise InvalidRequest(
                f'[{index}].protocol',
                f'{rule["protocol"]!r} is not one of TCP, UDP, SCTP, VRRP')
    return SecurityGroup(vip_interfaces=(vip,),
                         listeners=_merge_listeners(entries),
                         vrrp_peers=tuple(sorted(peers)),
                         members=None)
