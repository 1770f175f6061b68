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
"""Which hosts Nova's AggregateInstanceExtraSpecsFilter lets a flavor on.

The filter compares a flavor's extra specs with the metadata of the
aggregates a host belongs to: a spec without a scope, or scoped
``aggregate_instance_extra_specs:``, must be satisfied by one of the values
the host's aggregates give that key; specs with any other scope belong to
other filters and are ignored. A host without the key fails. Values may
carry the operators of Nova's extra_specs_ops (``<in>``, ``<or>``, ``s==``,
``>=``, ...); a plain value must equal the aggregate's.
"""

import operator

SCOPE = 'aggregate_instance_extra_specs'

_NUMERIC = {'=': operator.ge, '==': operator.eq, '!=': operator.ne,
            '>=': operator.ge, '<=': operator.le}
_STRING = {'s==': operator.eq, 's!=': operator.ne, 's<': operator.lt,
           's<=': operator.le, 's>': operator.gt, 's>=': operator.ge}


def relevant_specs(extra_specs):
    """The specs the filter looks at, with their scope removed."""
    specs = {}
    for key, value in (extra_specs or {}).items():
        scope, sep, name = key.partition(':')
        if not sep:
            specs[key] = value
        elif scope == SCOPE:
            specs[name] = value
    return specs


def _matches(value, requirement):
    words = str(requirement).split()
    if len(words) < 2:
        return str(value) == str(requirement)
    op, operands = words[0], words[1:]
    if op == '<in>':
        return operands[0] in str(value)
    if op == '<or>':
        return str(value) in operands[::2]
    if op in _STRING:
        return _STRING[op](str(value), operands[0])
    if op in _NUMERIC:
        try:
            return _NUMERIC[op](float(value), float(operands[0]))
        except ValueError:
            return False
    return str(value) == str(requirement)


def host_metadata(aggregates):
    """``{host: {key: {values}}}`` over all aggregates of each host."""
    hosts = {}
    for aggregate in aggregates:
        for host in aggregate.hosts or []:
            keys = hosts.setdefault(host, {})
            for key, value in (aggregate.metadata or {}).items():
                keys.setdefault(key, set()).add(value)
    return hosts


def eligible_hosts(extra_specs, aggregates):
    """Hosts in aggregates that pass the filter for these extra specs.

    Hosts in no aggregate are not counted: nothing can be known of them
    through the API, and a flavor without specs the filter looks at is
    placed anywhere anyway.
    """
    specs = relevant_specs(extra_specs)
    return sorted(
        host for host, metadata in host_metadata(aggregates).items()
        if all(any(_matches(value, required)
                   for value in metadata.get(key, ()))
               for key, required in specs.items()))
