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
"""Host aggregates (os-aggregates): hosts, metadata, zones."""

import uuid

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi


class AggregatesController:
    def __init__(self, state, inventory):
        self.state = state
        self.inventory = inventory

    def routes(self):
        return (
            ('GET', '/os-aggregates', self.list_aggregates),
            ('POST', '/os-aggregates', self.create_aggregate),
            ('GET', '/os-aggregates/{aggregate_id}', self.show_aggregate),
            ('PUT', '/os-aggregates/{aggregate_id}', self.update_aggregate),
            ('DELETE', '/os-aggregates/{aggregate_id}',
             self.delete_aggregate),
            ('POST', '/os-aggregates/{aggregate_id}/action',
             self.aggregate_action),
        )

    def _aggregate(self, data, aggregate_id):
        return errors.lookup(data['aggregates'], str(aggregate_id),
                             'Aggregate', shown=aggregate_id)

    def _aggregate_response(self, req, aggregate):
        return wsgi.json_response({'aggregate': views.aggregate(
            aggregate, req.environ['nova.version'])})

    def list_aggregates(self, req):
        with self.state.read() as data:
            return wsgi.json_response({'aggregates': [
                views.aggregate(a, req.environ['nova.version'])
                for a in sorted(data['aggregates'].values(),
                                key=lambda a: a['id'])]})

    def show_aggregate(self, req, aggregate_id):
        with self.state.read() as data:
            return self._aggregate_response(
                req, self._aggregate(data, aggregate_id))

    def create_aggregate(self, req):
        body = wsgi.json_body(req).get('aggregate') or {}
        name = body.get('name')
        if not name:
            raise errors.BadRequest("Invalid input: 'name' is a required "
                                    'property')
        with self.state.transaction() as data:
            if any(a['name'] == name for a in data['aggregates'].values()):
                raise errors.Conflict(f'Aggregate {name} already exists.')
            aggregate_id = data['next_aggregate_id']
            data['next_aggregate_id'] += 1
            metadata = {}
            if body.get('availability_zone'):
                metadata['availability_zone'] = body['availability_zone']
            aggregate = {'id': aggregate_id, 'uuid': str(uuid.uuid4()),
                         'name': name, 'hosts': [], 'metadata': metadata,
                         'created_at': common.now(), 'updated_at': None}
            data['aggregates'][str(aggregate_id)] = aggregate
            return self._aggregate_response(req, aggregate)

    def update_aggregate(self, req, aggregate_id):
        body = wsgi.json_body(req).get('aggregate') or {}
        with self.state.transaction() as data:
            aggregate = self._aggregate(data, aggregate_id)
            if 'availability_zone' in body:
                self._set_metadata(data, aggregate, {
                    'availability_zone': body['availability_zone']})
            if body.get('name'):
                aggregate['name'] = body['name']
            aggregate['updated_at'] = common.now()
            return self._aggregate_response(req, aggregate)

    def delete_aggregate(self, req, aggregate_id):
        with self.state.transaction() as data:
            aggregate = self._aggregate(data, aggregate_id)
            if aggregate['hosts']:
                raise errors.BadRequest(
                    f'Cannot perform action on aggregate {aggregate_id}. '
                    'Reason: Host aggregate is not empty.')
            del data['aggregates'][str(aggregate_id)]
        return wsgi.json_response(None, status=200)

    def aggregate_action(self, req, aggregate_id):
        body = wsgi.json_body(req)
        with self.state.transaction() as data:
            aggregate = self._aggregate(data, aggregate_id)
            if 'add_host' in body:
                self._add_host(data, aggregate, body['add_host'].get('host'))
            elif 'remove_host' in body:
                host = body['remove_host'].get('host')
                if host not in aggregate['hosts']:
                    raise errors.NotFound(
                        f'Cannot remove host {host} in aggregate '
                        f'{aggregate_id}: not found')
                aggregate['hosts'].remove(host)
            elif 'set_metadata' in body:
                self._set_metadata(
                    data, aggregate,
                    (body['set_metadata'] or {}).get('metadata') or {})
            else:
                raise errors.BadRequest('Invalid aggregate action')
            aggregate['updated_at'] = common.now()
            return self._aggregate_response(req, aggregate)

    def _add_host(self, data, aggregate, host):
        if host not in self.inventory.hosts:
            raise errors.NotFound(f'Compute host {host} could not be found.')
        if host in aggregate['hosts']:
            raise errors.Conflict(
                f"Aggregate {aggregate['id']} already has host {host}.")
        zone = aggregate['metadata'].get('availability_zone')
        if zone and zone != self._zone_elsewhere(data, host, aggregate,
                                                 zone):
            raise errors.Conflict(
                f'Cannot add host {host} in aggregate {aggregate["id"]}: '
                'host already in another availability zone')
        aggregate['hosts'].append(host)

    @staticmethod
    def _zone_elsewhere(data, host, aggregate, default):
        """The zone the host's other aggregates put it in (or default)."""
        for other in data['aggregates'].values():
            if other is not aggregate and host in other['hosts']:
                zone = other['metadata'].get('availability_zone')
                if zone:
                    return zone
        return default

    def _set_metadata(self, data, aggregate, metadata):
        zone = metadata.get('availability_zone')
        if zone:
            for host in aggregate['hosts']:
                if self._zone_elsewhere(data, host, aggregate, zone) != zone:
                    raise errors.BadRequest(
                        f'Cannot update aggregate {aggregate["id"]}: host '
                        f'{host} is in another availability zone')
        for key, value in metadata.items():
            if value is None:
                aggregate['metadata'].pop(key, None)
            else:
                aggregate['metadata'][key] = str(value)
