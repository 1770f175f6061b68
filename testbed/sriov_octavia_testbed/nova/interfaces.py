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
"""Attaching and detaching a server's interfaces.

Attaching is synchronous, as Nova's API call is: a VF is claimed for an
SR-IOV port, the port is bound in Neutron and plugged into the amphora.
Detaching answers at once and unplugs, releases and forgets the port in a
thread of its own.
"""

from oslo_log import log as logging

from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import neutron as neutron_ports
from sriov_octavia_testbed.nova import records as records_mod
from sriov_octavia_testbed.nova import validation
from sriov_octavia_testbed.nova import workers

LOG = logging.getLogger(__name__)


class Interfaces(workers.Worker):

    def attach(self, server_id, port_id=None, net_id=None):
        with self._threads.lock(server_id):
            server = self._records.active(server_id, 'attach_interface')
            if port_id:
                port = validation.free_port(self.neutron, port_id,
                                            errors.NotFound)
                physnet = neutron_ports.physical_network(self.neutron, port)
            elif net_id:
                validation.existing_network(self.neutron, net_id,
                                            errors.NotFound)
                physnet = None
            else:
                raise errors.BadRequest(
                    'Either port_id or net_id must be given.')
            vf = self._claims.claim_for_attach(server, port_id, physnet)
            created = False
            try:
                if self.faults.trips('attach'):
                    raise faults_mod.InjectedFault('attach')
                if not port_id:
                    port_id = self.neutron.create_port(
                        net_id, server['project_id'], server_id,
                        server['availability_zone']).id
                    created = True
                self._records.add_interface(server_id, port_id, created, vf)
                port = self.neutron.bind_port(
                    port_id, server_id, server['host'],
                    server['availability_zone'], vf)
                record = self._records.add_interface(server_id, port_id,
                                                     created, vf, port)
                self._hypervisor.plug(server_id, port)
                return record
            except Exception as e:
                LOG.warning('Attaching port %s to %s failed: %s', port_id,
                            server_id, e)
                self._detach(server_id, port_id, created, unplug=False)
                raise errors.ServerError(
                    f'Failed to attach network adapter device to '
                    f'{server_id}')

    def detach(self, server_id, port_id):
        with self.state.read() as data:
            server = records_mod.find(data, server_id)
            interface = next((i for i in server['interfaces']
                              if i['port_id'] == port_id), None)
        if interface is None:
            raise errors.NotFound(f'Port id {port_id} could not be found.')
        self._records.active(server_id, 'detach_interface')
        self._threads.start(self._detach_locked, server_id, port_id,
                            interface['created_by_nova'])

    def _detach_locked(self, server_id, port_id, created):
        with self._threads.lock(server_id):
            self._detach(server_id, port_id, created, unplug=True)

    def _detach(self, server_id, port_id, created, unplug):
        if unplug:
            self._hypervisor.unplug(server_id, port_id)
        if port_id is None:
            # Attach failed before a port existed: nothing was claimed.
            return
        neutron_ports.release_port(
            self.neutron, {'port_id': port_id, 'created_by_nova': created})
        with self.state.transaction() as data:
            self._claims.release(data, server_id, port_id)
            server = data['servers'].get(server_id)
            if server is not None:
                server['interfaces'] = [i for i in server['interfaces']
                                        if i['port_id'] != port_id]
