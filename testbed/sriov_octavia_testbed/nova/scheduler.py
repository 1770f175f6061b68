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
"""Host selection: Nova's filter scheduler reduced to the filters that matter
for SR-IOV amphorae.

Filters, in the order Nova runs their equivalents: availability zone
(``AvailabilityZoneFilter`` on the zone of the host's aggregates),
aggregate metadata against flavor extra specs
(``AggregateInstanceExtraSpecsFilter``), server group policy
(``ServerGroupAffinityFilter`` / ``ServerGroupAntiAffinityFilter``) and free
virtual functions per physical network (``PciPassthroughFilter``). The
survivors are weighed like Nova spreads instances: fewest members of a
soft-anti-affinity group, then fewest instances, then the inventory order.
"""

import collections
import dataclasses
import operator

DEFAULT_AVAILABILITY_ZONE = 'nova'
AGGREGATE_SCOPE = 'aggregate_instance_extra_specs'
NO_VALID_HOST = 'No valid host was found. '
NOT_ENOUGH_HOSTS = 'There are not enough hosts available.'


class NoValidHost(Exception):
    def __init__(self, details, reason=NOT_ENOUGH_HOSTS):
        super().__init__(NO_VALID_HOST + reason)
        self.details = details


@dataclasses.dataclass
class HostState:
    name: str
    availability_zone: str
    # aggregate metadata key -> set of values over the host's aggregates
    metadata: dict
    # physical network -> number of free VFs
    free_vfs: dict
    instance_count: int = 0


@dataclasses.dataclass
class RequestSpec:
    extra_specs: dict = dataclasses.field(default_factory=dict)
    availability_zone: str = None
    forced_host: str = None
    group_policy: str = None
    group_max_per_host: int = 1
    # hosts of the group's other members, one entry per member
    group_hosts: list = dataclasses.field(default_factory=list)
    # physical network -> number of VFs the server needs
    pci_requests: dict = dataclasses.field(default_factory=dict)


def parse_availability_zone(requested):
    """Split Nova's ``zone[:host[:node]]`` syntax into (zone, host)."""
    if not requested:
        return None, None
    zone, _sep, rest = requested.partition(':')
    host = rest.split(':')[0] or None
    return zone or None, host


def host_states(hosts, aggregates, free_vfs_by_host, instance_counts):
    """Build HostStates from the emulator's aggregates and VF pool."""
    states = []
    for host in hosts:
        metadata = collections.defaultdict(set)
        zone = None
        for aggregate in aggregates:
            if host not in aggregate['hosts']:
                continue
            for key, value in aggregate['metadata'].items():
                metadata[key].add(value)
            zone = zone or aggregate['metadata'].get('availability_zone')
        states.append(HostState(
            name=host,
            availability_zone=zone or DEFAULT_AVAILABILITY_ZONE,
            metadata=dict(metadata),
            free_vfs=dict(free_vfs_by_host.get(host, {})),
            instance_count=instance_counts.get(host, 0)))
    return states


def _numeric(value):
    return float(value)


# Extra spec operators, as documented for Nova's extra specs matching.
# Numeric ones compare floats; "=" means "at least".
_NUMERIC_OPS = {
    '=': operator.ge, '==': operator.eq, '!=': operator.ne,
    '>=': operator.ge, '<=': operator.le,
}
_STRING_OPS = {
    's==': operator.eq, 's!=': operator.ne, 's>=': operator.ge,
    's>': operator.gt, 's<=': operator.le, 's<': operator.lt,
}


def spec_matches(value, requirement):
    """Whether one aggregate metadata value satisfies one extra spec value."""
    words = str(requirement).split()
    if not words:
        return str(value) == str(requirement)
    op = words[0]
    if op == '<or>':
        # "<or> a <or> b": any of the alternatives.
        alternatives = [w for w in words if w != '<or>']
        return str(value) in alternatives
    operand = ' '.join(words[1:])
    if op == '<in>':
        return operand in str(value)
    if op == '<all-in>':
        return all(word in str(value).split() for word in words[1:])
    if op in _STRING_OPS:
        return _STRING_OPS[op](str(value), operand)
    if op in _NUMERIC_OPS:
        try:
            return _NUMERIC_OPS[op](_numeric(value), _numeric(operand))
        except ValueError:
            return False
    return str(value) == str(requirement)


def aggregate_extra_specs(extra_specs):
    """The flavor extra specs the aggregate filter checks, unscoped."""
    specs = {}
    for key, value in extra_specs.items():
        scope, sep, name = key.partition(':')
        if not sep:
            specs[key] = value
        elif scope == AGGREGATE_SCOPE:
            specs[name] = value
    return specs


def _zone_filter(spec, host):
    if spec.forced_host and host.name != spec.forced_host:
        return False
    return (not spec.availability_zone
            or host.availability_zone == spec.availability_zone)


def _aggregate_filter(spec, host):
    for key, requirement in aggregate_extra_specs(spec.extra_specs).items():
        values = host.metadata.get(key)
        if not values or not any(spec_matches(v, requirement)
                                 for v in values):
            return False
    return True


def _group_filter(spec, host):
    on_host = spec.group_hosts.count(host.name)
    if spec.group_policy == 'anti-affinity':
        return on_host < spec.group_max_per_host
    if spec.group_policy == 'affinity' and spec.group_hosts:
        return host.name in spec.group_hosts
    return True


def _pci_filter(spec, host):
    return all(host.free_vfs.get(physnet, 0) >= count
               for physnet, count in spec.pci_requests.items())


FILTERS = (
    ('AvailabilityZoneFilter', _zone_filter),
    ('AggregateInstanceExtraSpecsFilter', _aggregate_filter),
    ('ServerGroupAntiAffinityFilter/ServerGroupAffinityFilter',
     _group_filter),
    ('PciPassthroughFilter', _pci_filter),
)


def _weight(spec, index, host):
    soft_members = (spec.group_hosts.count(host.name)
                    if spec.group_policy == 'soft-anti-affinity' else 0)
    soft_affinity = (-spec.group_hosts.count(host.name)
                     if spec.group_policy == 'soft-affinity' else 0)
    return (soft_members, soft_affinity, host.instance_count, index)


def select_host(spec, hosts):
    """Return the HostState to build on, or raise NoValidHost."""
    candidates = list(enumerate(hosts))
    trail = []
    for name, host_filter in FILTERS:
        candidates = [(i, h) for i, h in candidates if host_filter(spec, h)]
        trail.append(f'{name} returned {len(candidates)} host(s)')
        if not candidates:
            details = '; '.join(trail)
            raise NoValidHost(details)
    return min(candidates, key=lambda item: _weight(spec, *item))[1]
