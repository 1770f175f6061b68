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
"""Is the table in the kernel still the one the renderer would make?

Both sides are brought to one canonical form and compared: the ``add``
commands of a plan (``render.build``) and the objects ``nft -j list table``
returns. The form keeps everything that decides a packet's fate and drops
what the kernel adds or spells its own way:

* handles, counter values (``packets``, ``bytes``) and the generation
  serial of the objects in force (``r7_tcp_80`` and the plan's
  ``r1_tcp_80`` are both ``r*_tcp_80``; another generation's objects keep
  their serial and show up as unexpected);
* the order of set and map elements and of anonymous set members;
* the spelling of addresses and intervals: an interval set element is its
  first and last address (packed into one integer, see ``_packed``)
  whether written as an address, a prefix or a range;
* protocol names against numbers (``meta l4proto 112`` lists as
  ``vrrp``).

nft 1.0.6 does not report a base chain's device in JSON; the chain's name
carries it (``render.base_chain_name``), so it is not compared. Nothing
here talks to the kernel.
"""

import dataclasses
import difflib
import json
import re
import socket

from amphora_agent.firewall import addresses

IN_FORCE = 'r*_'
# How many differences one log line names before it says how many more.
SHOWN = 10
# Of one set or map, how many missing or unexpected elements are named.
SHOWN_ELEMENTS = 3

_GENERATION = re.compile(r'^(@?)r(\d+)_')
# What the listing adds that says nothing about the packets' fate.
_IGNORED = {
    'table': {'family', 'name', 'handle', 'flags'},
    'chain': {'family', 'table', 'name', 'handle', 'dev'},
    'set': {'family', 'table', 'name', 'handle', 'elem'},
    'map': {'family', 'table', 'name', 'handle', 'elem'},
    'counter': {'family', 'table', 'name', 'handle', 'packets', 'bytes'},
    'rule': {'family', 'table', 'chain', 'handle', 'expr'},
}
_DEFAULT_IGNORED = {'family', 'table', 'name', 'handle'}
# The protocols the renderer names, as nft may print them back; others
# are looked up in the system's protocol database, as nft does.
_PROTOCOLS = {'tcp': 6, 'udp': 17, 'sctp': 132, 'icmp': 1, 'icmpv6': 58,
              'ipv6-icmp': 58, 'vrrp': 112}
_PROTOCOL_KEYS = ({'meta': {'key': 'l4proto'}},
                  {'payload': {'protocol': 'ip', 'field': 'protocol'}},
                  {'payload': {'protocol': 'ip6', 'field': 'nexthdr'}})
_ADDRESS_TYPES = {'ipv4_addr': 4, 'ipv6_addr': 6}


@dataclasses.dataclass
class Ruleset:
    """A table in canonical form.

    ``objects`` maps ``(kind, name)`` to what matters of the object
    (``("table", "")`` for the table itself); ``elements`` a set's or
    map's name to its frozenset of canonical elements; ``rules`` a chain's
    name to the tuple of its canonical rules. ``shown`` keeps a readable
    form of each rule for the log, by chain and position.
    """

    objects: dict = dataclasses.field(default_factory=dict)
    elements: dict = dataclasses.field(default_factory=dict)
    rules: dict = dataclasses.field(default_factory=dict)
    shown: dict = dataclasses.field(default_factory=dict)
    types: dict = dataclasses.field(default_factory=dict)

    def __eq__(self, other):
        return (self.objects == other.objects and
                self.elements == other.elements and
                self.rules == other.rules)


def _name(name, serial):
    """The object name with the serial in force made generic."""
    match = _GENERATION.match(name)
    if match and int(match.group(2)) == serial:
        return match.group(1) + IN_FORCE + name[match.end():]
    return name


def _protocol(value):
    if isinstance(value, str):
        if value in _PROTOCOLS:
            return _PROTOCOLS[value]
        try:
            return socket.getprotobyname(value)
        except OSError:
            return value
    return value


def _freeze(value, serial):
    """A JSON value as a hashable, order-insensitive where order is not."""
    if isinstance(value, dict):
        if len(value) == 1 and 'set' in value and isinstance(value['set'],
                                                             list):
            return ('set', frozenset(_freeze(item, serial)
                                     for item in value['set']))
        if 'match' in value and len(value) == 1:
            match = value['match']
            right = match.get('right')
            if match.get('left') in _PROTOCOL_KEYS:
                right = ({'set': [_protocol(item) for item in right['set']]}
                         if isinstance(right, dict) and 'set' in right
                         else _protocol(right))
            value = {'match': dict(match, right=right)}
        return tuple(sorted((key, _freeze(item, serial))
                            for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(item, serial) for item in value)
    if isinstance(value, str):
        return _name(value, serial)
    return value


def _packed(family, first, last):
    """An interval as one integer: a tuple of three costs three times more.

    At 50k elements that is the difference between keeping 4 and 12 MB for
    the wanted form.
    """
    return (first << 129) | (last << 1) | (family == 6)


def _unpacked(value):
    """``(family, first, last)`` of a ``_packed`` interval."""
    return (6 if value & 1 else 4, value >> 129,
            (value >> 1) & ((1 << 128) - 1))


def _address_value(text):
    family, value = addresses.parse_address(text)
    return _packed(family, value, value)


def _prefix_value(prefix):
    family, first = addresses.parse_address(prefix['addr'])
    host = (1 << (addresses.BITS[family] - prefix['len'])) - 1
    return _packed(family, first & ~host, first | host)


def _range_value(first, last):
    family, first = addresses.parse_address(first)
    return _packed(family, first, addresses.parse_address(last)[1])


def _interval(value):
    """The packed interval of an address, a prefix or a range."""
    if isinstance(value, int):
        # Packed while the listing was decoded (parse_listing).
        return value
    if isinstance(value, str):
        return _address_value(value)
    if 'prefix' in value:
        return _prefix_value(value['prefix'])
    if 'range' in value:
        return _range_value(*value['range'])
    raise ValueError(value)


def _compact(obj):
    """json object_hook: address prefixes and ranges packed as decoded.

    50k prefix elements decode to 100k dicts (~20 MB); packed at once they
    never all exist.
    """
    if len(obj) == 1:
        try:
            if 'prefix' in obj and isinstance(obj['prefix'], dict):
                return _prefix_value(obj['prefix'])
            if 'range' in obj and isinstance(obj['range'][0], str):
                return _range_value(*obj['range'])
        except (ValueError, KeyError, TypeError, IndexError):
            pass
    return obj


def parse_listing(text):
    """The objects of an ``nft -j list`` output, addresses packed."""
    return json.loads(text, object_hook=_compact)['nftables']


def _element_value(set_type, value, serial):
    if set_type in _ADDRESS_TYPES:
        try:
            return _interval(value)
        except (ValueError, KeyError, TypeError):
            # A hand-made element of another shape: kept as it is, so it
            # differs from every element the renderer makes.
            return _freeze(value, serial)
    if set_type == 'inet_proto':
        return _protocol(value)
    return _freeze(value, serial)


def _element(types, item, serial):
    if isinstance(item, dict) and 'elem' in item:
        # An element with its own properties (a timeout, a comment): the
        # properties count, its counter values do not.
        extra = {key: value for key, value in item['elem'].items()
                 if key not in ('val', 'counter')}
        return (_element(types, item['elem']['val'], serial),
                _freeze(extra, serial))
    if len(types) > 1:
        parts = item['concat'] if isinstance(item, dict) else None
        if not isinstance(parts, list) or len(parts) != len(types):
            return _freeze(item, serial)
        return tuple(_element_value(kind, part, serial)
                     for kind, part in zip(types, parts))
    return _element_value(types[0], item, serial)


def _types(body):
    kind = body.get('type')
    return tuple(kind) if isinstance(kind, list) else (kind,)


def _elements(kind, body, serial):
    types = _types(body)
    items = body.get('elem') or ()
    if kind == 'map':
        return frozenset((_element(types, key, serial),
                          _freeze(value, serial)) for key, value in items)
    return frozenset(_element(types, item, serial) for item in items)


def _properties(kind, body, serial):
    ignored = _IGNORED.get(kind, _DEFAULT_IGNORED)
    return tuple(sorted((key, _freeze(value, serial))
                        for key, value in body.items()
                        if key not in ignored))


def _shown_rule(body, serial):
    text = re.sub(rf'\br{serial}_', IN_FORCE,
                  json.dumps(body['expr'], separators=(',', ':')))
    return text if len(text) <= 300 else text[:297] + '...'


def canonical(objects, serial):
    """The Ruleset of ``objects``, nftables JSON object bodies.

    ``objects`` are ``{kind: body}`` items, from a listing or the ``add``
    commands of a plan, of our table only; ``serial`` is the generation
    in force among them.
    """
    ruleset = Ruleset()
    for item in objects:
        kind, = item.keys()
        body = item[kind]
        if kind == 'metainfo':
            continue
        if kind == 'table':
            # nft 1.0.6 lists a table's flags garbled (a counter's name
            # where "dormant" belongs): whether there are any is what
            # counts, and the renderer sets none.
            ruleset.objects[('table', '')] = (
                ('flags', bool(body.get('flags'))),)
            continue
        if kind == 'rule':
            chain = _name(body['chain'], serial)
            rule = (_freeze(body['expr'], serial),
                    _properties(kind, body, serial))
            ruleset.rules.setdefault(chain, []).append(rule)
            ruleset.shown.setdefault(chain, []).append(
                _shown_rule(body, serial))
            continue
        name = _name(body['name'], serial)
        ruleset.objects[(kind, name)] = _properties(kind, body, serial)
        if kind in ('set', 'map'):
            ruleset.elements[name] = _elements(kind, body, serial)
            ruleset.types[name] = _types(body)
    ruleset.rules = {chain: tuple(rules)
                     for chain, rules in ruleset.rules.items()}
    return ruleset


def of_plan(plan):
    """The Ruleset a plan built from an empty table puts in force."""
    commands = [command for step in plan.prepare for command in step]
    commands.extend(plan.switch)
    return canonical([command['add'] for command in commands
                      if 'add' in command], plan.result.serial)


# Differences, for the log ---------------------------------------------------

def _thawed(value):
    """A ``_freeze`` result back as JSON-like data, for the log."""
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == 'set' and isinstance(
                value[1], frozenset):
            return {'set': sorted((_thawed(item) for item in value[1]),
                                  key=str)}
        if all(isinstance(item, tuple) and len(item) == 2 and
               isinstance(item[0], str) for item in value) and value:
            return {key: _thawed(item) for key, item in value}
        return [_thawed(item) for item in value]
    return value


def _describe_value(set_type, value):
    if set_type in _ADDRESS_TYPES and isinstance(value, int):
        family, first, last = _unpacked(value)
        if first == last:
            return addresses.format_address(family, first)
        return (f'{addresses.format_address(family, first)}-'
                f'{addresses.format_address(family, last)}')
    return str(value)


def _describe_element(types, element):
    """An element roughly as nft writes it (``10.0.0.0-10.0.0.255``)."""
    if len(types) > 1 and isinstance(element, tuple) and len(
            element) == len(types):
        return ' . '.join(_describe_value(kind, part)
                          for kind, part in zip(types, element))
    return _describe_value(types[0], element)


def _describe_elements(types, elements, is_map):
    if is_map:
        # (key, verdict)
        shown = sorted(f'{_describe_element(types, key)} : '
                       f'{json.dumps(_thawed(verdict))}'
                       for key, verdict in elements)
    else:
        shown = sorted(_describe_element(types, element)
                       for element in elements)
    text = ', '.join(shown[:SHOWN_ELEMENTS])
    if len(shown) > SHOWN_ELEMENTS:
        text += f' and {len(shown) - SHOWN_ELEMENTS} more'
    return text


def _describe_properties(wanted, live):
    """The properties that differ: ``policy "accept" (expected "drop")``."""
    wanted, live = dict(wanted), dict(live)
    return ', '.join(
        f'{key} {json.dumps(live.get(key), default=str)} (expected '
        f'{json.dumps(wanted.get(key), default=str)})'
        for key in sorted(wanted.keys() | live.keys())
        if wanted.get(key) != live.get(key))


def _rule_differences(chain, wanted, live):
    differences = []
    matcher = difflib.SequenceMatcher(a=wanted.rules.get(chain, ()),
                                      b=live.rules.get(chain, ()),
                                      autojunk=False)
    wanted_shown = wanted.shown.get(chain, [])
    live_shown = live.shown.get(chain, [])
    for tag, first, last, live_first, live_last in matcher.get_opcodes():
        if tag in ('delete', 'replace'):
            differences.extend(
                f'chain {chain}: rule {index + 1} missing: '
                f'{wanted_shown[index]}' for index in range(first, last))
        if tag in ('insert', 'replace'):
            differences.extend(
                f'chain {chain}: unexpected rule at {index + 1}: '
                f'{live_shown[index]}'
                for index in range(live_first, live_last))
    return differences


def differences(wanted, live):
    """What differs between two Rulesets, one readable line each.

    Empty when they are equal. Missing and unexpected objects first, then
    changed properties, elements and rules.
    """
    if wanted == live:
        return []
    if ('table', '') not in live.objects:
        return ['the table is missing']
    found = []
    for key in sorted(wanted.objects.keys() - live.objects.keys()):
        found.append(f'{key[0]} {key[1]} is missing')
    for key in sorted(live.objects.keys() - wanted.objects.keys()):
        found.append(f'unexpected {key[0]} {key[1]}')
    for key in sorted(wanted.objects.keys() & live.objects.keys()):
        if wanted.objects[key] != live.objects[key]:
            label = 'table' if key[0] == 'table' else f'{key[0]} {key[1]}'
            found.append(f'{label}: ' + _describe_properties(
                wanted.objects[key], live.objects[key]))
    for name in sorted(wanted.elements.keys() & live.elements.keys()):
        missing = wanted.elements[name] - live.elements[name]
        extra = live.elements[name] - wanted.elements[name]
        types = wanted.types[name]
        is_map = ('map', name) in wanted.objects
        if missing:
            found.append(f'{name}: {len(missing)} element(s) missing: '
                         f'{_describe_elements(types, missing, is_map)}')
        if extra:
            found.append(f'{name}: {len(extra)} unexpected element(s): '
                         f'{_describe_elements(types, extra, is_map)}')
    for chain in sorted(wanted.rules.keys() | live.rules.keys()):
        if (wanted.rules.get(chain) != live.rules.get(chain) and
                ('chain', chain) in wanted.objects and
                ('chain', chain) in live.objects):
            found.extend(_rule_differences(chain, wanted, live))
    return found


def summary(found):
    """``differences`` as one log message."""
    text = '; '.join(found[:SHOWN])
    if len(found) > SHOWN:
        text += f'; and {len(found) - SHOWN} more'
    return text
