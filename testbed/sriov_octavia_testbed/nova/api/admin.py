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
"""The emulator's own admin API, for tests: fault injection and the VF pool.

- ``GET /testbed/faults``: the current fault settings.
- ``POST /testbed/faults`` with a JSON object: merge settings (see
  ``sriov_octavia_testbed.nova.faults``); answers the settings now in force.
- ``DELETE /testbed/faults``: clear all faults, reconnect cut agents.
- ``GET /testbed/pci``: per host and physical network the VFs in total and
  free, and who holds each allocated VF (pci_slot -> server_id, port_id).
- ``GET /testbed/requests``: the Compute and Image API requests served since
  the start or the last ``DELETE /testbed/requests``, per method and path
  (ids replaced by ``{id}``), for benchmarks counting API calls.
"""

import collections
import re
import threading

from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import inventory as pci
from sriov_octavia_testbed.nova import wsgi

PREFIX = '/testbed'
# Server, port, image, group ids and the like in a request path.
_ID = re.compile(r'/[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                 r'[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?=/|$)')


class RequestCounter:
    """Counts the API requests served, by method and path shape."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter()

    def count(self, req):
        if req.path_info.startswith(PREFIX):
            return
        key = f'{req.method} {_ID.sub("/{id}", req.path_info)}'
        with self._lock:
            self._counts[key] += 1

    def snapshot(self):
        with self._lock:
            return dict(self._counts)

    def clear(self):
        with self._lock:
            self._counts.clear()


class AdminAPI:
    def __init__(self, manager, faults, requests=None):
        self.manager = manager
        self.faults = faults
        self.requests = requests or RequestCounter()

    def router(self):
        router = wsgi.Router()
        router.add('GET', PREFIX + '/faults', self.show_faults)
        router.add('POST', PREFIX + '/faults', self.set_faults)
        router.add('DELETE', PREFIX + '/faults', self.clear_faults)
        router.add('GET', PREFIX + '/pci', self.show_pci)
        router.add('GET', PREFIX + '/requests', self.show_requests)
        router.add('DELETE', PREFIX + '/requests', self.clear_requests)
        return router

    def show_requests(self, req):
        return wsgi.json_response({'requests': self.requests.snapshot()})

    def clear_requests(self, req):
        self.requests.clear()
        return wsgi.json_response(None, status=204)

    def show_faults(self, req):
        return wsgi.json_response({'faults': self.faults.current()})

    def set_faults(self, req):
        settings = wsgi.json_body(req)
        if not isinstance(settings, dict):
            raise errors.BadRequest('Faults are a JSON object')
        try:
            faults_mod.check(settings)
        except faults_mod.InvalidFault as e:
            raise errors.BadRequest(str(e))
        if 'agent' in settings:
            self.manager.set_agents_reachable(
                settings.get('servers'), settings['agent'] == 'reachable')
        current = self.faults.update(settings)
        return wsgi.json_response({'faults': current})

    def clear_faults(self, req):
        had_agent_fault = 'agent' in self.faults.current()
        self.faults.clear()
        if had_agent_fault:
            self.manager.set_agents_reachable(None, True)
        return wsgi.json_response(None, status=204)

    def show_pci(self, req):
        inventory = self.manager.inventory
        with self.manager.state.read() as data:
            allocations = data['pci_allocations']
            hosts = {}
            for host in inventory.hosts:
                networks = {}
                for physnet in inventory.physical_networks(host):
                    total = [vf for vf in inventory.vfs(host)
                             if vf.physical_network == physnet]
                    networks[physnet] = {
                        'total': len(total),
                        'free': len(pci.free_vfs(inventory, allocations,
                                                 host, physnet))}
                hosts[host] = {
                    'physical_networks': networks,
                    'allocations': dict(allocations.get(host, {}))}
        return wsgi.json_response({'hosts': hosts})
