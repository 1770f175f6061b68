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
"""Network namespaces, veth pairs and bridges for the testbed and the tests.

Everything here is plain kernel plumbing through pyroute2; a ``Lab`` records
what it creates so that ``close()`` removes exactly that and nothing else.
"""

import ipaddress
import subprocess

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns


def _ipr(namespace):
    return IPRoute(netns=namespace) if namespace else IPRoute()


def _index(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LookupError(f'no interface {ifname}')
    return found[0]


def namespace_exists(name):
    return name in pyroute2_netns.listnetns()


def run(namespace, argv, check=True, timeout=30, **kwargs):
    """Run a command inside a namespace (or the current one for None)."""
    if namespace:
        argv = ['ip', 'netns', 'exec', namespace] + list(argv)
    return subprocess.run(argv, check=check, timeout=timeout,
                          capture_output=True, text=True, **kwargs)


def popen(namespace, argv, **kwargs):
    if namespace:
        argv = ['ip', 'netns', 'exec', namespace] + list(argv)
    return subprocess.Popen(argv, **kwargs)


def add_address(namespace, ifname, cidr):
    """Add ``cidr`` (an interface address with prefix) to ``ifname``."""
    iface = ipaddress.ip_interface(cidr)
    with _ipr(namespace) as ipr:
        ipr.addr('add', index=_index(ipr, ifname), address=str(iface.ip),
                 prefixlen=iface.network.prefixlen,
                 # Tests want IPv6 addresses usable at once: IFA_F_NODAD
                 # (0x02) skips duplicate address detection.
                 **({'flags': 0x02} if iface.version == 6 else {}))


def set_up(namespace, ifname, mtu=None, address=None):
    with _ipr(namespace) as ipr:
        kwargs = {'state': 'up'}
        if mtu:
            kwargs['mtu'] = mtu
        if address:
            kwargs['address'] = address
        ipr.link('set', index=_index(ipr, ifname), **kwargs)


def add_route(namespace, dst, gateway):
    with _ipr(namespace) as ipr:
        ipr.route('add', dst=dst, gateway=gateway)


class Lab:
    """A set of namespaces and links that is torn down as one."""

    def __init__(self, prefix):
        self.prefix = prefix
        self._namespaces = []

    def name(self, suffix):
        return f'{self.prefix}-{suffix}'

    def namespace(self, suffix):
        """Create namespace ``<prefix>-<suffix>`` with loopback up."""
        name = self.name(suffix)
        if namespace_exists(name):
            pyroute2_netns.remove(name)
        pyroute2_netns.create(name)
        self._namespaces.append(name)
        set_up(name, 'lo')
        return name

    def veth(self, ns_a, if_a, ns_b, if_b, mac_b=None):
        """A veth pair with one end in each namespace, both up."""
        with _ipr(ns_a) as ipr:
            peer = {'ifname': if_b}
            if ns_b:
                peer['net_ns_fd'] = ns_b
            ipr.link('add', ifname=if_a, kind='veth', peer=peer)
        set_up(ns_a, if_a)
        set_up(ns_b, if_b, address=mac_b)

    def bridge(self, namespace, ifname, ports=()):
        with _ipr(namespace) as ipr:
            ipr.link('add', ifname=ifname, kind='bridge')
            bridge_index = _index(ipr, ifname)
            for port in ports:
                ipr.link('set', index=_index(ipr, port), master=bridge_index)
        set_up(namespace, ifname)

    def close(self):
        # Removing a namespace removes every link inside it, and a veth goes
        # with either of its ends.
        while self._namespaces:
            name = self._namespaces.pop()
            if namespace_exists(name):
                pyroute2_netns.remove(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
