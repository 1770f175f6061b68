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
"""Compute hosts and their SR-IOV virtual functions.

The inventory file describes each host's physical functions the way Nova's
``[pci] device_spec`` tags them::

    {"hosts": {"compute-1": {"pci_devices": [
        {"pf": "ens1f0", "physical_network": "sriovnet", "vf_count": 4,
         "vendor_id": "8086", "product_id": "154c",
         "address": "0000:81:00.0"}]}}}

``address`` (the PF's PCI address) is optional; without it every PF of a
host gets its own bus starting at 0x81. The VFs of a PF get PCI addresses
``<domain>:<bus>:<0x10 + n // 8>.<n % 8>`` the way an Intel PF lays them out.

Allocations live in the emulator state as ``{host: {pci_slot: {"server_id",
"port_id"}}}``; the functions here read and change that mapping.
"""

import collections
import json

VirtualFunction = collections.namedtuple(
    'VirtualFunction',
    ['host', 'pf', 'physical_network', 'pci_slot', 'vendor_id',
     'product_id'])


class PciClaimFailed(Exception):
    """No free VF on the requested physical network."""


class Inventory:
    def __init__(self, hosts):
        # Keep the file's host order: it is the scheduler's tie breaker.
        self._vfs = {}
        self.host_ips = {}
        for host, spec in hosts.items():
            self.host_ips[host] = spec.get('host_ip', '127.0.0.1')
            self._vfs[host] = list(_host_vfs(host, spec.get('pci_devices',
                                                            [])))

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(json.load(f).get('hosts', {}))

    @property
    def hosts(self):
        return list(self._vfs)

    def vfs(self, host):
        return list(self._vfs[host])

    def physical_networks(self, host):
        return sorted({vf.physical_network for vf in self._vfs[host]})


def _host_vfs(host, pci_devices):
    for index, device in enumerate(pci_devices):
        domain, bus = _pf_domain_bus(device.get('address'), index)
        for n in range(int(device['vf_count'])):
            yield VirtualFunction(
                host=host, pf=device['pf'],
                physical_network=device['physical_network'],
                pci_slot=f'{domain}:{bus}:{0x10 + n // 8:02x}.{n % 8}',
                vendor_id=device.get('vendor_id', '8086'),
                product_id=device.get('product_id', '154c'))


def _pf_domain_bus(address, index):
    if address:
        domain, bus, _slot_function = address.split(':')
        return domain, bus
    return '0000', f'{0x81 + index:02x}'


def free_vfs(inventory, allocations, host, physical_network):
    used = allocations.get(host, {})
    return [vf for vf in inventory.vfs(host)
            if vf.physical_network == physical_network
            and vf.pci_slot not in used]


def free_vf_counts(inventory, allocations, host):
    """{physical_network: number of free VFs} of one host."""
    counts = {}
    for physnet in inventory.physical_networks(host):
        counts[physnet] = len(free_vfs(inventory, allocations, host,
                                       physnet))
    return counts


def claim(inventory, allocations, host, physical_network, server_id,
          port_id):
    """Take the first free VF of ``physical_network`` on ``host``."""
    candidates = free_vfs(inventory, allocations, host, physical_network)
    if not candidates:
        raise PciClaimFailed(
            f'PCI device request [physical_network={physical_network}] '
            f'failed on host {host}: no free virtual function')
    vf = candidates[0]
    allocations.setdefault(host, {})[vf.pci_slot] = {
        'server_id': server_id, 'port_id': port_id}
    return vf


def release(allocations, server_id, port_id=None):
    """Free the VFs of a server (or of one of its ports); return them."""
    freed = []
    for host, slots in allocations.items():
        for slot, owner in list(slots.items()):
            if owner['server_id'] == server_id and (
                    port_id is None or owner['port_id'] == port_id):
                freed.append((host, slot))
                del slots[slot]
    return freed


def find_vf(inventory, host, pci_slot):
    for vf in inventory.vfs(host):
        if vf.pci_slot == pci_slot:
            return vf
    raise LookupError(f'no VF {pci_slot} on {host}')
