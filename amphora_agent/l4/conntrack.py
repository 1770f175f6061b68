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
"""The flows conntrack holds, read from the thread inside the namespace.

``/proc/thread-self/net/nf_conntrack`` is the calling thread's namespace
(``/proc/net`` would be the process's: its main thread never entered the
data namespace); where the kernel has no procfs view of conntrack the
same is asked over ctnetlink (pyroute2's NFCTSocket, opened on the same
thread so it talks to the same namespace).
"""

import collections
import ipaddress
import socket

_PROC = '/proc/thread-self/net/nf_conntrack'
_COUNT = '/proc/sys/net/netfilter/nf_conntrack_count'
_PROTOCOLS = {socket.IPPROTO_UDP: 'udp', 132: 'sctp', socket.IPPROTO_TCP:
              'tcp'}

# The original direction's destination and the reply's source: which
# listener a flow came to and which member serves it.
Flow = collections.namedtuple(
    'Flow', 'protocol listener_address listener_port member_address '
            'member_port')


def _canonical(text):
    return ipaddress.ip_address(text).compressed


def _parse_line(line):
    fields = line.split()
    if len(fields) < 4:
        return None
    seen = {}
    for token in fields[4:]:
        key, sep, value = token.partition('=')
        if sep and key in ('src', 'dst', 'sport', 'dport'):
            seen.setdefault(key, []).append(value)
    try:
        return Flow(fields[2], _canonical(seen['dst'][0]),
                    int(seen['dport'][0]), _canonical(seen['src'][1]),
                    int(seen['sport'][1]))
    except (KeyError, IndexError, ValueError):
        # ICMP and protocols without ports.
        return None


def _from_netlink():
    from pyroute2 import NFCTSocket

    flows = []
    with NFCTSocket() as sock:
        for message in sock.dump():
            try:
                original = message.get_attr('CTA_TUPLE_ORIG')
                reply = message.get_attr('CTA_TUPLE_REPLY')
                protocol = original.get_attr('CTA_TUPLE_PROTO')
                number = protocol.get_attr('CTA_PROTO_NUM')
                ips = original.get_attr('CTA_TUPLE_IP')
                reply_ips = reply.get_attr('CTA_TUPLE_IP')
                reply_protocol = reply.get_attr('CTA_TUPLE_PROTO')
                flows.append(Flow(
                    _PROTOCOLS.get(number, str(number)),
                    _canonical(ips.get_attr('CTA_IP_V4_DST') or
                               ips.get_attr('CTA_IP_V6_DST')),
                    protocol.get_attr('CTA_PROTO_DST_PORT'),
                    _canonical(reply_ips.get_attr('CTA_IP_V4_SRC') or
                               reply_ips.get_attr('CTA_IP_V6_SRC')),
                    reply_protocol.get_attr('CTA_PROTO_SRC_PORT')))
            except (AttributeError, TypeError, ValueError):
                continue
    return flows


def flows():
    """Every flow of the calling thread's namespace with ports."""
    try:
        with open(_PROC) as stream:
            lines = stream.readlines()
    except FileNotFoundError:
        return _from_netlink()
    return [flow for flow in map(_parse_line, lines) if flow is not None]


def count():
    """nf_conntrack_count of the calling thread's namespace, or None.

    The sysctl exists only once conntrack is loaded in the namespace.
    """
    try:
        with open(_COUNT) as stream:
            return int(stream.read())
    except (OSError, ValueError):
        return None


def tally(document, found):
    """Active flows per listener id and per member id of ``document``."""
    listeners = {}
    members = {}
    for listener in document.listeners:
        protocol = listener.protocol.lower()
        for _, address in listener.addresses:
            listeners[(protocol, address, listener.port)] = listener
    per_listener = dict.fromkeys((item.id for item in document.listeners), 0)
    per_member = {}
    for listener, member in document.members():
        members[(listener.id, member.address, member.port)] = member.id
        per_member[member.id] = 0
    for flow in found:
        listener = listeners.get((flow.protocol, flow.listener_address,
                                  flow.listener_port))
        if listener is None:
            continue
        per_listener[listener.id] += 1
        member = members.get((listener.id, flow.member_address,
                              flow.member_port))
        if member is not None:
            per_member[member] += 1
    return per_listener, per_member
