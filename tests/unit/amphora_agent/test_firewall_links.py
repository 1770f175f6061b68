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
"""Which interfaces count as VFs, and what a scan reports."""

from amphora_agent.firewall import links


class Message(dict):
    """What scan() reads of a pyroute2 message: fields and attributes."""

    def __init__(self, attrs, **fields):
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name):
        return self.attrs.get(name)


def link(index, ifname, kind=None, parent=None, bus=None):
    attrs = {'IFLA_IFNAME': ifname}
    if kind:
        attrs['IFLA_LINKINFO'] = Message({'IFLA_INFO_KIND': kind})
    if parent:
        attrs['IFLA_PARENT_DEV_NAME'] = parent
        attrs['IFLA_PARENT_DEV_BUS_NAME'] = bus
    return Message(attrs, index=index)


def address(index, family, text):
    return Message({'IFA_ADDRESS': text}, index=index, family=family)


class FakeIPRoute:

    def __init__(self, links_, addresses):
        self._links = links_
        self._addresses = addresses

    def get_links(self):
        return self._links

    def get_addr(self):
        return self._addresses


def test_scan_recognises_vfs_by_physical_function_or_kind(tmp_path,
                                                          monkeypatch):
    # A PCI device with a physical function is a VF; one without is not.
    (tmp_path / '0000:3b:02.1').mkdir()
    (tmp_path / '0000:3b:02.1' / 'physfn').touch()
    (tmp_path / '0000:3b:00.0').mkdir()
    monkeypatch.setattr(links, '_PCI_DEVICES', str(tmp_path))
    ipr = FakeIPRoute(
        [link(1, 'lo'),
         link(2, 'ens1f0v1', parent='0000:3b:02.1', bus='pci'),
         link(3, 'ens1f0', parent='0000:3b:00.0', bus='pci'),
         link(4, 'veth7', kind='veth'),
         link(5, 'eth0', kind='virtio'),
         link(6, 'usb0', parent='1-1', bus='usb')],
        [address(2, 2, '203.0.113.10'), address(2, 10, '2001:db8::10'),
         address(4, 10, 'fe80::1'), address(1, 2, '127.0.0.1')])
    found = links.scan(ipr, frozenset(['veth']))
    assert {name: link_.is_vf for name, link_ in found.items()} == {
        'ens1f0v1': True, 'ens1f0': False, 'veth7': True, 'eth0': False,
        'usb0': False}
    assert found['ens1f0v1'].addresses == {
        (4, 0xcb00710a), (6, (0x20010db8 << 96) | 0x10)}
    assert found['veth7'].addresses == {(6, (0xfe80 << 112) | 1)}
    assert links.scan(ipr, frozenset())['veth7'].is_vf is False
