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
"""A listener's source sets: hashed by prefix length, named after content.

**Lookup.** One interval set per listener costs a packet a binary search
over the listener's intervals: at 5,000 CIDRs about 13 steps, each an
indirect call into the comparison function, which this machine's return-stack
mitigations make dear (perf: ``bsearch`` and ``nft_array_lookup_cmp`` were
most of the firewall's cost, and the UDP rate fell to 0.79 of no firewall).
A source is therefore split by prefix length: the networks of one length
go to a hash set of fixed size, looked up with the address masked to that
length (``ip saddr & 255.255.255.0 @..._p24``), one O(1) lookup per length.
Real lists hold few distinct lengths (hosts, /24s, a few others); the
``MAX_HASHED`` most common get hash sets and the rest share one interval
set, small enough for a short search. The hashed lengths are looked up
longest first, the interval set last.

**Names.** Re-creating a listener's sets costs libnftables and the kernel
about 10 ms per 1000 elements, so an apply that re-creates every set takes
most of a second at 50k CIDRs even when only a member changed. A set whose
name is a digest of its content can be kept instead: the next generation's
listener chain looks it up as it is, and only a set whose content changed
is created (and its predecessor deleted once unused).

The digest covers the sorted canonical networks of one family, which decide
every set of that family; the listener's protocol and port stay in the
name so that drift reports and hand inspection still say whose set it is,
and a hash set's name ends in its prefix length (``_p24``), the interval
set's in ``_iv``.
"""

import collections
import dataclasses
import functools
import hashlib
import re

from amphora_agent.firewall import addresses

PREFIX = 's_'
DIGEST_HEX = 16
# s_<digest>_<protocol>_<port>_<family>_{p<length>,iv}: never a
# generation name (r<n>_).
NAME = re.compile(r'^s_[0-9a-f]{%d}_' % DIGEST_HEX)
# Hash lookups a packet pays at most per family before the interval set.
MAX_HASHED = 8


@dataclasses.dataclass(frozen=True)
class Part:
    """One set of a source: ``prefixlen`` None is the interval set."""

    prefixlen: object
    elements: list

    @property
    def suffix(self):
        # Not '' for the interval set: a set of the earlier layout (one
        # interval set, named without a suffix) must never be kept as one.
        return '_iv' if self.prefixlen is None else f'_p{self.prefixlen}'


@dataclasses.dataclass(frozen=True)
class SourceSet:
    """The sources of one family: its intervals and their digest."""

    family: int
    intervals: list
    digest: str

    @property
    def everything(self):
        return addresses.covers_everything(self.intervals, self.family)

    @functools.cached_property
    def parts(self):
        """The Parts, in the order a packet is to look them up."""
        return split(self.family, self.intervals)

    def name(self, suffix, part):
        return f'{PREFIX}{self.digest}_{suffix}_{self.family}{part.suffix}'


def _blocks(family, intervals):
    """``(prefixlen, first)`` of the aligned blocks that make up intervals."""
    bits = addresses.BITS[family]
    for first, last, network in intervals:
        if network is not None:
            yield network[2], first
            continue
        while first <= last:
            size = first & -first if first else 1 << bits
            while size > last - first + 1:
                size >>= 1
            yield bits - size.bit_length() + 1, first
            first += size


def split(family, intervals):
    """The Parts of sorted disjoint ``intervals`` (addresses.collapse)."""
    by_length = collections.defaultdict(list)
    for prefixlen, first in _blocks(family, intervals):
        by_length[prefixlen].append(first)
    hashed = sorted(by_length, key=lambda length: (-len(by_length[length]),
                                                   -length))[:MAX_HASHED]
    parts = [Part(length, [addresses.format_address(family, first)
                           for first in by_length[length]])
             for length in sorted(hashed, reverse=True)]
    bits = addresses.BITS[family]
    rest = sorted((first, first + (1 << (bits - length)) - 1, None)
                  for length, firsts in by_length.items()
                  if length not in hashed for first in firsts)
    if rest:
        parts.append(Part(None, addresses.interval_elements(family, rest)))
    return parts


def mask(family, prefixlen):
    """The netmask of ``prefixlen`` as an address text."""
    bits = addresses.BITS[family]
    return addresses.format_address(
        family, ((1 << prefixlen) - 1) << (bits - prefixlen))


def of_networks(networks):
    """The non-empty SourceSets of sorted network tuples, by family.

    Computed once per parsed listener (model.Listener.sources): the
    collapse sorts every network, the digest reads every canonical text.
    """
    result = {}
    for family in (4, 6):
        intervals = addresses.collapse(networks, family)
        if not intervals:
            continue
        digest = hashlib.blake2b(
            '\n'.join(network[3] for network in networks
                      if network[0] == family).encode(),
            digest_size=DIGEST_HEX // 2).hexdigest()
        result[family] = SourceSet(family, intervals, digest)
    return result


def is_content_named(name):
    return NAME.match(name) is not None
