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
"""The PF configures each VF as the cloud does; the agent plugs a real VF."""

import json

import pytest

from tests.functional.igb import igb_lab

PARALLEL_GROUP = 'igb'
pytestmark = pytest.mark.igb


def _sysfs(lab, namespace, path):
    argv = ['cat', path] if namespace is None else [
        'ip', 'netns', 'exec', namespace, 'cat', path]
    return lab.guest.run(argv).stdout.strip()


def test_the_pf_holds_each_port_mac_and_vlan_with_spoof_checking(lab):
    view = lab.pf_view()

    for port in igb_lab.PORTS:
        assert view[port.vf] == {'vf': port.vf, 'mac': port.mac,
                                 'vlan': port.vlan, 'spoofchk': True}
    # What "ip link show" prints for the PF, as an operator checks it.
    shown = lab.in_namespace(igb_lab.HYPERVISOR,
                             ['ip', 'link', 'show', igb_lab.PF]).stdout
    assert (f'vf 0     link/ether {igb_lab.VIP_PORT.mac} brd '
            'ff:ff:ff:ff:ff:ff, vlan 100, spoof checking on') in shown


def test_each_vf_is_an_igbvf_pci_function_with_the_mac_the_pf_gave(
        lab, amphora):
    for port in igb_lab.PORTS:
        ifname = lab.vf_netdevs[port.vf]
        namespace = port.namespace
        if port is igb_lab.VIP_PORT:
            # Where the agent moved it when it plugged the VIP.
            ifname = amphora['interface']['name']
            namespace = 'amphora-haproxy'
        prefix = f'/sys/class/net/{ifname}'
        driver = lab.guest.run(
            ['readlink', '-f', f'/sys/class/net/{ifname}/device/driver']
            if namespace is None else
            ['ip', 'netns', 'exec', namespace, 'readlink', '-f',
             f'{prefix}/device/driver']).stdout.strip()
        assert driver.endswith('/igbvf'), (ifname, driver)
        # Not the random MAC igbvf picks when the PF's handshake fails.
        assert _sysfs(lab, namespace, f'{prefix}/address') == port.mac
        assert _sysfs(lab, namespace, f'{prefix}/device/vendor') == '0x8086'
        assert _sysfs(lab, namespace, f'{prefix}/device/device') == '0x10ca'


def test_the_agent_finds_the_vf_by_mac_and_plugs_it(lab, amphora):
    interface = amphora['interface']

    assert interface['mac_address'] == igb_lab.VIP_PORT.mac
    assert interface['vf'] is True
    assert interface['mtu'] == igb_lab.MTU
    assert f'{igb_lab.VRRP_IP}/24' in interface['addresses']
    assert f'{igb_lab.VIP}/32' in interface['addresses']
    # Moved out of the amphora's root namespace into the data namespace,
    # where the kernel agrees with what the agent reported.
    ifname = interface['name']
    links = json.loads(lab.guest.run(
        ['ip', '-j', '-n', 'amphora-haproxy', '-d', 'link', 'show',
         ifname]).stdout)
    assert links[0]['address'] == igb_lab.VIP_PORT.mac
    assert links[0]['mtu'] == igb_lab.MTU
    assert links[0]['parentbus'] == 'pci'
    assert 'UP' in links[0]['flags']
    assert lab.netdev_with_mac(igb_lab.VIP_PORT.mac) == ''
    routes = lab.guest.run(['ip', '-n', 'amphora-haproxy', 'route', 'show',
                            'table', str(interface['routing_table'])]).stdout
    assert f'{igb_lab.SUBNET} dev {ifname}' in routes
    assert lab.api.get_security_group()['interfaces'] == {ifname: 'vip'}
