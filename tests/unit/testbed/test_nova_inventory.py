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
"""The VF pool of the compute emulator (testbed.nova.inventory)."""

import json

import pytest

from sriov_octavia_testbed.nova import inventory

HOSTS = {
    'c1': {'pci_devices': [
        {'pf': 'ens1f0', 'physical_network': 'net-a', 'vf_count': 10},
        {'pf': 'ens1f1', 'physical_network': 'net-b', 'vf_count': 1,
         'vendor_id': '15b3', 'product_id': '1018',
         'address': '0000:3b:00.1'}]},
    'c2': {'host_ip': '10.0.0.2'},
}


@pytest.fixture
def inv(tmp_path):
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'hosts': HOSTS}))
    return inventory.Inventory.load(str(path))


def test_hosts_and_vf_addresses(inv):
    assert inv.hosts == ['c1', 'c2']
    assert inv.host_ips == {'c1': '127.0.0.1', 'c2': '10.0.0.2'}
    vfs = inv.vfs('c1')
    assert [vf.pci_slot for vf in vfs[:10]] == [
        '0000:81:10.0', '0000:81:10.1', '0000:81:10.2', '0000:81:10.3',
        '0000:81:10.4', '0000:81:10.5', '0000:81:10.6', '0000:81:10.7',
        '0000:81:11.0', '0000:81:11.1']
    assert vfs[10].pci_slot == '0000:3b:10.0'
    assert (vfs[0].vendor_id, vfs[0].product_id) == ('8086', '154c')
    assert (vfs[10].vendor_id, vfs[10].product_id) == ('15b3', '1018')
    assert inv.physical_networks('c1') == ['net-a', 'net-b']
    assert inv.vfs('c2') == []


def test_claim_and_release(inv):
    allocations = {}
    vf = inventory.claim(inv, allocations, 'c1', 'net-b', 'srv', 'port-1')
    assert vf.pci_slot == '0000:3b:10.0'
    assert allocations == {'c1': {'0000:3b:10.0': {'server_id': 'srv',
                                                   'port_id': 'port-1'}}}
    assert inventory.free_vf_counts(inv, allocations, 'c1') == {
        'net-a': 10, 'net-b': 0}
    with pytest.raises(inventory.PciClaimFailed):
        inventory.claim(inv, allocations, 'c1', 'net-b', 'srv', 'port-2')
    with pytest.raises(inventory.PciClaimFailed):
        inventory.claim(inv, allocations, 'c2', 'net-a', 'srv', 'port-2')
    inventory.claim(inv, allocations, 'c1', 'net-a', 'srv', 'port-3')
    inventory.claim(inv, allocations, 'c1', 'net-a', 'other', 'port-4')

    assert inventory.release(allocations, 'srv', 'port-3') == [
        ('c1', '0000:81:10.0')]
    assert sorted(inventory.release(allocations, 'srv')) == [
        ('c1', '0000:3b:10.0')]
    assert inventory.free_vf_counts(inv, allocations, 'c1') == {
        'net-a': 9, 'net-b': 1}
    assert inventory.find_vf(inv, 'c1', '0000:81:10.1').physical_network \
        == 'net-a'
