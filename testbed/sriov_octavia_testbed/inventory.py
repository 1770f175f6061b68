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
"""The emulated compute hosts and their SR-IOV NICs.

The format follows Nova's ``[pci] device_spec``: per host a list of physical
functions, each with its physical network and number of VFs. The compute
emulator hands out VFs from it; Neutron gets one agent record per host.
"""

import json
import os

# Two SR-IOV hosts so ACTIVE_STANDBY pairs can be spread, one plain host so
# scheduling by the SR-IOV aggregate is observable.
DEFAULT_INVENTORY = {
    'hosts': {
        'compute-1': {'pci_devices': [
            {'pf': 'ens1f0', 'physical_network': 'sriovnet', 'vf_count': 8,
             'vendor_id': '8086', 'product_id': '154c'},
            {'pf': 'ens1f1', 'physical_network': 'sriovnet', 'vf_count': 8,
             'vendor_id': '8086', 'product_id': '154c'},
        ]},
        'compute-2': {'pci_devices': [
            {'pf': 'ens1f0', 'physical_network': 'sriovnet', 'vf_count': 8,
             'vendor_id': '8086', 'product_id': '154c'},
            {'pf': 'ens1f1', 'physical_network': 'sriovnet', 'vf_count': 8,
             'vendor_id': '8086', 'product_id': '154c'},
        ]},
        'compute-3': {'pci_devices': []},
    },
}

SRIOV_PHYSNET = 'sriovnet'
MGMT_PHYSNET = 'physnet1'
# Physical networks that normal (Open vSwitch bound) ports can use.
PHYSNETS = (SRIOV_PHYSNET, MGMT_PHYSNET)


def load(path):
    with open(path) as f:
        return json.load(f)


def write_default(path):
    """Write the default inventory unless the operator provided one."""
    if not os.path.exists(path):
        with open(path, 'w') as f:
            json.dump(DEFAULT_INVENTORY, f, indent=2)
    return load(path)


def hosts(inventory):
    return sorted(inventory['hosts'])


def device_mappings(inventory, host):
    """``{physnet: [pf, ...]}`` of a host, as the SR-IOV agent reports."""
    mappings = {}
    for device in inventory['hosts'][host].get('pci_devices', []):
        pfs = mappings.setdefault(device['physical_network'], [])
        if device['pf'] not in pfs:
            pfs.append(device['pf'])
    return mappings


def sriov_hosts(inventory):
    return [host for host in hosts(inventory)
            if device_mappings(inventory, host)]
