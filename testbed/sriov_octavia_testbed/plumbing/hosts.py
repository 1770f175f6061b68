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
"""Clients and members: namespaces with one interface on a network.

A host is namespace ``<prefix>-host-<name>``; its ``eth0`` is a veth whose
other end joins the network's bridge in ``<prefix>-phys``.
"""

import ipaddress

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import names as names_mod
from sriov_octavia_testbed.plumbing import namespaces


class Hosts:

    def __init__(self, names, lock, networks, stop_grace=10.0):
        self._names = names
        self._lock = lock
        self._networks = networks
        self._stop_grace = stop_grace

    def add(self, name, network_id, mac, cidr, gateway=None):
        """A client or member: namespace ``<prefix>-host-<name>``.

        Its ``eth0`` (MAC ``mac``, address ``cidr``) sits on the network's
        bridge; with ``gateway``, the host routes through it and the bridge
        gets that address (the phys namespace routes between subnets).
        Returns the namespace's name.
        """
        namespace = self._names.host_namespace(name)
        interface = ipaddress.ip_interface(cidr)
        subnet = ({'cidr': str(interface.network), 'gateway_ip': gateway}
                  if gateway else None)
        with self._lock:
            if netlab.namespace_exists(namespace):
                raise errors.PlumbingError(f'host {name} exists already')
            bridge = self._networks.ensure_network(network_id, subnet)
            try:
                namespaces.create_infrastructure(namespace)
                self._networks.plug(namespace, names_mod.HOST_IFNAME, mac,
                                    self._names.host_peer(name), bridge)
                links.set_state(namespace, names_mod.HOST_IFNAME, True)
                links.ensure_address(namespace, names_mod.HOST_IFNAME,
                                     interface)
                if interface.version == 4:
                    self._announce(namespace, interface.ip)
                if gateway:
                    links.add_default_route(namespace, gateway)
            except BaseException:
                self.remove(name)
                raise
        return namespace

    @staticmethod
    def _announce(namespace, address):
        """Gratuitous ARP, as a guest's network scripts send it.

        Neutron hands a freed address to the next port, with another MAC:
        a neighbour that talked to the old port (an amphora) would send to
        the old MAC until its entry expires. Two rounds a second apart: the
        bridge port forwards only once the kernel has seen the veth's
        carrier, which can take up to a second.
        """
        netlab.run(namespace, ['arping', '-q', '-U', '-c', '2',
                               '-I', names_mod.HOST_IFNAME, str(address)],
                   check=False)

    def remove(self, name):
        namespace = self._names.host_namespace(name)
        with self._lock:
            # Servers a test or the demo started on the host go with it.
            namespaces.remove(namespace, self._stop_grace)
            links.delete(self._names.phys_namespace,
                         self._names.host_peer(name))
