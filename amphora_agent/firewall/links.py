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
"""The interfaces the firewall filters, and notice when they change.

An SR-IOV VF is recognised by its PCI device having a physical function.
The netlink link message names the parent device (``IFLA_PARENT_DEV_NAME``
and its bus), and ``/sys/bus/pci/devices/<address>/physfn`` is the same in
every network namespace, unlike ``/sys/class/net``, which shows the
namespace of whoever mounted sysfs, so this works for an agent filtering a
namespace it does not run in. Test beds emulate VFs with veth or macvlan
ends; ``vf_link_kinds`` names those kinds.
"""

import dataclasses
import os
import select
import threading

from oslo_log import log as logging
from pyroute2 import IPRoute
from pyroute2.netlink import rtnl

from amphora_agent.firewall import addresses

LOG = logging.getLogger(__name__)

_PCI_DEVICES = '/sys/bus/pci/devices'
_GROUPS = (rtnl.RTMGRP_LINK | rtnl.RTMGRP_IPV4_IFADDR |
           rtnl.RTMGRP_IPV6_IFADDR)
_FAMILIES = {2: 4, 10: 6}


@dataclasses.dataclass(frozen=True)
class Link:
    ifname: str
    is_vf: bool
    addresses: frozenset  # (family, value)


def _is_vf(message, vf_link_kinds):
    info = message.get_attr('IFLA_LINKINFO')
    kind = info.get_attr('IFLA_INFO_KIND') if info is not None else None
    if kind and kind in vf_link_kinds:
        return True
    parent = message.get_attr('IFLA_PARENT_DEV_NAME')
    if message.get_attr('IFLA_PARENT_DEV_BUS_NAME') != 'pci' or not parent:
        return False
    return os.path.exists(os.path.join(_PCI_DEVICES, parent, 'physfn'))


def scan(ipr, vf_link_kinds):
    """Return ``{ifname: Link}`` for every interface but loopback."""
    by_index = {}
    for message in ipr.get_addr():
        family = _FAMILIES.get(message['family'])
        text = message.get_attr('IFA_ADDRESS')
        if family and text:
            value = addresses.parse_address(text.partition('%')[0])[1]
            by_index.setdefault(message['index'], set()).add((family, value))
    links = {}
    for message in ipr.get_links():
        ifname = message.get_attr('IFLA_IFNAME')
        if ifname == 'lo':
            continue
        links[ifname] = Link(
            ifname=ifname, is_vf=_is_vf(message, vf_link_kinds),
            addresses=frozenset(by_index.get(message['index'], ())))
    return links


class Watcher:
    """Call ``on_change()`` after links or addresses change.

    The callback only says "something changed"; the engine re-scans, which
    also covers events whose messages arrive batched or out of order.
    """

    def __init__(self, namespace, on_change):
        self._namespace = namespace
        self._on_change = on_change
        self._stop_read, self._stop_write = os.pipe()
        self._thread = None
        self._ipr = None
        self._bound = threading.Event()
        self._error = None

    def start(self):
        """Start watching; returns once subscribed, so no change is missed.

        The socket is created, bound and read on the watching thread:
        pyroute2 ties a socket to the event loop of the thread that made it.
        """
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='firewall-link-watcher')
        self._thread.start()
        self._bound.wait()
        if self._error:
            self._thread.join()
            raise self._error

    def _run(self):
        try:
            self._ipr = (IPRoute(netns=self._namespace) if self._namespace
                         else IPRoute())
            self._ipr.bind(groups=_GROUPS)
        except Exception as error:
            self._error = error
            return
        finally:
            self._bound.set()
        try:
            self._watch()
        finally:
            self._ipr.close()

    def _watch(self):
        while True:
            ready, _, _ = select.select(
                [self._ipr.fileno(), self._stop_read], [], [])
            if self._stop_read in ready:
                return
            try:
                self._ipr.get()
                self._on_change()
            except Exception:
                LOG.exception('Handling a link change failed')

    def stop(self):
        os.write(self._stop_write, b'x')
        if self._thread:
            self._thread.join()
        os.close(self._stop_read)
        os.close(self._stop_write)
