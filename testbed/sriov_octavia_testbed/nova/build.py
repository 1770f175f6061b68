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
"""Building a server on its host, and giving back what it holds.

The build runs in a thread of its own after the create request answered:
it schedules the server and claims its VFs (``claims``), creates and binds
its ports in Neutron, and spawns it (``hypervisor``) before it turns
ACTIVE, or ERROR with a fault like Nova's once everything it got is given
back.
"""

from oslo_log import log as logging

from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import neutron as neutron_ports
from sriov_octavia_testbed.nova import records as records_mod
from sriov_octavia_testbed.nova import scheduler
from sriov_octavia_testbed.nova import workers

LOG = logging.getLogger(__name__)


class Builder(workers.Worker):

    def build(self, server_id):
        with self._threads.lock(server_id):
            try:
                server = self._claims.schedule(server_id)
            except scheduler.NoValidHost as e:
                LOG.warning('Server %s: %s (%s)', server_id, e, e.details)
                self._records.set_error(server_id, str(e), e.details)
                return
            if server is None:
                return
            try:
                self._build_on_host(server)
            except Exception as e:
                LOG.exception('Build of server %s failed', server_id)
                self.tear_down(server_id)
                self._records.set_error(
                    server_id,
                    f'Build of instance {server_id} aborted: {e}', repr(e))

    def _build_on_host(self, server):
        server_id, host = server['id'], server['host']
        zone = server['availability_zone']
        ports = []
        for request in server['requested_networks']:
            if request.get('port_id'):
                port_id, created = request['port_id'], False
            else:
                # Nova puts the requested groups on the ports it creates,
                # never on ports the request brought.
                port = self.neutron.create_port(
                    request['network_id'], server['project_id'], server_id,
                    zone, fixed_ip=request.get('fixed_ip'),
                    security_group_ids=[
                        group['id'] for group
                        in server.get('security_groups') or ()] or None)
                port_id, created = port.id, True
            vf = self._claims.vf(host, request.get('pci_slot'))
            # Record first: a failing bind must still be cleaned up.
            self._records.add_interface(server_id, port_id, created, vf)
            port = self.neutron.bind_port(port_id, server_id, host, zone, vf)
            self._records.add_interface(server_id, port_id, created, vf,
                                        port)
            ports.append(port)
        if self.faults.trips('boot'):
            raise faults_mod.InjectedFault('spawning on the hypervisor')
        self._hypervisor.spawn(server, ports)
        self._records.mark(server_id, status='ACTIVE', vm_state='active',
                           task_state=None,
                           power_state=records_mod.RUNNING,
                           launched_at=records_mod.now())

    def tear_down(self, server_id):
        """Give back everything a server holds: namespaces, ports, VFs."""
        with self.state.read() as data:
            server = dict(data['servers'][server_id])
        self._hypervisor.destroy(server)
        for interface in server['interfaces']:
            try:
                neutron_ports.release_port(self.neutron, interface)
            except Exception:
                # Keep going: the VFs and the other ports must come back.
                LOG.exception('Releasing port %s of %s failed',
                              interface['port_id'], server_id)
        with self.state.transaction() as data:
            self._claims.release(data, server_id)
            server = data['servers'][server_id]
            server['interfaces'] = []
            server['spawned'] = False
