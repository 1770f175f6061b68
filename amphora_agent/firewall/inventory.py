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
"""What of ours the kernel holds, and the names that tell.

The engine reads the table back (terse: no set elements) after a failure
and at start; a render then needs to know which objects exist and which
generation is in force, which the names say: ``r<serial>_...`` for the
objects of a generation, ``s_<digest>_...`` for content-named source sets
(sourcesets), ``in_<ifname>`` for base chains.
"""

import dataclasses
import re

from amphora_agent.firewall import sourcesets

ESSENTIALS_CHAIN = 'essentials'
BASE_CHAIN_PREFIX = 'in_'

_GENERATION_NAME = re.compile(r'^r(\d+)_')
_ESCAPED = re.compile(r'_([0-9a-f]{2})')


def encode_ifname(ifname):
    """An interface name as an object-name suffix, reversibly.

    Names are kept to [A-Za-z0-9_]; everything else, '_' included, becomes
    '_xx' so that decode_ifname() can recover the exact interface name (nft
    1.0.6 does not report a chain's device in JSON).
    """
    return ''.join(char if char.isascii() and char.isalnum()
                   else '_%02x' % ord(char) for char in ifname)


def decode_ifname(encoded):
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), encoded)


def base_chain_name(ifname):
    return BASE_CHAIN_PREFIX + encode_ifname(ifname)


@dataclasses.dataclass
class Installed:
    """What of ours the kernel holds, as far as a render needs to know."""

    table: bool = False
    essentials: bool = False
    serial: int = 0
    base_chains: dict = dataclasses.field(default_factory=dict)
    chains: list = dataclasses.field(default_factory=list)
    sets: list = dataclasses.field(default_factory=list)
    maps: list = dataclasses.field(default_factory=list)
    counters: set = dataclasses.field(default_factory=set)


def installed_from_listing(objects):
    """Build Installed from the JSON objects of ``list table``."""
    installed = Installed()
    for item in objects:
        kind, = item.keys()
        body = item[kind]
        if kind == 'table':
            installed.table = True
            continue
        if kind not in ('chain', 'set', 'map', 'counter'):
            continue
        name = body['name']
        generation = _GENERATION_NAME.match(name)
        if kind == 'set' and sourcesets.is_content_named(name):
            installed.sets.append(name)
        elif generation:
            installed.serial = max(installed.serial,
                                   int(generation.group(1)))
            getattr(installed, kind + 's').append(name)
        elif kind == 'counter':
            installed.counters.add(name)
        elif kind == 'chain' and name == ESSENTIALS_CHAIN:
            installed.essentials = True
        elif kind == 'chain' and name.startswith(BASE_CHAIN_PREFIX):
            ifname = decode_ifname(name[len(BASE_CHAIN_PREFIX):])
            installed.base_chains[ifname] = name
    return installed
