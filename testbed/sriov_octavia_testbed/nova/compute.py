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
"""Servers and their interfaces: what nova-api, the conductor, the scheduler
and nova-compute do between them, in one process.

Creating a server answers at once with BUILD; a thread then schedules it,
claims VFs, creates/binds its ports in Neutron and spawns it through the
plumbing (a namespace running the amphora agent) before it turns ACTIVE, or
ERROR with a fault like Nova's. Deleting and detaching are asynchronous too;
attaching is synchronous, as Nova's API call is. A per-server lock keeps the
threads of one server in order.

``ComputeManager`` is what the API calls; the parts are ``validation``
(nova-api's checks of a create request), ``claims`` (scheduling and VF
claims), ``build`` (build on a host, tear down), ``interfaces`` (attach and
detach), ``hypervisor`` (the plumbing), ``records`` (the servers'
records) and ``workers`` (their threads and locks).
"""

import uuid

from sriov_octavia_testbed.nova import build as build_mod
from sriov_octavia_testbed.nova import claims as claims_mod
from sriov_octavia_testbed.nova import hypervisor as hypervisor_mod
from sriov_octavia_testbed.nova import interfaces as interfaces_mod
from sriov_octavia_testbed.nova import records as records_mod
from sriov_octavia_testbed.nova import validation
from sriov_octavia_testbed.nova import workers


class ComputeManager:
    def __init__(self, state, inventory, neutron, fabric, faults):
        self.state = state
        self.inventory = inventory
        self.neutron = neutron
        # None: API-only emulation, servers get no namespaces.
        self.fabric = fabric
        self.faults = faults
        self._threads = workers.ServerThreads()
        self._claims = claims_mod.Claims(state, inventory, faults)
        self._records = records_mod.ServerRecords(state, neutron)
        self._hypervisor = hypervisor_mod.Hypervisor(fabric, neutron, faults,
                                                     self._records)
        parts = (state, neutron, faults, self._threads, self._claims,
                 self._records, self._hypervisor)
        self._builder = build_mod.Builder(*parts)
        self._interfaces = interfaces_mod.Interfaces(*parts)

    def host_zones(self, data):
        return self._claims.host_zones(data)

    # -- create -------------------------------------------------------------

    def create_server(self, body, project_id, user_id):
        req, hints, checked = validation.create_request(
            self.neutron, body, project_id)
        with self.state.transaction() as data:
            flavor_id, image_id, zone, host, group_id = (
                validation.references(data, req, hints,
                                      self.host_zones(data)))
            server_id = str(uuid.uuid4())
            timestamp = records_mod.now()
            data['servers'][server_id] = {
                'id': server_id, 'name': req['name'],
                'project_id': project_id, 'user_id': user_id,
                # Nova keeps a copy: the server outlives flavor changes.
                'flavor_id': flavor_id,
                'flavor': dict(data['flavors'][flavor_id]),
                'image_id': image_id,
                'requested_zone': zone, 'forced_host': host,
                'availability_zone': zone or '',
                'group_id': group_id, 'host': None,
                'status': 'BUILD', 'vm_state': 'building',
                'task_state': 'scheduling',
                'power_state': records_mod.NOSTATE,
                'created': timestamp, 'updated': timestamp,
                'launched_at': None, 'fault': None,
                'metadata': req.get('metadata') or {},
                'key_name': req.get('key_name'),
                'user_data': checked['user_data'],
                'config_drive': checked['config_drive'],
                'security_groups': checked['security_groups'],
                'description': req.get('description'),
                'requested_networks': checked['requested_networks'],
                'interfaces': [],
                'spawned': False,
            }
            if group_id:
                data['server_groups'][group_id]['members'].append(server_id)
            server = dict(data['servers'][server_id])
        self._threads.start(self._builder.build, server_id)
        return server

    # -- delete -------------------------------------------------------------

    def delete_server(self, server_id):
        with self.state.transaction() as data:
            records_mod.find(data, server_id)['task_state'] = 'deleting'
        self._threads.start(self._delete, server_id)

    def _delete(self, server_id):
        with self._threads.lock(server_id):
            self._builder.tear_down(server_id)
            with self.state.transaction() as data:
                server = data['servers'].pop(server_id, None)
                group = data['server_groups'].get(
                    (server or {}).get('group_id') or '')
                if group and server_id in group['members']:
                    group['members'].remove(server_id)
        self._threads.forget(server_id)

    # -- interfaces ---------------------------------------------------------

    def attach_interface(self, server_id, port_id=None, net_id=None):
        return self._interfaces.attach(server_id, port_id, net_id)

    def detach_interface(self, server_id, port_id):
        self._interfaces.detach(server_id, port_id)

    # -- process life -------------------------------------------------------

    def recover(self):
        """Finish what a previous run of the emulator left half done."""
        with self.state.read() as data:
            servers = [dict(s) for s in data['servers'].values()]
        for server in servers:
            if server['task_state'] == 'deleting':
                self._threads.start(self._delete, server['id'])
            elif server['status'] == 'BUILD':
                self._builder.tear_down(server['id'])
                self._records.set_error(
                    server['id'],
                    'Build of instance %s aborted: the compute service '
                    'restarted during the build' % server['id'], 'restart')

    def wait(self, timeout=None):
        """Let running builds/deletes finish (used on shutdown)."""
        self._threads.wait(timeout)

    # -- agents -------------------------------------------------------------

    def set_agents_reachable(self, server_ids, reachable):
        return self._hypervisor.set_agents_reachable(server_ids, reachable)
