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
"""Turn a SecurityGroup into nftables JSON transactions.

Layout of the ``inet sriov_octavia`` table:

* one base chain per filtered interface, ``in_<ifname>``, hooked on
  ``ingress`` of that device with policy drop. An ingress hook sees a packet
  before anything else in the stack, costs nothing for the other interfaces,
  and an ``inet`` ingress chain lets ARP through (only IP is classified);
* VIP interfaces first look up a verdict map keyed on
  ``meta l4proto . th dport`` that jumps to one chain per listener. That
  chain matches the source against the listener's own sets: per address
  family, a fixed-size hash set for each common prefix length, looked up
  with the source masked to that length, and one interval set for the rest
  (see sourcesets). A packet's cost therefore grows with the number of
  distinct prefix lengths, not with the number of CIDRs. A listener chain
  ends in a drop: a listener port is decided by its CIDRs alone;
* then IPv4 and IPv6 non-first fragments are accepted: the ingress hook sees
  fragments before reassembly, only the first fragment carries the ports and
  it is filtered, so a fragment train from a refused source never
  reassembles;
* member replies: with a member list, ``saddr . l4proto . sport`` exactly in
  a set and the destination port in the local ephemeral range (where the
  amphora's own connections come from), ICMP echo replies from ping-monitored
  members. With members unknown, their shape: TCP with ACK set (so never a
  bare SYN), UDP/SCTP to the ephemeral range, echo replies;
* VRRP (IP protocol 112, IPv4 and IPv6) from the peers only, VIP side only;
* the static ``essentials`` chain: ICMP errors needed for path MTU
  discovery, neighbour discovery (hop limit 255, as RFC 4861 demands), MLD
  queries (multicast snooping switches forget us without them), DHCP and
  DHCPv6 replies. Echo requests are not essential and are dropped;
* a counted drop.

Replacing a ruleset hitlessly takes separate transactions, measured on these
machines: rules that look up a set created in the same transaction dropped
packets during the swap (30-2200 of 10k datagrams over 13-26 applies),
while switching rules to sets that already exist lost none. ``prepare``
therefore creates the new generation's sets, maps and listener chains (named
``r<serial>_...`` so they never clash with the generation in force),
``switch`` re-fills the base chains to point at them, and ``cleanup``
deletes the previous generation. Deleting it in the switch transaction
itself still lost a few packets now and then (2-3 in one of six runs of ~40
applies at ~10 kpps): a packet still walking the old rules at the commit
looks up the old sets with the new generation mask, under which their
elements are already gone. A listener's source sets are named after their
content instead (``s_<digest>_tcp_80_4``, see sourcesets): one the table
holds already is kept, neither created nor deleted, so an apply that leaves
the CIDRs alone (a member, a VRRP peer, a small new listener) re-creates
only chains, the map and small sets. The essentials chain uses anonymous
sets and is therefore never replaced, only created once (and refilled in
place by a ``repair``, when someone changed it).

Counters are named objects with stable names, so their values carry over a
re-apply as long as the thing they count exists.
"""

import dataclasses

from amphora_agent.firewall import addresses
from amphora_agent.firewall import inventory
from amphora_agent.firewall import nft
from amphora_agent.firewall import sourcesets

FAMILY = nft.FAMILY
TABLE = nft.TABLE
DROP_COUNTER_PREFIX = 'drop_'
LISTENER_COUNTER_PREFIX = 'listener_'
SHARED_COUNTERS = ('essentials', 'fragments', 'members', 'vrrp')
# Only our own table hooks ingress of these devices, so the priority only
# orders us against other tables that might appear later.
BASE_CHAIN_PRIORITY = 0

ROLE_VIP = 'vip'
ROLE_MEMBER = 'member'

_VRRP = 112

# Named here for the renderer's callers.
ESSENTIALS_CHAIN = inventory.ESSENTIALS_CHAIN
BASE_CHAIN_PREFIX = inventory.BASE_CHAIN_PREFIX
Installed = inventory.Installed
installed_from_listing = inventory.installed_from_listing
encode_ifname = inventory.encode_ifname
decode_ifname = inventory.decode_ifname
base_chain_name = inventory.base_chain_name


def drop_counter_name(ifname):
    return DROP_COUNTER_PREFIX + encode_ifname(ifname)


def listener_counter_name(listener, verdict):
    return (f'{LISTENER_COUNTER_PREFIX}{listener.protocol}_{listener.port}'
            f'_{verdict}')


@dataclasses.dataclass
class Plan:
    """The transactions of one render.

    ``prepare`` is a list of transactions run in order, each creating
    objects nothing in force refers to yet (but for a repair's refill of a
    kept set); ``rollback[i]`` removes what ``prepare[i]`` created.
    Splitting the preparation (the table and counters, one transaction per
    listener whose sets are created, then the other listeners' chains, the
    shared sets and the verdict map) bounds libnftables' memory by the
    largest listener instead of the whole request: ~60 MB less peak RSS at
    50k CIDRs. ``switch`` is the one transaction that puts the new
    generation in force, ``cleanup`` then deletes what it no longer uses.
    """

    prepare: list
    switch: list
    cleanup: list
    rollback: list
    result: Installed


@dataclasses.dataclass
class _Step:
    commands: list = dataclasses.field(default_factory=list)
    undo: list = dataclasses.field(default_factory=list)


class _Builder:

    def __init__(self, sg, roles, ephemeral_ports, installed, repair=False,
                 counter_values=None):
        self.sg = sg
        self.roles = roles
        self.ephemeral = {'range': list(ephemeral_ports)}
        self.installed = installed
        self.repair = repair
        self.counter_values = counter_values or {}
        self.serial = installed.serial + 1
        self.steps = []
        self.step = None
        self.chains = []
        self.sets = []
        self.maps = []
        self.counters = set(SHARED_COUNTERS)
        self.kept = set()  # content-named sets in force, used as they are
        self.installed_sets = set(installed.sets)

    def name(self, suffix):
        return f'r{self.serial}_{suffix}'

    def begin_step(self):
        self.step = _Step()
        self.steps.append(self.step)

    def create(self, kind, **fields):
        """Create an object in the current step; its undo goes first."""
        self.step.commands.append({'add': nft.table_object(kind, **fields)})
        self.step.undo.insert(0, {'delete': nft.table_object(
            kind, name=fields['name'])})
        getattr(self, kind + 's').append(fields['name'])

    def add_set(self, suffix, set_type, elements, interval=False):
        name = self.name(suffix)
        fields = {'name': name, 'type': set_type, 'elem': elements}
        if interval:
            fields['flags'] = ['interval']
        self.create('set', **fields)
        return '@' + name

    def add_chain(self, suffix):
        name = self.name(suffix)
        self.create('chain', name=name)
        return name

    def source_matches(self, sources, suffix, content_named=False):
        """Matches of ``sources`` (sourcesets.of_networks), any one admits.

        A family covered entirely is matched by family alone, another by
        its sets (sourcesets.Part), each named after ``suffix``: of this
        generation or, ``content_named``, after its content too, and then
        kept as it is when the table holds it already.
        """
        matches = []
        for family, source in sorted(sources.items()):
            if source.everything:
                matches.append(nft.match(nft.NFPROTO,
                                         nft.NFPROTO_NAME[family]))
                continue
            for part in source.parts:
                name = (source.name(suffix, part) if content_named else
                        self.name(f'{suffix}_{family}{part.suffix}'))
                found = self.source_set(name, family, part)
                key = nft.SADDR[family]
                if part.prefixlen not in (None, addresses.BITS[family]):
                    key = {'&': [key, sourcesets.mask(family,
                                                      part.prefixlen)]}
                matches.append(nft.match(key, found))
        return matches

    def source_set(self, name, family, part):
        """Create the set of ``part`` unless it is content-named and in force.

        A hash set gets a fixed size: the kernel then picks its fixed hash
        (a plain bucket walk) over the resizable one.
        """
        if name not in self.installed_sets:
            fields = {'type': nft.ADDR_TYPE[family], 'elem': part.elements}
            if part.prefixlen is None:
                fields['flags'] = ['interval']
            else:
                fields['size'] = len(part.elements)
            self.create('set', name=name, **fields)
        elif name not in self.kept:
            self.kept.add(name)
            self.sets.append(name)
            if self.repair:
                # Maybe edited by hand; no second set of its name can exist.
                self.step.commands.extend([
                    {'flush': nft.table_object('set', name=name)},
                    {'add': nft.table_object('element', name=name,
                                             elem=part.elements)}])
        return '@' + name

    def creates_sets(self, listener):
        """Whether rendering ``listener`` creates (or refills) a set."""
        if self.repair:
            return any(not source.everything
                       for source in listener.sources.values())
        suffix = self.listener_suffix(listener)
        return any(source.name(suffix, part) not in self.installed_sets
                   for source in listener.sources.values()
                   if not source.everything for part in source.parts)

    # Listeners --------------------------------------------------------

    def listener_map(self):
        """The verdict map, a step per listener whose sets are created.

        The listeners whose sets are all kept (or need none) have their
        chains made in the last step, with the map and the member and VRRP
        sets: a change that leaves every listener's CIDRs alone is one
        small prepare transaction.
        """
        chains = [None] * len(self.sg.listeners)  # not hashing Listeners
        kept = []
        for index, listener in enumerate(self.sg.listeners):
            if self.creates_sets(listener):
                self.begin_step()
                chains[index] = self.listener_chain(listener)
            else:
                kept.append(index)
        # The map, the member and the VRRP sets share the last step.
        self.begin_step()
        for index in kept:
            chains[index] = self.listener_chain(self.sg.listeners[index])
        elements = [[{'concat': [listener.protocol.lower(), listener.port]},
                     {'goto': {'target': chain}}]
                    for listener, chain in zip(self.sg.listeners, chains)]
        if not elements:
            return []
        name = self.name('listeners')
        # A fixed size makes it the kernel's fixed hash, as for the sets.
        self.create('map', name=name, type=['inet_proto', 'inet_service'],
                    map='verdict', size=len(elements), elem=elements)
        return [{'vmap': {'key': {'concat': [nft.L4PROTO,
                                             nft.payload('th', 'dport')]},
                          'data': '@' + name}}]

    @staticmethod
    def listener_suffix(listener):
        return f'{listener.protocol.lower()}_{listener.port}'

    def listener_chain(self, listener):
        suffix = self.listener_suffix(listener)
        accepted = listener_counter_name(listener, 'accepted')
        dropped = listener_counter_name(listener, 'dropped')
        self.counters.update((accepted, dropped))
        rules = []
        if not listener.allowed_cidrs:
            rules.append([nft.counter(accepted), nft.ACCEPT])
        for source in self.source_matches(listener.sources, suffix,
                                          content_named=True):
            rules.append([source, nft.counter(accepted), nft.ACCEPT])
        if listener.allowed_cidrs:
            rules.append([nft.counter(dropped), nft.DROP])
        # Created after its sets, so that its undo (which takes its rules
        # along) comes before theirs.
        chain = self.add_chain(suffix)
        self.step.commands.extend(nft.rule(chain, *rule) for rule in rules)
        return chain

    # Members ----------------------------------------------------------

    def member_rules(self):
        if self.sg.members is None:
            return self.unknown_member_rules()
        rules = []
        dport = nft.match(nft.payload('th', 'dport'), self.ephemeral)
        for family in (4, 6):
            flows = [{'concat': [addresses.format_address(family, m.address),
                                 m.protocol.lower(), m.port]}
                     for m in self.sg.members
                     if m.family == family and m.port is not None]
            if flows:
                key = {'concat': [nft.SADDR[family], nft.L4PROTO,
                                  nft.payload('th', 'sport')]}
                flow_set = self.add_set(
                    f'members_{family}',
                    [nft.ADDR_TYPE[family], 'inet_proto', 'inet_service'],
                    flows)
                rules.append([nft.match(key, flow_set), dport,
                              nft.counter('members'), nft.ACCEPT])
            pinged = [addresses.format_address(family, m.address)
                      for m in self.sg.members
                      if m.family == family and m.port is None]
            if pinged:
                ping_set = self.add_set(f'pinged_{family}',
                                        nft.ADDR_TYPE[family], pinged)
                rules.append([
                    nft.match(nft.payload(nft.ICMP[family], 'type'),
                              'echo-reply'),
                    nft.match(nft.SADDR[family], ping_set),
                    nft.counter('members'), nft.ACCEPT])
        return rules

    def unknown_member_rules(self):
        """Replies by their shape when the members are unknown.

        TCP must carry ACK: a SYN-ACK, data or FIN answers a connection the
        amphora opened, a bare SYN would be someone opening one to us.
        """
        tcp_ack = nft.match({'&': [nft.payload('tcp', 'flags'), 'ack']}, 'ack')
        rules = [
            [tcp_ack, nft.match(nft.payload('tcp', 'dport'), self.ephemeral)]]
        for protocol in ('udp', 'sctp'):
            rules.append([nft.match(nft.payload(protocol, 'dport'),
                                    self.ephemeral)])
        for family in (4, 6):
            rules.append([nft.match(nft.payload(nft.ICMP[family], 'type'),
                                    'echo-reply')])
        return [rule + [nft.counter('members'), nft.ACCEPT] for rule in rules]

    # VRRP -------------------------------------------------------------

    def vrrp_rules(self):
        return [[nft.match(nft.L4PROTO, _VRRP), source, nft.counter('vrrp'),
                 nft.ACCEPT]
                for source in self.source_matches(
                    sourcesets.of_networks(self.sg.vrrp_peers), 'vrrp')]

    # Static parts -----------------------------------------------------

    @staticmethod
    def fragment_rules():
        first_fragment_only = [
            nft.match({'&': [nft.payload('ip', 'frag-off'), 0x1fff]}, 0, '!='),
            nft.match({'exthdr': {'name': 'frag', 'field': 'frag-off'}}, 0,
                      '!=')]
        return [[match, nft.counter('fragments'), nft.ACCEPT]
                for match in first_fragment_only]

    @staticmethod
    def essentials_rules():
        icmp_type = nft.payload('icmp', 'type')
        icmpv6_type = nft.payload('icmpv6', 'type')
        hoplimit = nft.payload('ip6', 'hoplimit')
        matches = [
            [nft.match(icmp_type, {'set': ['destination-unreachable',
                                           'time-exceeded',
                                           'parameter-problem']})],
            [nft.match(icmpv6_type, {'set': ['destination-unreachable',
                                             'packet-too-big',
                                             'time-exceeded',
                                             'parameter-problem']})],
            [nft.match(icmpv6_type, {'set': ['nd-router-advert',
                                             'nd-neighbor-solicit',
                                             'nd-neighbor-advert',
                                             'nd-redirect']}),
             nft.match(hoplimit, 255)],
            [nft.match(icmpv6_type, 'mld-listener-query'),
             nft.match(hoplimit, 1)],
            [nft.match(nft.NFPROTO, 'ipv4'),
             nft.match(nft.payload('udp', 'sport'), 67),
             nft.match(nft.payload('udp', 'dport'), 68)],
            [nft.match(nft.NFPROTO, 'ipv6'),
             nft.match(nft.payload('udp', 'sport'), 547),
             nft.match(nft.payload('udp', 'dport'), 546)],
        ]
        return [match + [nft.counter('essentials'), nft.ACCEPT]
                for match in matches]

    # Whole plan -------------------------------------------------------

    def build(self):
        installed = self.installed
        listener_rules = self.listener_map()
        member_rules = self.member_rules()
        vrrp_rules = self.vrrp_rules()
        for ifname in self.roles:
            self.counters.add(drop_counter_name(ifname))
        new_counters = sorted(self.counters - installed.counters)
        # The table and the counters go first: every chain refers to them.
        # The table and the essentials chain stay even when undone: they
        # are the same for every generation.
        head = _Step()
        # Adding the table again clears flags set by hand (dormant).
        if not installed.table or self.repair:
            head.commands.append({'add': {'table': {'family': FAMILY,
                                                    'name': TABLE}}})
        for name in new_counters:
            values = self.counter_values.get(name, {})
            head.commands.append({'add': nft.table_object('counter', name=name,
                                                          **values)})
            if name != 'essentials':
                head.undo.append(
                    {'delete': nft.table_object('counter', name=name)})
        if not installed.essentials:
            head.commands.append({'add': nft.table_object(
                'chain', name=ESSENTIALS_CHAIN)})
            head.commands.extend(nft.rule(ESSENTIALS_CHAIN, *rule)
                                 for rule in self.essentials_rules())
        steps = [step for step in [head] + self.steps if step.commands]

        switch = []
        if installed.essentials and self.repair:
            # The one chain no generation replaces: refilled in place.
            switch.append({'flush': nft.table_object(
                'chain', name=ESSENTIALS_CHAIN)})
            switch.extend(nft.rule(ESSENTIALS_CHAIN, *rule)
                          for rule in self.essentials_rules())
        for ifname, role in sorted(self.roles.items()):
            chain = base_chain_name(ifname)
            base_chain = {'add': nft.table_object(
                'chain', name=chain, type='filter', hook='ingress',
                dev=ifname, prio=BASE_CHAIN_PRIORITY, policy='drop')}
            if ifname in installed.base_chains:
                if self.repair:
                    # Adding it again restores a policy changed by hand;
                    # a changed hook or priority makes the kernel refuse.
                    switch.append(base_chain)
                switch.append({'flush': nft.table_object('chain', name=chain)})
            else:
                switch.append(base_chain)
            rules = []
            if role == ROLE_VIP:
                rules.extend([expr] for expr in listener_rules)
            rules.extend(self.fragment_rules())
            rules.extend(member_rules)
            if role == ROLE_VIP:
                rules.extend(vrrp_rules)
            rules.append([{'jump': {'target': ESSENTIALS_CHAIN}}])
            rules.append([nft.counter(drop_counter_name(ifname)), nft.DROP])
            switch.extend(nft.rule(chain, *rule) for rule in rules)
        for ifname, chain in sorted(installed.base_chains.items()):
            if ifname not in self.roles:
                switch.append(
                    {'delete': nft.table_object('chain', name=chain)})
        # Maps jump to chains and chains look up sets: delete in that order.
        # Kept sets stay in force.
        cleanup = _deletes(installed.maps, installed.chains,
                           [name for name in installed.sets
                            if name not in self.kept])
        cleanup.extend({'delete': nft.table_object('counter', name=name)}
                       for name in sorted(installed.counters - self.counters))

        result = Installed(
            table=True, essentials=True, serial=self.serial,
            base_chains={ifname: base_chain_name(ifname)
                         for ifname in self.roles},
            chains=self.chains, sets=self.sets, maps=self.maps,
            counters=set(self.counters))
        return Plan(prepare=[step.commands for step in steps], switch=switch,
                    cleanup=cleanup, rollback=[step.undo for step in steps],
                    result=result)


def _deletes(maps, chains, sets):
    commands = []
    for kind, names in (('map', maps), ('chain', chains), ('set', sets)):
        commands.extend({'delete': nft.table_object(kind, name=name)}
                        for name in names)
    return commands


def build(sg, roles, ephemeral_ports, installed, repair=False,
          counter_values=None):
    """Plan the transactions that put ``sg`` in force.

    ``roles`` maps every filtered interface name to ROLE_VIP or
    ROLE_MEMBER, ``ephemeral_ports`` is the namespace's
    ``ip_local_port_range`` as (first, last), ``installed`` what the table
    holds now. ``sg`` may have no listeners, peers or members: the drop-all
    base is such a SecurityGroup.

    ``repair``: the table may have been changed by hand, so also restore
    what a render otherwise takes as given: the table without flags, the
    base chains' policy and the essentials chain's rules.
    ``counter_values``: ``{name: {"packets", "bytes"}}`` that counters
    created by the plan start from (a table re-created from scratch keeps
    what was counted).
    """
    return _Builder(sg, roles, ephemeral_ports, installed, repair,
                    counter_values).build()
