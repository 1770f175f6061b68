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
"""Servers and their interfaces (os-interface)."""

import re
import uuid

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import records
from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi


class ServersController:
    def __init__(self, manager):
        self.manager = manager
        self.state = manager.state

    def routes(self):
        return (
            ('GET', '/servers', self.list_servers),
            ('GET', '/servers/detail', self.list_servers_detail),
            ('POST', '/servers', self.create_server),
            ('GET', '/servers/{server_id}', self.show_server),
            ('DELETE', '/servers/{server_id}', self.delete_server),
            ('POST', '/servers/{server_id}/action', self.server_action),
            ('GET', '/servers/{server_id}/os-interface',
             self.list_interfaces),
            ('POST', '/servers/{server_id}/os-interface',
             self.attach_interface),
            ('GET', '/servers/{server_id}/os-interface/{port_id}',
             self.show_interface),
            ('DELETE', '/servers/{server_id}/os-interface/{port_id}',
             self.detach_interface),
        )

    def create_server(self, req):
        body = wsgi.json_body(req)
        project_id = common.project_id(req)
        user_id = common.user_id(req)
        server = self.manager.create_server(body, project_id, user_id)
        return wsgi.json_response({'server': {
            'id': server['id'],
            'links': views.links(common.base_url(req), 'servers',
                                 server['id']),
            'OS-DCF:diskConfig': 'MANUAL',
            'security_groups': views.security_groups(server),
            'adminPass': uuid.uuid4().hex[:12]}}, status=202)

    def _server(self, data, server_id):
        return records.find(data, server_id)

    def _server_view(self, req, server):
        return views.server(server, common.base_url(req),
                            req.environ['nova.version'])

    def show_server(self, req, server_id):
        with self.state.read() as data:
            return wsgi.json_response({'server': self._server_view(
                req, self._server(data, server_id))})

    def _filtered_servers(self, req, data):
        servers = sorted(data['servers'].values(),
                         key=lambda s: s['created'], reverse=True)
        params = req.GET
        # "name" is a regular expression in Nova.
        if params.get('name'):
            try:
                pattern = re.compile(params['name'])
            except re.error as e:
                raise errors.BadRequest(f'Invalid name filter: {e}')
            servers = [s for s in servers if pattern.search(s['name'])]
        for param, key in (('status', 'status'), ('host', 'host'),
                           ('availability_zone', 'availability_zone'),
                           ('flavor', 'flavor_id'), ('image', 'image_id'),
                           ('uuid', 'id')):
            if params.get(param):
                servers = [s for s in servers
                           if str(s[key]).lower()
                           == params[param].lower()]
        return servers

    def list_servers(self, req):
        with self.state.read() as data:
            return wsgi.json_response({'servers': [
                views.server_summary(s, common.base_url(req))
                for s in self._filtered_servers(req, data)]})

    def list_servers_detail(self, req):
        with self.state.read() as data:
            return wsgi.json_response({'servers': [
                self._server_view(req, s)
                for s in self._filtered_servers(req, data)]})

    def delete_server(self, req, server_id):
        self.manager.delete_server(server_id)
        return wsgi.json_response(None, status=204)

    def server_action(self, req, server_id):
        # Only what deleting needs: without soft delete (Nova's default),
        # forceDelete is a plain delete.
        body = wsgi.json_body(req)
        if list(body) != ['forceDelete']:
            raise errors.BadRequest(
                f'Server actions other than forceDelete are not emulated: '
                f'{", ".join(body) or "none given"}')
        self.manager.delete_server(server_id)
        return wsgi.json_response(None, status=202)

    # -- interfaces ---------------------------------------------------------

    def _interfaces(self, server_id):
        with self.state.read() as data:
            return [dict(i) for i in
                    self._server(data, server_id)['interfaces']
                    if 'net_id' in i]

    def list_interfaces(self, req, server_id):
        return wsgi.json_response({'interfaceAttachments': [
            views.interface(i) for i in self._interfaces(server_id)]})

    def show_interface(self, req, server_id, port_id):
        for interface in self._interfaces(server_id):
            if interface['port_id'] == port_id:
                return wsgi.json_response(
                    {'interfaceAttachment': views.interface(interface)})
        raise errors.NotFound(
            f'Instance {server_id} is not attached to port {port_id}.')

    def attach_interface(self, req, server_id):
        body = wsgi.json_body(req).get('interfaceAttachment') or {}
        if body.get('fixed_ips'):
            raise errors.BadRequest(
                'Requesting fixed IPs on attach is not supported by the '
                'testbed; create the port with them and pass port_id')
        record = self.manager.attach_interface(
            server_id, port_id=body.get('port_id'),
            net_id=body.get('net_id'))
        return wsgi.json_response(
            {'interfaceAttachment': views.interface(record)})

    def detach_interface(self, req, server_id, port_id):
        self.manager.detach_interface(server_id, port_id)
        return wsgi.json_response(None, status=202)
