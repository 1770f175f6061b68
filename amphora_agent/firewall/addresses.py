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
"""IP addresses and networks as plain integers.

A request may carry tens of thousands of CIDRs, and everything here runs once
per CIDR per apply. ``ipaddress`` objects cost several microseconds each to
build, compare and collapse; ``socket.inet_pton`` plus integer arithmetic does
the same job in a fraction of that, which is what keeps an apply of 50k
entries well under a second.

A network is a ``(family, value, prefixlen, text)`` tuple: host bits cleared,
and ``text`` its canonical form. The canonical text is kept because
formatting 50k addresses back to text costs as much as parsing them, and
both the persisted state and the nftables set elements need it. IPv4 input
is usually canonical already (``inet_pton`` refuses every other spelling of
an IPv4 address), so it is reused instead of formatted again.
"""

import socket

BITS = {4: 32, 6: 128}
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_BYTES = {4: 4, 6: 16}
_HOST_MASK = {family: [(1 << (bits - length)) - 1
                       for length in range(bits + 1)]
              for family, bits in BITS.items()}
_CANONICAL_LENGTH = {str(length) for length in range(129)}


def parse_address(text):
    """Return ``(family, value)`` for an IP address string.

    Raises ValueError for anything else (prefixes, zone ids, legacy IPv4
    forms such as ``10.1`` that ``inet_aton`` would accept).
    """
    if not isinstance(text, str):
        raise ValueError(text)
    family = 6 if ':' in text else 4
    try:
        packed = socket.inet_pton(_AF[family], text)
    except OSError:
        raise ValueError(text) from None
    return family, int.from_bytes(packed, 'big')


def parse_network(text):
    """Return the network tuple for a CIDR or a bare address.

    Host bits are allowed and cleared (``10.1.2.3/8`` is ``10.0.0.0/8``),
    a bare address is a host route.
    """
    if not isinstance(text, str):
        raise ValueError(text)
    address, slash, length = text.partition('/')
    family = 6 if ':' in address else 4
    try:
        value = int.from_bytes(socket.inet_pton(_AF[family], address), 'big')
    except OSError:
        raise ValueError(text) from None
    bits = BITS[family]
    if slash:
        # isdigit() alone would accept non-ASCII digits such as '²'.
        if not (length.isascii() and length.isdigit()) or len(length) > 3:
            raise ValueError(text)
        prefixlen = int(length)
        if prefixlen > bits:
            raise ValueError(text)
    else:
        prefixlen = bits
    host = value & _HOST_MASK[family][prefixlen]
    if family == 4 and not host:
        if not slash:
            return family, value, prefixlen, f'{text}/32'
        if length in _CANONICAL_LENGTH:
            return family, value, prefixlen, text
    value ^= host
    return (family, value, prefixlen,
            f'{format_address(family, value)}/{prefixlen}')


def format_address(family, value):
    return socket.inet_ntop(_AF[family], value.to_bytes(_BYTES[family], 'big'))


def collapse(networks, family):
    """Merge the networks of one family into sorted, disjoint intervals.

    nftables 1.0.6 refuses overlapping elements in an interval set and
    ignores the JSON auto-merge flag, so overlaps and adjacent ranges are
    merged here. Returns ``(first, last, network)`` triples; ``network`` is
    the one input network the interval is exactly, None after a merge.
    """
    host_mask = _HOST_MASK[family]
    items = sorted((network[1], network[1] | host_mask[network[2]], network)
                   for network in networks if network[0] == family)
    merged = []
    for item in items:
        if merged and item[0] <= merged[-1][1] + 1:
            top = merged[-1]
            if item[1] > top[1]:
                merged[-1] = (top[0], item[1], None)
        else:
            merged.append(item)
    return merged


def covers_everything(intervals, family):
    return (len(intervals) == 1 and intervals[0][0] == 0 and
            intervals[0][1] == (1 << BITS[family]) - 1)


def interval_elements(family, intervals):
    """The nftables JSON elements of an interval set.

    A single address is the shortest element (and the cheapest for
    libnftables to parse: about half the time of a prefix object); an
    aligned power-of-two block is a prefix (what ``nft list`` prints back);
    anything else a range.
    """
    bits = BITS[family]
    elements = []
    append = elements.append
    for first, last, network in intervals:
        if network is not None:
            if network[2] == bits:
                append(network[3].partition('/')[0])
            else:
                append({'prefix': {'addr': network[3].partition('/')[0],
                                   'len': network[2]}})
            continue
        size = last - first + 1
        if size & (size - 1) == 0 and first % size == 0:
            append({'prefix': {'addr': format_address(family, first),
                               'len': bits - size.bit_length() + 1}})
        else:
            append({'range': [format_address(family, first),
                              format_address(family, last)]})
    return elements
