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
"""The hypervisor's side of a VF: its MAC, VLAN and spoof checking.

What Nova's libvirt driver and Neutron's sriov-nic-agent do before a VF is
handed to a guest: the PF is told, through netlink (``ip link set <pf> vf
<n> mac ... vlan ... spoofchk on``), which MAC the VF may use and which
VLAN its frames belong to, and the PF's embedded switch enforces both.

Run in the guest as ``python -m sriov_octavia_testbed.sriov_guest.pf``:

- ``create <pf> <count>``: make ``count`` VFs (no driver binds them yet);
- ``bind <pf> <driver>``: bind every VF of ``pf`` to ``driver``;
- ``set <pf> <vf> --mac M [--vlan V] [--spoofchk on|off]``;
- ``show <pf>``: the PF's view of its VFs, as JSON;
- ``netdev <pf> <vf>``: the VF's interface, once a driver bound it.
"""

import argparse
import glob
import json
import os
import sys

from pyroute2 import IPRoute

# RTEXT_FILTER_VF: without it the kernel leaves IFLA_VFINFO_LIST out.
_EXT_FILTER_VF = 1


def _index(ipr, pf):
    found = ipr.link_lookup(ifname=pf)
    if not found:
        raise LookupError(f'no interface {pf}')
    return found[0]


def create(pf, count):
    """Make ``count`` VFs on ``pf``, left for a driver to bind later.

    Nova hands a VF to a guest before the guest's driver sees it; so here
    the VFs are configured first and ``igbvf`` bound after (``bind``).
    """
    device = f'/sys/class/net/{pf}/device'
    with open(f'{device}/sriov_drivers_autoprobe', 'w') as autoprobe:
        autoprobe.write('0')
    with open(f'{device}/sriov_numvfs', 'w') as numvfs:
        numvfs.write(str(count))


def bind(pf, driver):
    """Bind the VFs of ``pf`` to ``driver``, as a guest's kernel does.

    With the PF's autoprobe off, only a VF whose ``driver_override`` names
    a driver may be probed at all.
    """
    for virtfn in sorted(glob.glob(f'/sys/class/net/{pf}/device/virtfn*')):
        device = os.path.basename(os.path.realpath(virtfn))
        with open(f'{virtfn}/driver_override', 'w') as override:
            override.write(driver)
        with open('/sys/bus/pci/drivers_probe', 'w') as probe:
            probe.write(device)


def set_vf(pf, vf, mac, vlan=0, spoofchk=True):
    """Give VF ``vf`` of ``pf`` its port's MAC and VLAN (0: untagged)."""
    with IPRoute() as ipr:
        ipr.link('set', index=_index(ipr, pf),
                 vf={'vf': vf, 'mac': mac, 'vlan': vlan,
                     'spoofchk': int(spoofchk)})


def show(pf):
    """``[{vf, mac, vlan, spoofchk}]`` as the PF reports them."""
    with IPRoute() as ipr:
        link = ipr.get_links(_index(ipr, pf), ext_mask=_EXT_FILTER_VF)[0]
    result = []
    vfinfo_list = link.get_attr('IFLA_VFINFO_LIST')
    for info in vfinfo_list.get_attrs('IFLA_VF_INFO') if vfinfo_list else ():
        mac = info.get_attr('IFLA_VF_MAC')
        vlan = info.get_attr('IFLA_VF_VLAN')
        spoofchk = info.get_attr('IFLA_VF_SPOOFCHK')
        result.append({'vf': mac['vf'], 'mac': mac['mac'],
                       'vlan': vlan['vlan'],
                       'spoofchk': bool(spoofchk['spoofchk'])})
    return result


def netdev(pf, vf):
    """The interface of VF ``vf`` of ``pf`` once a driver bound it."""
    names = glob.glob(f'/sys/class/net/{pf}/device/virtfn{vf}/net/*')
    return os.path.basename(names[0]) if names else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    create_parser = commands.add_parser('create')
    create_parser.add_argument('pf')
    create_parser.add_argument('count', type=int)
    bind_parser = commands.add_parser('bind')
    bind_parser.add_argument('pf')
    bind_parser.add_argument('driver')
    set_parser = commands.add_parser('set')
    set_parser.add_argument('pf')
    set_parser.add_argument('vf', type=int)
    set_parser.add_argument('--mac', required=True)
    set_parser.add_argument('--vlan', type=int, default=0)
    set_parser.add_argument('--spoofchk', choices=('on', 'off'),
                            default='on')
    show_parser = commands.add_parser('show')
    show_parser.add_argument('pf')
    netdev_parser = commands.add_parser('netdev')
    netdev_parser.add_argument('pf')
    netdev_parser.add_argument('vf', type=int)
    args = parser.parse_args(argv)
    if args.command == 'create':
        create(args.pf, args.count)
    elif args.command == 'bind':
        bind(args.pf, args.driver)
    elif args.command == 'set':
        set_vf(args.pf, args.vf, args.mac, args.vlan,
               args.spoofchk == 'on')
    elif args.command == 'show':
        json.dump(show(args.pf), sys.stdout)
    else:
        print(netdev(args.pf, args.vf) or '')


if __name__ == '__main__':
    main()
