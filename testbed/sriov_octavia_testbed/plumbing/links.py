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
"""Idempotent link and address operations the fabric needs, via pyroute2.

``testbed.netlab`` creates things for a lab that is thrown away as a whole;
the fabric instead adds and removes single links over a long life and must
be able to run the same step twice (after a restart, or a half-done boot),
so these helpers accept "already there" and "already gone".
"""

import errno
import ipaddress
import socket

from pyroute2 import IPRoute
from pyroute2 import NetlinkError

from sriov_octavia_testbed import netlab


def _ipr(namespace):
    # IPRoute(netns=...) would create a namespace that does not exist; a
    # typo or a removed amphora must not leave an empty one behind.
    if namespace and not netlab.namespace_exists(namespace):
        raise LookupError(f'no network namespace {namespace}')
    return IPRoute(netns=namespace) if namespace else IPRoute()


def _lookup(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _index(ipr, ifname):
    index = _lookup(ipr, ifname)
    if index is None:
        raise LookupError(f'no interface {ifname}')
    return index


def names(namespace):
    """Names of every link in ``namespace`` (None: the root namespace)."""
    with _ipr(namespace) as ipr:
        return [link.get('ifname') for link in ipr.get_links()]


def find(namespace, ifname):
    """``{'ifname', 'address', 'up', 'kind', 'master'}`` or None."""
    with _ipr(namespace) as ipr:
        index = _lookup(ipr, ifname)
        if index is None:
            return None
        link = ipr.link('get', index=index)[0]
        master = link.get('master')
        return {
            'ifname': ifname,
            'address': link.get('address'),
            'up': bool(link['flags'] & 1),
            'kind': link.get_nested('IFLA_LINKINFO', 'IFLA_INFO_KIND'),
            'master': (ipr.link('get', index=master)[0].get('ifname')
                       if master else None),
        }


def ensure_bridge(namespace, ifname):
    with _ipr(namespace) as ipr:
        if _lookup(ipr, ifname) is None:
            ipr.link('add', ifname=ifname, kind='bridge')
        ipr.link('set', index=_index(ipr, ifname), state='up')


def add_veth(namespace, ifname, peer_namespace, peer_ifname, peer_mac):
    """A veth pair: ``ifname`` here, the peer (with ``peer_mac``) there.

    The peer is created directly inside its namespace, so its name never
    meets the names of this one.
    """
    peer = {'ifname': peer_ifname, 'address': peer_mac}
    if peer_namespace:
        peer['net_ns_fd'] = peer_namespace
    with _ipr(namespace) as ipr:
        ipr.link('add', ifname=ifname, kind='veth', peer=peer)


def set_master(namespace, ifname, bridge):
    with _ipr(namespace) as ipr:
        ipr.link('set', index=_index(ipr, ifname),
                 master=_index(ipr, bridge))


def set_state(namespace, ifname, up):
    with _ipr(namespace) as ipr:
        ipr.link('set', index=_index(ipr, ifname),
                 state='up' if up else 'down')


def delete(namespace, ifname):
    """Delete a link; True if it existed."""
    try:
        with _ipr(namespace) as ipr:
            index = _lookup(ipr, ifname)
            if index is None:
                return False
            ipr.link('del', index=index)
            return True
    except LookupError:
        return False
    except NetlinkError as error:
        # Deleting one end of a veth removes the other: a list of links
        # taken before may name one that has gone meanwhile.
        if error.code == errno.ENODEV:
            return False
        raise


def addresses(namespace, ifname):
    """The interface addresses (``ip/prefixlen``) of ``ifname``."""
    with _ipr(namespace) as ipr:
        return [
            ipaddress.ip_interface(
                f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}")
            for addr in ipr.get_addr(index=_index(ipr, ifname))]


def ensure_address(namespace, ifname, interface):
    """Add ``interface`` (an ip_interface) unless ``ifname`` has it.

    IPv6 addresses skip duplicate address detection (netlab adds them so):
    on a bridge without ports yet it would keep the address tentative,
    unusable, until a port comes and a second more has passed; Neutron has
    made the testbed's addresses unique already.
    """
    if interface in addresses(namespace, ifname):
        return
    netlab.add_address(namespace, ifname, str(interface))


def flush_addresses(namespace, ifname):
    """Remove every address of ``ifname`` (and so the routes through it)."""
    with _ipr(namespace) as ipr:
        ipr.flush_addr(index=_index(ipr, ifname))


def routed_networks(namespace):
    """``[(ip_network, ifname)]`` of the main table's non-default routes."""
    found = []
    with _ipr(namespace) as ipr:
        ifnames = {link['index']: link.get('ifname')
                   for link in ipr.get_links()}
        for family in (socket.AF_INET, socket.AF_INET6):
            for route in ipr.get_routes(family=family, table=254):
                destination = route.get('RTA_DST')
                if not destination or not route['dst_len']:
                    continue
                found.append((
                    ipaddress.ip_network(
                        f"{destination}/{route['dst_len']}", strict=False),
                    ifnames.get(route.get('RTA_OIF'))))
    return found


def add_default_route(namespace, gateway):
    gateway = ipaddress.ip_address(gateway)
    netlab.add_route(namespace, '0.0.0.0/0' if gateway.version == 4
                     else '::/0', str(gateway))
