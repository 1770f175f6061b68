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
entries well under a second. Networks are ``(family, value, prefixlen)``
tuples with the host bits cleared, so they sort and compare as numbers.
"""

import socket

BITS = {4: 32, 6: 128}
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_BYTES = {4: 4, 6: 16}


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
    """Return ``(family, value, prefixlen)`` for a CIDR or a bare address.

    Host bits are allowed and cleared (``10.1.2.3/8`` is ``10.0.0.0/8``),
    a bare address is a host route.
    """
    if not isinstance(text, str):
        raise ValueError(text)
    address, slash, length = text.partition('/')
    family, value = parse_address(address)
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
    host_bits = bits - prefixlen
    return family, (value >> host_bits) << host_bits, prefixlen


def format_address(family, value):
    return socket.inet_ntop(_AF[family], value.to_bytes(_BYTES[family], 'big'))


def format_network(network):
    family, value, prefixlen = network
    return f'{format_address(family, value)}/{prefixlen}'


def collapse(networks, family):
    """Merge the networks of one family into sorted, disjoint intervals.

    nftables 1.0.6 refuses overlapping elements in an interval set and
    ignores the JSON auto-merge flag, so overlaps and adjacent ranges are
    merged here. Returns a list of ``(first, last)`` integer pairs.
    """
    bits = BITS[family]
    intervals = sorted(
        (value, value | ((1 << (bits - prefixlen)) - 1))
        for fam, value, prefixlen in networks if fam == family)
    merged = []
    for first, last in intervals:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1][1] = last
        else:
            merged.append([first, last])
    return [tuple(pair) for pair in merged]


def covers_everything(intervals, family):
    return intervals == [(0, (1 << BITS[family]) - 1)]


def interval_element(family, first, last):
    """The nftables JSON element for one interval of a set.

    A single address is the shortest element; an aligned power-of-two block
    is a prefix (what ``nft list`` prints back); anything else a range.
    """
    if first == last:
        return format_address(family, first)
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        return {'prefix': {'addr': format_address(family, first),
                           'len': BITS[family] - size.bit_length() + 1}}
    return {'range': [format_address(family, first),
                      format_address(family, last)]}
