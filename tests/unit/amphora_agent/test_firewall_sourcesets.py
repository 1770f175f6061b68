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
"""A listener's sources split into hash sets by prefix length."""

import ipaddress
import random

from amphora_agent.firewall import addresses
from amphora_agent.firewall import sourcesets

Part = sourcesets.Part


def split(family, *texts):
    networks = [addresses.parse_network(text) for text in texts]
    return sourcesets.split(family, addresses.collapse(networks, family))


def test_hosts_and_slash_24s_are_hashed_longest_first():
    # Longest first whatever the counts: the /24s outnumber the hosts.
    assert split(4, '198.51.100.0/24', '10.0.0.0/8', '192.0.2.3',
                 '203.0.113.0/24', '192.0.2.1', '198.18.0.0/24') == [
        Part(32, ['192.0.2.1', '192.0.2.3']),
        Part(24, ['198.18.0.0', '198.51.100.0', '203.0.113.0']),
        Part(8, ['10.0.0.0'])]
    assert split(6, '2001:db9::/32', '2001:db8:1::1', '2001:db8::/48',
                 '192.0.2.1') == [
        Part(128, ['2001:db8:1::1']), Part(48, ['2001:db8::']),
        Part(32, ['2001:db9::'])]
    assert split(6, '192.0.2.1') == []


def test_a_merged_interval_is_cut_into_aligned_blocks():
    # 10.0.0.0-10.0.2.255 is no CIDR: a /23 and a /24.
    assert split(4, '10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24') == [
        Part(24, ['10.0.2.0']), Part(23, ['10.0.0.0'])]
    # 10.0.1.0-10.0.2.255 is /23-sized but not /23-aligned.
    assert split(4, '10.0.1.0/24', '10.0.2.0/24') == [
        Part(24, ['10.0.1.0', '10.0.2.0'])]
    assert split(4, *(f'10.0.0.{host}' for host in range(1, 7))) == [
        Part(32, ['10.0.0.1', '10.0.0.6']),
        Part(31, ['10.0.0.2', '10.0.0.4'])]
    assert split(6, '2001:db8::/33', '2001:db8:8000::/33',
                 '2001:db9::/32') == [Part(31, ['2001:db8::'])]


def test_overlapping_input_gives_the_covering_network_only():
    assert split(4, '10.0.1.0/24', '10.0.0.0/16', '10.0.200.0/24',
                 '10.0.255.7', '10.0.255.0/24') == [Part(16, ['10.0.0.0'])]
    assert split(6, '2001:db8::/32', '2001:db8:1::/48',
                 '2001:db8::1') == [Part(32, ['2001:db8::'])]


def test_the_least_common_lengths_share_the_interval_set():
    # L - 15 networks of each length L from /16 to /25: /16 and /17 are
    # the two least common of ten lengths.
    texts = [f'{length}.{index}.0.0/{length}' for length in range(16, 26)
             for index in range(length - 15)]
    parts = split(4, *texts)
    assert len(parts) == sourcesets.MAX_HASHED + 1
    assert [part.prefixlen for part in parts] == list(range(25, 17, -1)) + [
        None]
    assert parts[0] == Part(25, [f'25.{index}.0.0' for index in range(10)])
    assert parts[-1] == Part(None, [
        {'prefix': {'addr': '16.0.0.0', 'len': 16}},
        {'prefix': {'addr': '17.0.0.0', 'len': 17}},
        {'prefix': {'addr': '17.1.0.0', 'len': 17}}])


def test_equally_common_lengths_hash_the_longer():
    # Nine lengths, one network each: /24 is the one left over.
    parts = split(4, *(f'10.{length}.0.0/{length}'
                       for length in range(24, 33)))
    assert [part.prefixlen for part in parts] == list(range(32, 24, -1)) + [
        None]
    assert parts[-1] == Part(None, [{'prefix': {'addr': '10.24.0.0',
                                                'len': 24}}])
    # Lengths are counted after the cut: 192.0.2.0-192.0.5.255 is two
    # /23s, which outnumber the /25 left over.
    parts = split(4, *[f'10.{length}.0.0/{length}'
                       for length in range(25, 33)] + [
        '192.0.2.0/24', '192.0.3.0/24', '192.0.4.0/24', '192.0.5.0/24'])
    assert Part(23, ['192.0.2.0', '192.0.4.0']) in parts
    assert parts[-1] == Part(None, [{'prefix': {'addr': '10.25.0.0',
                                                'len': 25}}])


def test_part_suffix_and_names():
    source = sourcesets.of_networks(
        [addresses.parse_network(text) for text in sorted(
            ['192.0.2.1', '198.51.100.0/24'] +
            [f'10.{length}.0.0/{length}' for length in range(16, 24)])])[4]
    names = [source.name('tcp_80', part) for part in source.parts]
    prefix = f's_{source.digest}_tcp_80_4'
    assert names == [prefix + '_p32', prefix + '_p24'] + [
        f'{prefix}_p{length}' for length in range(23, 17, -1)] + [
        prefix + '_iv']
    assert all(sourcesets.is_content_named(name) for name in names)


def test_masks():
    assert sourcesets.mask(4, 0) == '0.0.0.0'
    assert sourcesets.mask(4, 8) == '255.0.0.0'
    assert sourcesets.mask(4, 23) == '255.255.254.0'
    assert sourcesets.mask(4, 32) == '255.255.255.255'
    assert sourcesets.mask(6, 1) == '8000::'
    assert sourcesets.mask(6, 48) == 'ffff:ffff:ffff::'
    assert sourcesets.mask(6, 64) == 'ffff:ffff:ffff:ffff::'
    assert sourcesets.mask(6, 127) == (
        'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')
    assert sourcesets.mask(6, 128) == (
        'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
    for family, zero in ((4, '0.0.0.0'), (6, '::')):
        for length in range(addresses.BITS[family] + 1):
            assert sourcesets.mask(family, length) == str(
                ipaddress.ip_network(f'{zero}/{length}').netmask)


# Property: the parts admit exactly the input --------------------------------

def _interval_bounds(family, element):
    """``(first, last)`` of an interval set element."""
    if isinstance(element, str):
        value = addresses.parse_address(element)[1]
        return value, value
    if 'prefix' in element:
        value = addresses.parse_address(element['prefix']['addr'])[1]
        host = (1 << (addresses.BITS[family] - element['prefix']['len'])) - 1
        assert value & host == 0
        return value, value | host
    first, last = element['range']
    return (addresses.parse_address(first)[1],
            addresses.parse_address(last)[1])


def _admitted_by_parts(family, parts):
    """A predicate: would the listener's rules admit an address?"""
    hashed = []
    intervals = []
    for part in parts:
        if part.prefixlen is None:
            intervals = [_interval_bounds(family, element)
                         for element in part.elements]
        else:
            netmask = addresses.parse_address(
                sourcesets.mask(family, part.prefixlen))[1]
            hashed.append((netmask, set(part.elements)))

    def admitted(value):
        return any(addresses.format_address(family, value & netmask) in
                   elements for netmask, elements in hashed) or any(
            first <= value <= last for first, last in intervals)
    return admitted


def _random_networks(rng, family, base, shortest, count):
    """``count`` networks in ``base``, mostly /``shortest`` or longer."""
    bits = addresses.BITS[family]
    texts = []
    for _ in range(count):
        length = rng.randint(shortest, bits)
        if rng.random() < 0.05:
            length = rng.randint(shortest - 8, shortest)
        value = base | rng.getrandbits(bits - shortest + 8)
        value &= ~((1 << (bits - length)) - 1)
        texts.append(f'{addresses.format_address(family, value)}/{length}')
    return [addresses.parse_network(text) for text in texts]


def test_the_parts_admit_exactly_the_input_networks():
    rng = random.Random(20240611)
    bases = {4: (addresses.parse_address('10.0.0.0')[1], 16),
             6: (addresses.parse_address('2001:db8::')[1], 112)}
    seen_intervals = 0
    for _ in range(40):
        family = rng.choice((4, 6))
        bits = addresses.BITS[family]
        base, shortest = bases[family]
        networks = _random_networks(rng, family, base, shortest,
                                    rng.randint(1, 400))
        intervals = addresses.collapse(networks, family)
        parts = sourcesets.split(family, intervals)

        lengths = [part.prefixlen for part in parts]
        hashed = [length for length in lengths if length is not None]
        assert hashed == sorted(hashed, reverse=True)
        assert len(set(hashed)) == len(hashed) <= sourcesets.MAX_HASHED
        assert None not in lengths[:-1]
        seen_intervals += lengths[-1] is None
        # The blocks partition the collapsed intervals: no address twice.
        covered = sum(1 << (bits - part.prefixlen) for part in parts
                      if part.prefixlen is not None for _ in part.elements)
        covered += sum(last - first + 1 for part in parts
                       if part.prefixlen is None
                       for first, last in (_interval_bounds(family, element)
                                           for element in part.elements))
        assert covered == sum(last - first + 1
                              for first, last, _ in intervals)

        admitted = _admitted_by_parts(family, parts)
        probes = [base | rng.getrandbits(bits - shortest + 8)
                  for _ in range(2000)]
        for network in networks:
            last = network[1] | ((1 << (bits - network[2])) - 1)
            probes.extend((network[1] - 1, network[1], last, last + 1))
        for value in probes:
            inside = any(
                value >> (bits - network[2]) == network[1] >> (
                    bits - network[2]) for network in networks)
            assert admitted(value) == inside, (
                addresses.format_address(family, value))
    # The inputs did exercise the interval set.
    assert seen_intervals > 5
