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
"""The L4 document as one nftables JSON transaction (SPEC: data path).

Two kinds of transaction come out of here:

* ``build``: the whole table, deleted and made again in one transaction,
  so a new document is in force all at once or not at all. The counters'
  values are carried over by name, so ``stot`` and the metrics do not drop
  to zero when a member is added.
* ``choices``: only the member-choice chains ``c_<n>``, flushed and filled
  again. Health changes and the LEAST_CONNECTIONS refresh use it: the
  ``ct count`` bounds live in the listener chains, whose lists of flows a
  rewritten rule would lose, so those chains are never touched by it.
"""

from amphora_agent.firewall import nft

FAMILY = 'inet'
TABLE = 'sriov_octavia_l4'
# Fixed, so that both amphorae of a pair hash a client to the same member
# and a failover keeps it there.
SEED = 0x5a10c7a5
SAFE_PROTOCOLS = {'set': ['udp', 'sctp']}
# Where the source address starts in the network header, in bits.
_SADDR_OFFSET = {4: 96, 6: 64}
_PREFIX_BITS = {4: 32, 6: 128}
_IP = {4: 'ip', 6: 'ip6'}
_SET_TYPE = {4: ['ipv4_addr', 'inet_proto', 'inet_service'],
             6: ['ipv6_addr', 'inet_proto', 'inet_service']}
_HOOK_PRIORITY_RAW = -300
_HOOK_PRIORITY_DSTNAT = -100
_HOOK_PRIORITY_SRCNAT = 100
_HOOK_PRIORITY_FILTER = 0
# Each listener's counters; the bytes ones count every packet of its flows.
LISTENER_COUNTERS = ('flows', 'refused', 'no_member', 'bytes_in',
                     'bytes_out')
# ICMP errors about a flow, so that conntrack translates them back to the
# client (a member's port unreachable); errors about nothing tracked create
# no state.
_ICMP_ERRORS = {4: ('icmp', ['destination-unreachable', 'time-exceeded',
                             'parameter-problem']),
                6: ('icmpv6', ['destination-unreachable', 'packet-too-big',
                               'time-exceeded', 'parameter-problem'])}


def obj(kind, **fields):
    return {kind: dict(family=FAMILY, table=TABLE, **fields)}


def add(kind, **fields):
    return {'add': obj(kind, **fields)}


def rule(chain, *expr):
    return add('rule', chain=chain, expr=list(expr))


def concat(*items):
    return {'concat': list(items)}


def jump(chain):
    return {'jump': {'target': chain}}


def ct(key):
    return {'ct': {'key': key}}


def ct_count_over(limit):
    # "ct count over N": the flow that would be the N+1th is refused.
    return {'ct count': {'val': limit, 'inv': True}}


def counter_name(kind, ident):
    if kind == 'member':
        return f'l4_member_{ident}_flows'
    return f'l4_{ident}_{kind}'


def listener_chain(index):
    return f'l_{index}'


def choice_chain(index):
    return f'c_{index}'


def member_chain(index, member_index):
    return f'm_{index}_{member_index}'


def available(pool, health):
    """The members new flows may go to, given ``health`` (member id: state).

    Enabled, weight above zero and not DOWN; backup members only when no
    other member is available.
    """
    usable = [member for member in pool.members
              if member.enabled and member.weight > 0 and
              health.get(member.id) != 'DOWN']
    primary = [member for member in usable if not member.backup]
    return primary or usable


def member_state(member, health):
    """What GET and the status endpoint show for a member."""
    if not member.enabled:
        return 'MAINT'
    return health.get(member.id, 'NO CHECK')


def _slot_map(entries):
    """``[(chain, slots), ...]`` as vmap elements over ``0..total-1``."""
    elements = []
    start = 0
    for chain, slots in entries:
        if slots <= 0:
            continue
        last = start + slots - 1
        key = start if slots == 1 else {'range': [start, last]}
        elements.append([key, jump(chain)])
        start = last + 1
    return start, elements


def _hash_source(pool, family):
    """The source bits hashed: the address, or its granularity prefix.

    nft 1.0.6 hashes raw payload in whole bytes only (``@nh,96,20`` is
    refused), and ``ip saddr & mask`` is refused as a hash input. Rounding
    the prefix down to a byte keeps the promise that matters (sources in
    one granularity prefix share a member), only spreads coarser.
    """
    prefix = (pool.persistence or {}).get(family)
    if prefix is None or prefix >= _PREFIX_BITS[family]:
        return nft.payload(_IP[family], 'saddr')
    prefix -= prefix % 8
    return {'payload': {'base': 'nh', 'offset': _SADDR_OFFSET[family],
                        'len': prefix}}


def _choice_rules(index, listener, health, slots):
    """The rules of ``c_<index>``: one vmap per address family."""
    chain = choice_chain(index)
    rules = []
    pool = listener.pool
    families = {family for family, _ in listener.addresses}
    if pool is not None:
        chosen = available(pool, health)
        weights = slots or {}
        for family in sorted(families):
            entries = [(member_chain(index, k),
                        weights.get(member.id, member.weight))
                       for k, member in enumerate(pool.members)
                       if member in chosen and member.family == family]
            total, elements = _slot_map(entries)
            if not total:
                continue
            if pool.hashed:
                key = {'jhash': {'mod': total, 'seed': SEED,
                                 'expr': _hash_source(pool, family)}}
            else:
                key = {'numgen': {'mode': 'inc', 'mod': total,
                                  'offset': 0}}
            rules.append(rule(
                chain,
                nft.match(nft.NFPROTO, nft.NFPROTO_NAME[family]),
                {'vmap': {'key': key, 'data': {'set': elements}}}))
    rules.append(rule(chain,
                      {'counter': counter_name('no_member', listener.id)},
                      nft.DROP))
    return rules


def choices(document, health, slots=None):
    """Flush and refill every choice chain: a transaction's commands.

    ``slots``: {listener id: {member id: slots}} replacing the weights of
    LEAST_CONNECTIONS pools (see amphora_agent.l4.balance).
    """
    commands = []
    for index, listener in enumerate(document.listeners):
        commands.append({'flush': obj('chain', name=choice_chain(index))})
        commands.extend(_choice_rules(index, listener, health,
                                      (slots or {}).get(listener.id)))
    return commands


def counter_names(document):
    names = ['over_flow_limit', 'l4_unsolicited']
    for listener in document.listeners:
        names += [counter_name(kind, listener.id)
                  for kind in LISTENER_COUNTERS]
        if listener.pool is not None:
            names += [counter_name('member', member.id)
                      for member in listener.pool.members]
    return list(dict.fromkeys(names))


def _set_elements(document):
    """Elements of the listener and member sets, per family."""
    listeners = {4: {}, 6: {}}
    members = {4: {}, 6: {}}
    for listener in document.listeners:
        protocol = listener.protocol.lower()
        for family, address in listener.addresses:
            listeners[family][(address, protocol, listener.port)] = None
        if listener.pool is None:
            continue
        for member in listener.pool.members:
            members[member.family][
                (member.address, protocol, member.port)] = None
            # Replies to UDP and SCTP health probes are tracked too.
            probe = (member.monitor_address or member.address,
                     protocol, member.monitor_port or member.port)
            family = 6 if ':' in probe[0] else 4
            members[family][probe] = None
    return listeners, members


def _base_chain(name, kind, hook, priority):
    return add('chain', name=name, type=kind, hook=hook, prio=priority,
               policy='accept')


def _tuple(family, address_field, port_field):
    return concat(nft.payload(_IP[family], address_field), nft.L4PROTO,
                  nft.payload('th', port_field))


def build(document, health, ports, counters=None):
    """The transaction putting ``document`` in force, whole.

    ``health``: {member id: state}; ``ports``: the namespace's ephemeral
    port range (first, last), where member replies must come back to;
    ``counters``: {name: (packets, bytes)} carried over.
    """
    counters = counters or {}
    table = obj('table', name=TABLE)
    # "add" first: deleting a table that does not exist fails the whole
    # transaction.
    commands = [{'add': table}, {'delete': table}, {'add': table}]
    for name in counter_names(document):
        packets, octets = counters.get(name, (0, 0))
        commands.append(add('counter', name=name, packets=packets,
                            bytes=octets))
    listeners, members = _set_elements(document)
    for family in (4, 6):
        for name, elements in ((f'listeners_v{family}', listeners[family]),
                               (f'members_v{family}', members[family])):
            commands.append(add('set', name=name, type=_SET_TYPE[family]))
            if elements:
                commands.append(add('element', name=name, elem=[
                    concat(*key) for key in elements]))
    commands += [
        _base_chain('raw_prerouting', 'filter', 'prerouting',
                    _HOOK_PRIORITY_RAW),
        _base_chain('raw_output', 'filter', 'output', _HOOK_PRIORITY_RAW),
        _base_chain('dispatch', 'nat', 'prerouting', _HOOK_PRIORITY_DSTNAT),
        _base_chain('source_nat', 'nat', 'postrouting',
                    _HOOK_PRIORITY_SRCNAT),
        _base_chain('tracked', 'filter', 'prerouting',
                    _HOOK_PRIORITY_FILTER),
    ]
    for index, listener in enumerate(document.listeners):
        commands.append(add('chain', name=listener_chain(index)))
        commands.append(add('chain', name=choice_chain(index)))
        for k, _ in enumerate(listener.pool.members if listener.pool
                              else ()):
            commands.append(add('chain', name=member_chain(index, k)))
    commands += _raw_rules()
    commands += _dispatch_rules(document)
    for index, listener in enumerate(document.listeners):
        commands += _listener_rules(index, listener)
        commands += _choice_rules(index, listener, health, None)
        commands += _member_rules(index, listener)
    commands.append(rule(
        'source_nat', nft.match(nft.L4PROTO, SAFE_PROTOCOLS),
        nft.match(ct('status'), 'dnat', op='in'),
        nft.match(ct('mark'), 0, op='!='),
        {'masquerade': {'port': {'range': list(ports)},
                        'flags': 'random'}}))
    # A packet shaped like a member's reply that no flow expects: its
    # state is dropped with it.
    commands.append(rule(
        'tracked', nft.match(ct('state'), 'new', op='in'),
        # "ct status != dnat" would compare the whole status word.
        nft.match({'&': [ct('status'), 'dnat']}, 0),
        {'counter': 'l4_unsolicited'}, nft.DROP))
    commands += _accounting(document)
    return commands


def _accounting(document):
    # Octavia's listener statistics (bytes in and out): the flow's mark
    # names its listener, its direction says which way the bytes go.
    commands = []
    for direction, kind in (('original', 'bytes_in'),
                            ('reply', 'bytes_out')):
        name = f'{kind}_counters'
        commands.append(add('map', name=name, type='mark', map='counter'))
        elements = [[index + 1, counter_name(kind, listener.id)]
                    for index, listener in enumerate(document.listeners)]
        if elements:
            commands.append(add('element', name=name, elem=elements))
        commands.append(rule(
            'tracked', nft.match(ct('direction'), direction),
            {'counter': {'map': {'key': ct('mark'), 'data': f'@{name}'}}}))
    return commands


def _raw_rules():
    commands = []
    for family in (4, 6):
        commands.append(rule(
            'raw_prerouting',
            nft.match(_tuple(family, 'daddr', 'dport'),
                      f'@listeners_v{family}'),
            {'return': None}))
        commands.append(rule(
            'raw_prerouting',
            nft.match(_tuple(family, 'saddr', 'sport'),
                      f'@members_v{family}'),
            {'return': None}))
        protocol, types = _ICMP_ERRORS[family]
        commands.append(rule(
            'raw_prerouting',
            nft.match(nft.payload(protocol, 'type'), {'set': types}),
            {'return': None}))
    # Everything else stays stateless: the firewall and haproxy need no
    # conntrack, and untracked packets cost it nothing.
    commands.append(rule('raw_prerouting', {'notrack': None}))
    # A member on the client's own link makes the amphora forward a
    # datagram out of the interface it came in on, for which the kernel
    # would tell the client to go to the member directly: the member's
    # address is nothing the client may use.
    commands.append(rule('raw_output',
                         nft.match(nft.payload('icmp', 'type'), 'redirect'),
                         nft.DROP))
    commands.append(rule('raw_output',
                         nft.match(nft.payload('icmpv6', 'type'),
                                   'nd-redirect'),
                         nft.DROP))
    commands.append(rule('raw_output',
                         nft.match(nft.L4PROTO, SAFE_PROTOCOLS),
                         {'return': None}))
    commands.append(rule('raw_output', {'notrack': None}))
    return commands


def _dispatch_rules(document):
    commands = [rule('dispatch', ct_count_over(document.flow_limit),
                     {'counter': 'over_flow_limit'}, nft.DROP)]
    for family in (4, 6):
        elements = []
        for index, listener in enumerate(document.listeners):
            for address_family, address in listener.addresses:
                if address_family == family:
                    elements.append([
                        concat(listener.protocol.lower(), address,
                               listener.port),
                        jump(listener_chain(index))])
        if elements:
            key = concat(nft.L4PROTO, nft.payload(_IP[family], 'daddr'),
                         nft.payload('th', 'dport'))
            commands.append(rule('dispatch', {'vmap': {
                'key': key, 'data': {'set': elements}}}))
    return commands


def _listener_rules(index, listener):
    chain = listener_chain(index)
    # The mark makes the flow ours for source_nat; 0 is "not ours".
    commands = [rule(chain, {'mangle': {'key': ct('mark'),
                                        'value': index + 1}})]
    if listener.connection_limit:
        commands.append(rule(
            chain, ct_count_over(listener.connection_limit),
            {'counter': counter_name('refused', listener.id)}, nft.DROP))
    commands.append(rule(chain,
                         {'counter': counter_name('flows', listener.id)},
                         jump(choice_chain(index))))
    return commands


def _member_rules(index, listener):
    commands = []
    if listener.pool is None:
        return commands
    for k, member in enumerate(listener.pool.members):
        # nft needs the protocol pinned before a port can be rewritten.
        commands.append(rule(
            member_chain(index, k),
            {'counter': counter_name('member', member.id)},
            nft.match(nft.L4PROTO, listener.protocol.lower()),
            {'dnat': {'family': _IP[member.family], 'addr': member.address,
                      'port': member.port}}))
    return commands


def counters_from_listing(listing):
    """{name: (packets, bytes)} of our table's counters in ``listing``."""
    found = {}
    for item in listing.get('nftables', ()):
        body = item.get('counter')
        if body and body.get('table') == TABLE:
            found[body['name']] = (body.get('packets', 0),
                                   body.get('bytes', 0))
    return found
