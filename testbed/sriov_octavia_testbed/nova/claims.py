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
"""Where a server goes, and the VFs it claims there.

The scheduler's part (host states from the inventory, the aggregates and
the VFs still free; the request spec from the flavor, zone and server
group) and the PCI claims a build or an interface attach makes.
"""

import collections

from oslo_log import log as logging

from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import inventory as pci
from sriov_octavia_testbed.nova import scheduler

LOG = logging.getLogger(__name__)


class Claims:

    def __init__(self, state, inventory, faults):
        self.state = state
        self.inventory = inventory
        self.faults = faults

    def host_zones(self, data):
        states = scheduler.host_states(
            self.inventory.hosts, list(data['aggregates'].values()), {}, {})
        return {h.name: h.availability_zone for h in states}

    def _host_states(self, data):
        allocations = data['pci_allocations']
        free = {}
        for host in self.inventory.hosts:
            counts = pci.free_vf_counts(self.inventory, allocations, host)
            if self.faults.vf_exhausted:
                counts = dict.fromkeys(counts, 0)
            free[host] = counts
        instances = collections.Counter(
            s['host'] for s in data['servers'].values() if s['host'])
        return scheduler.host_states(
            self.inventory.hosts, list(data['aggregates'].values()), free,
            instances)

    @staticmethod
    def _request_spec(data, server):
        spec = scheduler.RequestSpec(
            extra_specs=server['flavor']['extra_specs'],
            availability_zone=server['requested_zone'],
            forced_host=server['forced_host'],
            pci_requests=dict(collections.Counter(
                r['physical_network'] for r in server['requested_networks']
                if r['physical_network'] is not None)))
        group = data['server_groups'].get(server['group_id'] or '')
        if group:
            spec.group_policy = group['policy']
            spec.group_max_per_host = int(
                group['rules'].get('max_server_per_host', 1))
            spec.group_hosts = [
                data['servers'][m]['host'] for m in group['members']
                if m != server['id'] and m in data['servers']
                and data['servers'][m]['host']]
        return spec

    def schedule(self, server_id):
        """Pick a host and claim the VFs there, in one step.

        Returns the server's record as it then is; None if the server was
        deleted meanwhile. Raises NoValidHost.
        """
        with self.state.transaction() as data:
            server = data['servers'].get(server_id)
            if server is None:
                # Deleted before the build thread got going.
                return None
            if self.faults.trips('schedule'):
                raise scheduler.NoValidHost(
                    str(faults_mod.InjectedFault('scheduling')))
            host = scheduler.select_host(self._request_spec(data, server),
                                         self._host_states(data))
            server['host'] = host.name
            server['availability_zone'] = host.availability_zone
            server['task_state'] = 'networking'
            for request in server['requested_networks']:
                if request['physical_network'] is not None:
                    vf = pci.claim(self.inventory, data['pci_allocations'],
                                   host.name, request['physical_network'],
                                   server_id, request.get('port_id'))
                    request['pci_slot'] = vf.pci_slot
            return dict(server)

    def vf(self, host, pci_slot):
        """The VF a build claimed on ``host``, None for no slot."""
        return pci.find_vf(self.inventory, host, pci_slot) if pci_slot \
            else None

    def claim_for_attach(self, server, port_id, physnet):
        """A VF on the server's host for ``physnet``; None for no physnet."""
        if physnet is None:
            return None
        with self.state.transaction() as data:
            try:
                if self.faults.vf_exhausted:
                    raise pci.PciClaimFailed('VF exhaustion injected')
                return pci.claim(self.inventory, data['pci_allocations'],
                                 server['host'], physnet, server['id'],
                                 port_id)
            except pci.PciClaimFailed as e:
                LOG.warning('Attach of %s to %s: %s', port_id, server['id'],
                            e)
                raise errors.BadRequest(
                    f"Failed to claim PCI device for {server['id']} during "
                    'interface attach')

    @staticmethod
    def release(data, server_id, port_id=None):
        """Give back the VFs of a server (of one of its ports)."""
        pci.release(data['pci_allocations'], server_id, port_id)
