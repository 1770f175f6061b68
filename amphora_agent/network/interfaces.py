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
"""Hot-plugged VFs in the data namespace, configured through pyroute2.

All netlink work runs on one dedicated thread that has entered the data
namespace (``setns`` moves only the calling thread, and pyroute2 ties a
socket to the thread that made it). Being one thread, it also serialises
plug and unplug requests: two requests for one interface never interleave.

The thread also keeps a socket in the agent's own namespace, opened before
it enters the data namespace: on a real amphora Nova hot-plugs a VF into the
namespace the agent runs in, and the agent moves it into the data namespace
the first time it is plugged (the testbed plugs VFs straight into the data
namespace, where they are found directly).

Every change compares the kernel with the plan and changes only the
difference, so a plug repeated (a retried request, a resumed flow) leaves
the interface as it was, and a plug with new values moves the interface to
them.
"""

import concurrent.futures
import errno
import ipaddress
import os
import socket
import threading

from oslo_log import log as logging
from pyroute2 import IPRoute
from pyroute2 import netlink

from amphora_agent.firewall import links
from amphora_agent import netns
from amphora_agent.network import announce
from amphora_agent.network import model

LOG = logging.getLogger(__name__)

_FAMILIES = {socket.AF_INET: 4, socket.AF_INET6: 6}
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_MAIN_TABLE = 254
_RTPROT_STATIC = 4
_RT_SCOPE_LINK = 253
_RTNH_F_ONLINK = 4
_IFF_UP = 1
# Neutron has made sure an address is unique on its network; duplicate
# address detection would only keep a fresh IPv6 VIP unusable for seconds.
_IFA_F_NODAD = 0x02
_SYSCTL_IPV4 = '/proc/sys/net/ipv4/conf'
_SYSCTL_IPV6 = '/proc/sys/net/ipv6/conf'


class InterfaceNotFound(LookupError):
    def __init__(self, mac_address):
        super().__init__(f'no interface has MAC {mac_address}')
        self.mac_address = mac_address


class RefusedToMove(RuntimeError):
    """The MAC names an interface of the agent's namespace in use."""


class NamespaceUnavailable(RuntimeError):
    """The data namespace cannot be entered (missing?)."""


class KernelRefused(RuntimeError):
    """A netlink request failed; what was done before it stays.

    Plugging again converges from wherever the failed attempt stopped.
    """


def _table(index):
    return model.TABLE_BASE + index


def _is_link_local(address):
    return address.version == 6 and address.is_link_local


def _message_addresses(messages):
    """``{ip_interface}`` of address messages, IPv6 link-local left out."""
    found = set()
    for message in messages:
        if message['family'] not in _FAMILIES:
            continue
        address = ipaddress.ip_interface(
            f"{message.get_attr('IFA_ADDRESS')}/{message['prefixlen']}")
        if not _is_link_local(address.ip):
            found.add(address)
    return found


def _route_key(message):
    """``(table, destination, gateway)`` of a route message."""
    version = _FAMILIES[message['family']]
    destination = message.get_attr('RTA_DST')
    if destination is None:
        destination = '::' if version == 6 else '0.0.0.0'
    gateway = message.get_attr('RTA_GATEWAY')
    return (message.get_attr('RTA_TABLE') or message['table'],
            ipaddress.ip_network(f"{destination}/{message['dst_len']}"),
            ipaddress.ip_address(gateway) if gateway else None)


class DataNamespace:
    """Plug, unplug and list the interfaces of the data namespace.

    ``namespace`` empty or None: the namespace the agent runs in.
    ``vf_link_kinds``: as the firewall engine's, to report which interfaces
    it filters as VFs.
    """

    def __init__(self, namespace, vf_link_kinds=(), before_link_up=None):
        self.namespace = namespace or None
        self.vf_link_kinds = frozenset(vf_link_kinds)
        # Called before a link is brought up (the firewall engine's refresh):
        # a VF must never carry traffic before its chain exists.
        self._before_link_up = before_link_up
        self._lock = threading.Lock()
        self._executor = None
        # Only touched on the netlink thread.
        self._ipr = None
        self._own_ipr = None

    # Public interface ----------------------------------------------------

    def plug(self, plan):
        """Make the interface with ``plan.mac_address`` match ``plan``."""
        return self._call(self._plug, plan)

    def unplug(self, mac_address):
        """Remove the agent's addresses, routes and rules; link down."""
        return self._call(self._unplug, mac_address)

    def interfaces(self):
        """Every interface of the data namespace but loopback."""
        return self._call(self._describe_all)

    def stop(self):
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            try:
                executor.submit(self._close).result()
            except concurrent.futures.BrokenExecutor:
                pass
            executor.shutdown()

    # Thread plumbing -----------------------------------------------------

    def _call(self, function, *args):
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix='network',
                    initializer=self._enter_namespace)
            executor = self._executor
        try:
            return executor.submit(function, *args).result()
        except netlink.NetlinkError as error:
            LOG.exception('%s failed in namespace %s', function.__name__,
                          self.namespace)
            raise KernelRefused(f'the kernel refused a change: {error}'
                                ) from error
        except concurrent.futures.BrokenExecutor as error:
            # The thread could not enter the namespace; the next request
            # tries again (the namespace may have been created since).
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            executor.shutdown()
            raise NamespaceUnavailable(
                f'cannot enter network namespace {self.namespace}') from error

    def _enter_namespace(self):
        self._own_ipr = IPRoute()
        if self.namespace:
            try:
                netns.enter(self.namespace)
            except Exception:
                LOG.exception('Cannot enter network namespace %s',
                              self.namespace)
                self._own_ipr.close()
                raise
            self._ipr = IPRoute()
        else:
            self._ipr = self._own_ipr

    def _close(self):
        if self._ipr is not self._own_ipr:
            self._ipr.close()
        self._own_ipr.close()

    # Work done on the netlink thread -------------------------------------

    def _find(self, mac_address):
        found = self._ipr.link_lookup(address=mac_address)
        return found[0] if found else None

    def _adopt(self, mac_address):
        """Move a VF Nova plugged into the agent's namespace; its index.

        The interface keeps its name unless the data namespace has one
        like it already; then it becomes the first free ``eth<N>``.
        """
        if not self.namespace:
            return None
        found = self._own_ipr.link_lookup(address=mac_address)
        if not found:
            return None
        index = found[0]
        ifname = self._own_ipr.get_links(index)[0].get_attr('IFLA_IFNAME')
        in_use = _message_addresses(self._own_ipr.get_addr(index=index))
        if in_use:
            # Moving the management interface would cut the agent off.
            raise RefusedToMove(
                f'interface {ifname} with MAC {mac_address} in the agent\'s '
                f'namespace has addresses '
                f'({", ".join(sorted(map(str, in_use)))}); it is not a '
                'freshly plugged VF')
        taken = {link.get_attr('IFLA_IFNAME')
                 for link in self._ipr.get_links()}
        target = ifname
        number = 1
        while target in taken:
            target = f'eth{number}'
            number += 1
        self._own_ipr.link('set', index=index, state='down')
        self._own_ipr.link('set', index=index, net_ns_fd=self.namespace,
                           IFLA_IFNAME=target)
        LOG.info('Moved interface %s (MAC %s) into namespace %s as %s',
                 ifname, mac_address, self.namespace, target)
        return self._find(mac_address)

    def _plug(self, plan):
        index = self._find(plan.mac_address)
        if index is None:
            index = self._adopt(plan.mac_address)
        if index is None:
            raise InterfaceNotFound(plan.mac_address)
        link = self._ipr.get_links(index)[0]
        if plan.mtu is not None and link.get_attr('IFLA_MTU') != plan.mtu:
            self._ipr.link('set', index=index, mtu=plan.mtu)
        # Addresses go on before the link comes up, with the kernel told to
        # announce them when it does: a VIP that moved here from a failed
        # amphora (another MAC) is then found by its neighbours at once.
        self._announce_on_up(link.get_attr('IFLA_IFNAME'))
        self._converge_addresses(index, plan)
        if not link['flags'] & _IFF_UP:
            if self._before_link_up is not None:
                self._before_link_up()
            self._ipr.link('set', index=index, state='up')
        table = _table(index)
        self._converge_routes(index, table, plan.routes)
        self._converge_rules(table, plan.rule_sources)
        # The kernel's own announcement went out as the link came up, when
        # the VF may not forward yet, and there is none for addresses added
        # to a link already up: neighbours would keep a failed amphora's MAC
        # for the VIP until they probe again.
        announce.announce(link.get_attr('IFLA_IFNAME'), plan.mac_address,
                          [address.ip for address in plan.addresses])
        description = self._describe(index)
        LOG.info('Plugged %s (MAC %s): addresses %s, table %d',
                 description['name'], plan.mac_address,
                 description['addresses'], table)
        return description

    @staticmethod
    def _announce_on_up(ifname):
        # /proc/sys/net shows the namespace of the thread opening it: this
        # thread's, the data namespace.
        for path in (f'{_SYSCTL_IPV4}/{ifname}/arp_notify',
                     f'{_SYSCTL_IPV6}/{ifname}/ndisc_notify'):
            if os.path.exists(path):  # no IPv6 directory when disabled
                with open(path, 'w') as sysctl:
                    sysctl.write('1')

    def _converge_addresses(self, index, plan):
        present = _message_addresses(self._ipr.get_addr(index=index))
        wanted = set(plan.addresses)
        tolerated = {address.ip for address in plan.foreign_addresses}
        for address in present - wanted:
            if address.ip not in tolerated:
                self._ipr.addr('del', index=index, address=str(address.ip),
                               prefixlen=address.network.prefixlen)
        # Removing a primary IPv4 address takes its secondaries along.
        present = _message_addresses(self._ipr.get_addr(index=index))
        for address in plan.addresses:
            if address in present:
                continue
            extra = {'flags': _IFA_F_NODAD} if address.version == 6 else {}
            self._ipr.addr('add', index=index, address=str(address.ip),
                           prefixlen=address.network.prefixlen, **extra)

    def _our_routes(self, index, table):
        """Route messages the agent manages on this interface."""
        ours = []
        for message in self._ipr.route('dump'):
            if message['family'] not in _FAMILIES:
                continue
            route_table = message.get_attr('RTA_TABLE') or message['table']
            if route_table == table:
                ours.append(message)
            elif (route_table == _MAIN_TABLE and
                  message.get_attr('RTA_OIF') == index and
                  message['proto'] == _RTPROT_STATIC):
                ours.append(message)
        return ours

    def _delete_route(self, message):
        try:
            self._ipr.route('del', **self._route_fields(message))
        except netlink.NetlinkError as error:
            # The kernel removed it already (a deleted address takes its
            # prefix route along).
            if error.code != errno.ESRCH:
                raise

    @staticmethod
    def _route_fields(message):
        table, destination, gateway = _route_key(message)
        fields = {'family': message['family'], 'dst': str(destination),
                  'table': table, 'oif': message.get_attr('RTA_OIF')}
        if gateway is not None:
            fields['gateway'] = str(gateway)
        priority = message.get_attr('RTA_PRIORITY')
        if priority is not None:
            fields['priority'] = priority
        return fields

    def _converge_routes(self, index, table, routes):
        tables = {model.MAIN: _MAIN_TABLE, model.OWN: table}
        wanted = {(tables[route.table], route.destination, route.gateway):
                  route for route in routes}
        for message in self._our_routes(index, table):
            if _route_key(message) not in wanted:
                self._delete_route(message)
        for (route_table, destination, gateway), route in wanted.items():
            fields = {'dst': str(destination), 'oif': index,
                      'table': route_table, 'proto': _RTPROT_STATIC,
                      'family': _AF[destination.version]}
            if gateway is None:
                fields['scope'] = _RT_SCOPE_LINK
            else:
                # Neutron allows gateways outside the subnet; onlink also
                # frees the route from the order of address and route.
                fields.update(gateway=str(gateway), flags=_RTNH_F_ONLINK)
            self._ipr.route('replace', **fields)

    def _our_rules(self):
        return [message for message in self._ipr.get_rules()
                if message['family'] in _FAMILIES and
                message.get_attr('FRA_PRIORITY') == model.RULE_PRIORITY]

    @staticmethod
    def _rule_key(message):
        source = message.get_attr('FRA_SRC')
        return (message.get_attr('FRA_TABLE') or message['table'],
                ipaddress.ip_address(source) if source else None)

    def _delete_rule(self, message):
        table, source = self._rule_key(message)
        fields = {'family': message['family'], 'table': table,
                  'priority': model.RULE_PRIORITY}
        if source is not None:
            fields.update(src=str(source), src_len=message['src_len'])
        self._ipr.rule('del', **fields)

    def _converge_rules(self, table, sources):
        wanted = {(table, source) for source in sources}
        for message in self._our_rules():
            key = self._rule_key(message)
            # A rule for one of these sources pointing elsewhere is left
            # from an interface that went without being unplugged.
            if key not in wanted and (key[0] == table or key[1] in sources):
                self._delete_rule(message)
                continue
            wanted.discard(key)
        for _, source in sorted(wanted, key=str):
            self._ipr.rule('add', family=_AF[source.version], table=table,
                           priority=model.RULE_PRIORITY, src=str(source),
                           src_len=source.max_prefixlen)

    def _unplug(self, mac_address):
        index = self._find(mac_address)
        if index is None:
            raise InterfaceNotFound(mac_address)
        table = _table(index)
        for message in self._our_rules():
            if self._rule_key(message)[0] == table:
                self._delete_rule(message)
        for message in self._our_routes(index, table):
            self._delete_route(message)
        for address in _message_addresses(self._ipr.get_addr(index=index)):
            try:
                self._ipr.addr('del', index=index, address=str(address.ip),
                               prefixlen=address.network.prefixlen)
            except netlink.NetlinkError as error:
                # Went with a primary address deleted just before.
                if error.code != errno.EADDRNOTAVAIL:
                    raise
        self._ipr.link('set', index=index, state='down')
        description = self._describe(index)
        LOG.info('Unplugged %s (MAC %s)', description['name'], mac_address)
        return description

    def _describe(self, index):
        return next(view for view in self._describe_all()
                    if view['index'] == index)

    def _describe_all(self):
        found = links.scan(self._ipr, self.vf_link_kinds)
        tables = {self._rule_key(message)[0] for message in self._our_rules()}
        addresses = {}
        for message in self._ipr.get_addr():
            addresses.setdefault(message['index'], []).append(message)
        views = []
        for link in self._ipr.get_links():
            ifname = link.get_attr('IFLA_IFNAME')
            if ifname in found:
                views.append(self._view(link, found[ifname].is_vf,
                                        addresses.get(link['index'], ()),
                                        tables))
        return sorted(views, key=lambda view: view['name'])

    @staticmethod
    def _view(link, is_vf, address_messages, tables):
        addresses = []
        for message in address_messages:
            if message['family'] in _FAMILIES:
                addresses.append(ipaddress.ip_interface(
                    f"{message.get_attr('IFA_ADDRESS')}/"
                    f"{message['prefixlen']}"))
        return {
            'name': link.get_attr('IFLA_IFNAME'),
            'mac_address': link.get_attr('IFLA_ADDRESS'),
            'state': 'up' if link['flags'] & _IFF_UP else 'down',
            'operstate': (link.get_attr('IFLA_OPERSTATE') or '').lower(),
            'mtu': link.get_attr('IFLA_MTU'),
            'addresses': [str(address) for address in sorted(
                addresses, key=lambda item: (item.version, item))],
            'index': link['index'],
            'vf': is_vf,
            # The table the agent's source rules send this interface's
            # addresses to; None until it is plugged.
            'routing_table': (_table(link['index'])
                              if _table(link['index']) in tables else None),
        }
