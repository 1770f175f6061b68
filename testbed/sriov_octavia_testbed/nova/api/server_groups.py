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
"""Server groups (os-server-groups) and their policies."""

import uuid

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi

SERVER_GROUP_POLICIES = ('affinity', 'anti-affinity', 'soft-affinity',
                         'soft-anti-affinity')


class ServerGroupsController:
    def __init__(self, state):
        self.state = state

    def routes(self):
        return (
            ('GET', '/os-server-groups', self.list_server_groups),
            ('POST', '/os-server-groups', self.create_server_group),
            ('GET', '/os-server-groups/{group_id}', self.show_server_group),
            ('DELETE', '/os-server-groups/{group_id}',
             self.delete_server_group),
        )

    def _group(self, data, group_id):
        return errors.lookup(data['server_groups'], group_id,
                             'Instance group')

    def list_server_groups(self, req):
        with self.state.read() as data:
            return wsgi.json_response({'server_groups': [
                views.server_group(g, req.environ['nova.version'])
                for g in data['server_groups'].values()]})

    def show_server_group(self, req, group_id):
        with self.state.read() as data:
            return wsgi.json_response({'server_group': views.server_group(
                self._group(data, group_id), req.environ['nova.version'])})

    def create_server_group(self, req):
        body = wsgi.json_body(req).get('server_group') or {}
        version = req.environ['nova.version']
        if version >= (2, 64):
            policy, rules = body.get('policy'), body.get('rules') or {}
        else:
            policies = body.get('policies') or []
            policy, rules = (policies[0] if len(policies) == 1 else None), {}
        if not body.get('name') or policy not in SERVER_GROUP_POLICIES:
            raise errors.BadRequest(
                'Invalid input: a name and one policy of '
                f'{", ".join(SERVER_GROUP_POLICIES)} are required')
        if rules and (policy != 'anti-affinity'
                      or set(rules) != {'max_server_per_host'}):
            raise errors.BadRequest(
                'Only the anti-affinity policy takes a rule, '
                'max_server_per_host')
        group = {'id': str(uuid.uuid4()), 'name': body['name'],
                 'policy': policy, 'rules': rules, 'members': [],
                 'project_id': common.project_id(req),
                 'user_id': common.user_id(req)}
        with self.state.transaction() as data:
            data['server_groups'][group['id']] = group
        return wsgi.json_response(
            {'server_group': views.server_group(group, version)})

    def delete_server_group(self, req, group_id):
        with self.state.transaction() as data:
            self._group(data, group_id)
            del data['server_groups'][group_id]
        return wsgi.json_response(None, status=204)
