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
"""nova-compute's virt driver: servers as amphorae in the plumbing.

With a fabric (``sriov_octavia_testbed.plumbing``), a server becomes a
namespace running the amphora agent and its ports become VFs; without
(API-only emulation), servers get no namespaces and every call here does
nothing.
"""

import base64

from oslo_log import log as logging

from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import neutron as neutron_ports

LOG = logging.getLogger(__name__)


class Hypervisor:

    def __init__(self, fabric, neutron, faults, records):
        # None: API-only emulation, servers get no namespaces.
        self.fabric = fabric
        self.neutron = neutron
        self.faults = faults
        self._records = records

    def spawn(self, server, ports):
        """Turn the server into an amphora: namespaces, agent, VFs.

        The first port with a normal vNIC is the management one (Octavia
        boots amphorae with the lb-mgmt-net first); every other port is
        plugged as a data-plane "VF". A server without such a port stays
        API state only: there is no way to reach an agent on it.
        """
        if self.fabric is None:
            return
        server_id = server['id']
        mgmt = next((p for p in ports if p.binding_vnic_type
                     not in neutron_ports.SRIOV_VNIC_TYPES), None)
        if mgmt is None:
            LOG.warning('Server %s has no management port: no amphora is '
                        'started for it', server_id)
            return
        self._records.mark(server_id, spawned=True)
        # Config drive or metadata service, cloud-init in the guest reads
        # the same user data.
        user_data = (base64.b64decode(server['user_data'])
                     if server.get('user_data') else None)
        self.fabric.boot_amphora(
            server_id, mgmt.to_dict(computed=False),
            mgmt_subnet=self._subnet(mgmt), user_data=user_data)
        if self.faults.agents_unreachable:
            self.fabric.set_agent_reachable(server_id, False)
        for port in ports:
            if port is not mgmt:
                self._plug(server_id, port)

    def _subnet(self, port):
        if not port.fixed_ips:
            return None
        return self.neutron.get_subnet(
            port.fixed_ips[0]['subnet_id']).to_dict(computed=False)

    def plug(self, server_id, port):
        """Hot-plug a bound port into the server's amphora as a VF."""
        if self.fabric is not None:
            self._plug(server_id, port)

    def _plug(self, server_id, port):
        self.fabric.attach_vf(server_id, port.to_dict(computed=False),
                              self._subnet(port))

    def unplug(self, server_id, port_id):
        """Unplug the port's VF; a failure is logged, not raised."""
        if self.fabric is None:
            return
        try:
            self.fabric.detach_vf(server_id, port_id)
        except Exception:
            LOG.exception('Unplugging %s from %s failed', port_id,
                          server_id)

    def destroy(self, server):
        """Remove the amphora of a spawned server; failures are logged."""
        if self.fabric is None or not server['spawned']:
            return
        try:
            self.fabric.delete_amphora(server['id'])
        except Exception:
            LOG.exception('Removing the namespaces of %s failed',
                          server['id'])

    def set_agents_reachable(self, server_ids, reachable):
        """Cut or restore the management path of amphora agents.

        ``server_ids`` None means every spawned server. Returns the ids of
        the servers changed.
        """
        if self.fabric is None:
            raise errors.BadRequest('The emulator runs without kernel '
                                    'plumbing: there are no agents')
        with self._records.state.read() as data:
            spawned = [s['id'] for s in data['servers'].values()
                       if s['spawned']]
        changed = []
        for server_id in (spawned if server_ids is None else server_ids):
            if server_id not in spawned:
                raise errors.NotFound(
                    f'Instance {server_id} has no amphora agent.')
            self.fabric.set_agent_reachable(server_id, reachable)
            changed.append(server_id)
        return changed
