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
"""VFs: hot-plugging Neutron ports into amphorae, and unplugging them.

A VF is a veth pair: one end, with the Neutron port's MAC address, appears
in the amphora's data namespace as a hot-plugged VF would (down, without an
address); the other joins the bridge of the port's network in
``<prefix>-phys``. Which VF is which interface is in the amphora's record.
"""

from oslo_log import log as logging

from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import links

LOG = logging.getLogger(__name__)


class Vfs:

    def __init__(self, names, records, networks):
        self._names = names
        self._records = records
        self._lock = records.lock
        self._networks = networks

    def attach(self, server_id, port, subnet=None):
        """Hot-plug a "VF" for a Neutron port into the amphora.

        ``port`` is the Neutron port dict (``id``, ``mac_address``,
        ``network_id``); ``subnet``, if given, makes sure the network's
        bridge carries the subnet's gateway. The VF appears in the data
        namespace as ``eth<N>`` with the port's MAC, down and without
        address, like a freshly plugged VF. Returns its interface name.
        """
        with self._lock:
            record = self._records.get(server_id)
            if port['id'] in record['vfs']:
                raise errors.PlumbingError(f"port {port['id']} is attached "
                                           f'to amphora {server_id} already')
            bridge = self._networks.ensure_network(port['network_id'],
                                                   subnet)
            peer = self._names.vf_peer(port['id'])
            if links.find(self._names.phys_namespace, peer):
                raise errors.PlumbingError(f"port {port['id']} is attached "
                                           f'to another amphora')
            ifname = _free_ifname(record['data_namespace'])
            self._networks.plug(record['data_namespace'], ifname,
                                port['mac_address'], peer, bridge)
            record['vfs'][port['id']] = {
                'ifname': ifname, 'peer': peer, 'mac': port['mac_address'],
                'network_id': port['network_id'], 'bridge': bridge}
            self._records.save(record)
            LOG.info('Port %s attached to amphora %s as %s', port['id'],
                     server_id, ifname)
            return ifname

    def detach(self, server_id, port_id):
        with self._lock:
            record = self._records.get(server_id)
            vf = record['vfs'].pop(port_id, None)
            if vf is None:
                raise errors.PlumbingError(f'port {port_id} is not attached '
                                           f'to amphora {server_id}')
            # The veth pair goes with either end, wherever the amphora's
            # agent may have moved or renamed its own end.
            links.delete(self._names.phys_namespace, vf['peer'])
            self._records.save(record)
            LOG.info('Port %s detached from amphora %s', port_id, server_id)

    def of(self, server_id):
        """``{port id: {'ifname', 'peer', 'mac', 'network_id', 'bridge'}}``."""
        return dict(self._records.get(server_id)['vfs'])


def _free_ifname(namespace):
    taken = set(links.names(namespace))
    number = 1
    while f'eth{number}' in taken:
        number += 1
    return f'eth{number}'
