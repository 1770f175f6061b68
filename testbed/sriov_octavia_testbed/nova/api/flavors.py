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
"""Flavors and their extra specs (os-extra_specs)."""

import uuid

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi


class FlavorsController:
    def __init__(self, state):
        self.state = state

    def routes(self):
        return (
            ('GET', '/flavors', self.list_flavors),
            ('GET', '/flavors/detail', self.list_flavors_detail),
            ('POST', '/flavors', self.create_flavor),
            ('GET', '/flavors/{flavor_id}', self.show_flavor),
            ('PUT', '/flavors/{flavor_id}', self.update_flavor),
            ('DELETE', '/flavors/{flavor_id}', self.delete_flavor),
            ('GET', '/flavors/{flavor_id}/os-extra_specs',
             self.list_extra_specs),
            ('POST', '/flavors/{flavor_id}/os-extra_specs',
             self.create_extra_specs),
            ('GET', '/flavors/{flavor_id}/os-extra_specs/{key}',
             self.show_extra_spec),
            ('PUT', '/flavors/{flavor_id}/os-extra_specs/{key}',
             self.update_extra_spec),
            ('DELETE', '/flavors/{flavor_id}/os-extra_specs/{key}',
             self.delete_extra_spec),
        )

    def _flavor(self, data, flavor_id):
        return errors.lookup(data['flavors'], flavor_id, 'Flavor')

    def _listed_flavors(self, req, data):
        flavors = sorted(data['flavors'].values(),
                         key=lambda f: (f['created_at'], f['id']))
        is_public = req.GET.get('is_public', 'true').lower()
        if is_public in ('true', 't', '1', 'yes'):
            flavors = [f for f in flavors if f['is_public']]
        elif is_public in ('false', 'f', '0', 'no'):
            flavors = [f for f in flavors if not f['is_public']]
        return flavors

    def _list(self, req, view):
        version = req.environ['nova.version']
        with self.state.read() as data:
            return wsgi.json_response({'flavors': [
                view(f, common.base_url(req), version)
                for f in self._listed_flavors(req, data)]})

    def list_flavors(self, req):
        return self._list(req, views.flavor_summary)

    def list_flavors_detail(self, req):
        return self._list(req, views.flavor)

    def show_flavor(self, req, flavor_id):
        with self.state.read() as data:
            return wsgi.json_response({'flavor': views.flavor(
                self._flavor(data, flavor_id), common.base_url(req),
                req.environ['nova.version'])})

    def create_flavor(self, req):
        body = wsgi.json_body(req).get('flavor') or {}
        try:
            record = {
                'name': str(body['name']),
                'ram': int(body['ram']), 'vcpus': int(body['vcpus']),
                'disk': int(body.get('disk', 0)),
                'ephemeral': int(body.get('OS-FLV-EXT-DATA:ephemeral', 0)),
                'swap': int(body.get('swap') or 0),
                'rxtx_factor': float(body.get('rxtx_factor', 1.0)),
                'is_public': bool(body.get('os-flavor-access:is_public',
                                           True)),
                'description': body.get('description'),
                'extra_specs': {}, 'created_at': common.now(),
            }
        except (KeyError, TypeError, ValueError) as e:
            raise errors.BadRequest(f'Invalid input for flavor: {e}')
        flavor_id = body.get('id')
        record['id'] = (str(uuid.uuid4()) if flavor_id in (None, 'auto')
                        else str(flavor_id))
        with self.state.transaction() as data:
            if record['id'] in data['flavors']:
                raise errors.Conflict(
                    f"Flavor with ID {record['id']} already exists.")
            if any(f['name'] == record['name']
                   for f in data['flavors'].values()):
                raise errors.Conflict(
                    f"Flavor with name {record['name']} already exists.")
            data['flavors'][record['id']] = record
        return wsgi.json_response({'flavor': views.flavor(
            record, common.base_url(req), req.environ['nova.version'])})

    def update_flavor(self, req, flavor_id):
        body = wsgi.json_body(req).get('flavor') or {}
        if set(body) != {'description'}:
            raise errors.BadRequest('Only the description of a flavor can '
                                    'be updated.')
        with self.state.transaction() as data:
            flavor = self._flavor(data, flavor_id)
            flavor['description'] = body['description']
            return wsgi.json_response({'flavor': views.flavor(
                flavor, common.base_url(req), req.environ['nova.version'])})

    def delete_flavor(self, req, flavor_id):
        with self.state.transaction() as data:
            self._flavor(data, flavor_id)
            del data['flavors'][flavor_id]
        return wsgi.json_response(None, status=202)

    def list_extra_specs(self, req, flavor_id):
        with self.state.read() as data:
            return wsgi.json_response({'extra_specs': dict(
                self._flavor(data, flavor_id)['extra_specs'])})

    @staticmethod
    def _check_specs(specs):
        if not isinstance(specs, dict) or not all(
                isinstance(v, (str, int, float, bool))
                for v in specs.values()):
            raise errors.BadRequest('Invalid input for field/attribute '
                                    'extra_specs.')
        return {str(k): str(v) for k, v in specs.items()}

    def create_extra_specs(self, req, flavor_id):
        specs = self._check_specs(wsgi.json_body(req).get('extra_specs'))
        with self.state.transaction() as data:
            self._flavor(data, flavor_id)['extra_specs'].update(specs)
        return wsgi.json_response({'extra_specs': specs})

    def _specs_with(self, data, flavor_id, key):
        """The flavor's extra specs, which must hold ``key``."""
        specs = self._flavor(data, flavor_id)['extra_specs']
        if key not in specs:
            raise errors.NotFound(
                f'Flavor {flavor_id} has no extra specs with key {key}.')
        return specs

    def show_extra_spec(self, req, flavor_id, key):
        with self.state.read() as data:
            specs = self._specs_with(data, flavor_id, key)
            return wsgi.json_response({key: specs[key]})

    def update_extra_spec(self, req, flavor_id, key):
        specs = self._check_specs(wsgi.json_body(req))
        if list(specs) != [key]:
            raise errors.BadRequest('Request body and URI mismatch')
        with self.state.transaction() as data:
            self._flavor(data, flavor_id)['extra_specs'].update(specs)
        return wsgi.json_response(specs)

    def delete_extra_spec(self, req, flavor_id, key):
        with self.state.transaction() as data:
            del self._specs_with(data, flavor_id, key)[key]
        return wsgi.json_response(None, status=200)
