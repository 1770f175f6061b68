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
"""The management network and the tenant networks' bridges.

The management network is the bridge ``<prefix>-mgmt`` in the root
namespace, carrying the management subnets' gateway addresses, so the
controller reaches every agent directly. Every Neutron network has a
bridge in ``<prefix>-phys``; that namespace is also the router between
networks: a subnet's gateway address sits on its network's bridge.
"""

import ipaddress

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import namespaces


def mgmt_interfaces(fixed_ips, gateway_addresses):
    """Match a port's fixed IPs with the management gateways.

    ``gateway_addresses`` are the ip_interfaces on the management bridge
    (one per management subnet). Returns ``[(ip_interface, gateway_ip)]``,
    one per fixed IP, in the port's order.
    """
    matched = []
    for ip in fixed_ips:
        address = ipaddress.ip_address(ip)
        gateway = next((gw for gw in gateway_addresses
                        if address in gw.network and address != gw.ip), None)
        if gateway is None:
            raise errors.PlumbingError(
                f'{ip} is on no management subnet this fabric routes; '
                f'ensure_mgmt_network() must be given its subnet first')
        matched.append((ipaddress.ip_interface(
            f'{address}/{gateway.network.prefixlen}'), gateway.ip))
    return matched


def subnet_gateway(subnet):
    """The gateway's ip_interface of a Neutron subnet dict, or None."""
    gateway = (subnet or {}).get('gateway_ip')
    if not gateway:
        return None
    network = ipaddress.ip_network(subnet['cidr'], strict=False)
    return ipaddress.ip_interface(f'{gateway}/{network.prefixlen}')


class Networks:

    def __init__(self, names, lock):
        self._names = names
        self._lock = lock

    def ensure_mgmt_network(self, subnet):
        """Bridge ``<prefix>-mgmt`` with the subnet's gateway address.

        ``subnet`` is a Neutron subnet dict (``cidr``, ``gateway_ip``); the
        root namespace gets the gateway address, hence a route to every
        amphora on the subnet. Call once per management subnet (IPv4 and
        IPv6 may both be used). Returns the bridge's name.
        """
        gateway = subnet_gateway(subnet)
        if gateway is None:
            raise errors.PlumbingError(
                f"management subnet {(subnet or {}).get('cidr')} has no "
                f'gateway_ip: the controller reaches agents through it')
        bridge = self._names.mgmt_bridge
        with self._lock:
            clash = [
                f'{network} (dev {ifname})'
                for network, ifname in links.routed_networks(None)
                if ifname != bridge and network.overlaps(gateway.network)]
            if clash:
                # The gateway address would hijack the machine's own
                # traffic to that network (even its default gateway).
                raise errors.PlumbingError(
                    f'management subnet {gateway.network} overlaps routes '
                    f'of this machine: {", ".join(clash)}; choose another')
            links.ensure_bridge(None, bridge)
            links.ensure_address(None, bridge, gateway)
        return bridge

    def mgmt_gateways(self):
        """The management subnets' gateway ip_interfaces on the bridge."""
        bridge = self._names.mgmt_bridge
        if not links.find(None, bridge):
            return []
        return [address for address in links.addresses(None, bridge)
                if not address.ip.is_link_local]

    def ensure_network(self, network_id, subnet=None):
        """The bridge of a Neutron network in the phys namespace.

        With ``subnet`` (``cidr``, ``gateway_ip``), the bridge also gets the
        subnet's gateway address, making the phys namespace the router
        between the testbed's subnets. Returns the bridge's name.
        """
        bridge = self._names.network_bridge(network_id)
        gateway = subnet_gateway(subnet)
        with self._lock:
            phys = self._ensure_phys_namespace()
            links.ensure_bridge(phys, bridge)
            if gateway is not None:
                links.ensure_address(phys, bridge, gateway)
        return bridge

    def _ensure_phys_namespace(self):
        name = self._names.phys_namespace
        if not netlab.namespace_exists(name):
            namespaces.create_infrastructure(name)
            netlab.run(name, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1',
                              'net.ipv6.conf.all.forwarding=1'])
        return name

    def plug(self, namespace, ifname, mac, peer, bridge):
        """A veth from ``namespace`` (``ifname``, ``mac``) to ``bridge``.

        ``peer`` is the end that joins the network's bridge in the phys
        namespace; it comes up, the other end stays as it was made. If
        the peer cannot join the bridge, the pair goes again.
        """
        phys = self._names.phys_namespace
        links.add_veth(phys, peer, namespace, ifname, mac)
        try:
            links.set_master(phys, peer, bridge)
            links.set_state(phys, peer, True)
        except BaseException:
            links.delete(phys, peer)
            raise
