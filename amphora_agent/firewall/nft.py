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
"""The nftables JSON vocabulary the renderer writes its rules in.

Objects of this agent's table and the expressions of its rules, as
libnftables' JSON API spells them (``man libnftables-json``).
"""

FAMILY = 'inet'
TABLE = 'sriov_octavia'

ACCEPT = {'accept': None}
DROP = {'drop': None}
L4PROTO = {'meta': {'key': 'l4proto'}}
NFPROTO = {'meta': {'key': 'nfproto'}}
SADDR = {4: {'payload': {'protocol': 'ip', 'field': 'saddr'}},
         6: {'payload': {'protocol': 'ip6', 'field': 'saddr'}}}
NFPROTO_NAME = {4: 'ipv4', 6: 'ipv6'}
ADDR_TYPE = {4: 'ipv4_addr', 6: 'ipv6_addr'}
ICMP = {4: 'icmp', 6: 'icmpv6'}


def payload(protocol, field):
    return {'payload': {'protocol': protocol, 'field': field}}


def match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def counter(name):
    return {'counter': name}


def table_object(kind, **fields):
    return {kind: dict(family=FAMILY, table=TABLE, **fields)}


def rule(chain, *expr):
    return {'add': table_object('rule', chain=chain, expr=list(expr))}
