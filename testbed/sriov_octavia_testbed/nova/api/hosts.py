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
"""The compute hosts as Nova shows them: os-hypervisors and
os-availability-zone."""

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi


class HostsController:
    def __init__(self, manager):
        self.manager = manager
        self.state = manager.state
        self.inventory = manager.inventory

    def routes(self):
        return (
            ('GET', '/os-hypervisors', self.list_hypervisors),
            ('GET', '/os-hypervisors/detail', self.list_hypervisors_detail),
            ('GET', '/os-hypervisors/{hypervisor_id}', self.show_hypervisor),
            ('GET', '/os-availability-zone', self.list_zones),
            ('GET', '/os-availability-zone/detail', self.list_zones_detail),
        )

    def _hypervisors(self, req, detail):
        version = req.environ['nova.version']
        pattern = req.GET.get('hypervisor_hostname_pattern')
        with_servers = req.GET.get('with_servers', '').lower() in (
            'true', '1', 'yes')
        with self.state.read() as data:
            found = []
            for index, host in enumerate(self.inventory.hosts):
                if pattern and pattern not in host:
                    continue
                servers = [s for s in data['servers'].values()
                           if s['host'] == host]
                found.append(views.hypervisor(
                    index, host, self.inventory.host_ips[host], version,
                    servers, detail, with_servers))
        return found

    def list_hypervisors(self, req):
        return wsgi.json_response(
            {'hypervisors': self._hypervisors(req, detail=False)})

    def list_hypervisors_detail(self, req):
        return wsgi.json_response(
            {'hypervisors': self._hypervisors(req, detail=True)})

    def show_hypervisor(self, req, hypervisor_id):
        for hypervisor in self._hypervisors(req, detail=True):
            if str(hypervisor['id']) == hypervisor_id:
                return wsgi.json_response({'hypervisor': hypervisor})
        raise errors.NotFound(
            f'Hypervisor {hypervisor_id} could not be found.')

    def _zones(self, detail):
        with self.state.read() as data:
            zones = self.manager.host_zones(data)
        return wsgi.json_response({'availabilityZoneInfo':
                                   views.availability_zones(zones, detail,
                                                            common.now())})

    def list_zones(self, req):
        return self._zones(detail=False)

    def list_zones_detail(self, req):
        return self._zones(detail=True)
