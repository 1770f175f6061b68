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
"""The Compute API v2.1 subset: servers, interfaces, flavors with extra
specs, aggregates, server groups, hypervisors and availability zones."""

import datetime
import re
import uuid

from testbed.nova import errors
from testbed.nova import views
from testbed.nova import wsgi

PREFIX = '/compute'
V21 = PREFIX + '/v2.1'
MIN_VERSION = (2, 1)
MAX_VERSION = (2, 95)
VERSION_HEADERS = ('OpenStack-API-Version', 'X-OpenStack-Nova-API-Version')
DEFAULT_PROJECT = 'testbed'
SERVER_GROUP_POLICIES = ('affinity', 'anti-affinity', 'soft-affinity',
                         'soft-anti-affinity')


def _version_string(version):
    return '%d.%d' % version


def _parse_version(text):
    if text == 'latest':
        return MAX_VERSION
    match = re.fullmatch(r'(\d+)\.(\d+)', text.strip())
    if not match:
        raise errors.BadRequest(
            f'API Version String {text} is of invalid format. Must be of '
            'format MajorNum.MinorNum.')
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise errors.NotAcceptable(
            f'Version {text} is not supported by the API. Minimum is '
            f'{_version_string(MIN_VERSION)} and maximum is '
            f'{_version_string(MAX_VERSION)}.')
    return version


def requested_version(req):
    header = req.headers.get('OpenStack-API-Version', '')
    for part in header.split(','):
        service, _sep, value = part.strip().partition(' ')
        if service.lower() == 'compute' and value:
            return _parse_version(value)
    legacy = req.headers.get('X-OpenStack-Nova-API-Version')
    return _parse_version(legacy) if legacy else MIN_VERSION


def _version_document(host_url):
    return {
        'id': 'v2.1', 'status': 'CURRENT',
        'version': _version_string(MAX_VERSION),
        'min_version': _version_string(MIN_VERSION),
        'updated': '2013-07-23T11:33:21Z',
        'links': [{'rel': 'self', 'href': host_url + V21 + '/'}],
        'media-types': [{
            'base': 'application/json',
            'type': 'application/vnd.openstack.compute+json;version=2.1'}],
    }


def versions(req):
    return wsgi.json_response(
        {'versions': [_version_document(req.host_url)]})


def version(req):
    return wsgi.json_response({'version': _version_document(req.host_url)})


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%f')


class ComputeAPI:
    def __init__(self, manager):
        self.manager = manager
        self.state = manager.state
        self.inventory = manager.inventory

    def router(self):
        router = wsgi.Router()
        router.add('GET', '/', versions)
        router.add('GET', PREFIX, versions)
        router.add('GET', PREFIX + '/', versions)
        router.add('GET', V21, version)
        router.add('GET', V21 + '/', version)
        for method, path, handler in (
                ('GET', '/servers', self.list_servers),
                ('GET', '/servers/detail', self.list_servers_detail),
                ('POST', '/servers', self.create_server),
                ('GET', '/servers/{server_id}', self.show_server),
                ('DELETE', '/servers/{server_id}', self.delete_server),
                ('GET', '/servers/{server_id}/os-interface',
                 self.list_interfaces),
                ('POST', '/servers/{server_id}/os-interface',
                 self.attach_interface),
                ('GET', '/servers/{server_id}/os-interface/{port_id}',
                 self.show_interface),
                ('DELETE', '/servers/{server_id}/os-interface/{port_id}',
                 self.detach_interface),
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
                ('GET', '/os-aggregates', self.list_aggregates),
                ('POST', '/os-aggregates', self.create_aggregate),
                ('GET', '/os-aggregates/{aggregate_id}',
                 self.show_aggregate),
                ('PUT', '/os-aggregates/{aggregate_id}',
                 self.update_aggregate),
                ('DELETE', '/os-aggregates/{aggregate_id}',
                 self.delete_aggregate),
                ('POST', '/os-aggregates/{aggregate_id}/action',
                 self.aggregate_action),
                ('GET', '/os-server-groups', self.list_server_groups),
                ('POST', '/os-server-groups', self.create_server_group),
                ('GET', '/os-server-groups/{group_id}',
                 self.show_server_group),
                ('DELETE', '/os-server-groups/{group_id}',
                 self.delete_server_group),
                ('GET', '/os-hypervisors', self.list_hypervisors),
                ('GET', '/os-hypervisors/detail',
                 self.list_hypervisors_detail),
                ('GET', '/os-hypervisors/{hypervisor_id}',
                 self.show_hypervisor),
                ('GET', '/os-availability-zone', self.list_zones),
                ('GET', '/os-availability-zone/detail',
                 self.list_zones_detail)):
            router.add(method, V21 + path, self._versioned(handler))
        return router

    @staticmethod
    def _versioned(handler):
        """Negotiate the microversion and echo it like Nova does."""
        def call(req, **kwargs):
            try:
                version = requested_version(req)
            except errors.ApiError as e:
                return wsgi.error_response(e)
            req.environ['nova.version'] = version
            try:
                response = handler(req, **kwargs)
            except errors.ApiError as e:
                response = wsgi.error_response(e)
            value = _version_string(version)
            response.headers['OpenStack-API-Version'] = 'compute ' + value
            response.headers['X-OpenStack-Nova-API-Version'] = value
            response.headers['Vary'] = ', '.join(VERSION_HEADERS)
            return response
        return call

    @staticmethod
    def _base(req):
        return req.host_url + V21

    # -- servers ------------------------------------------------------------

    def create_server(self, req):
        body = wsgi.json_body(req)
        project_id = req.headers.get('X-Project-Id', DEFAULT_PROJECT)
        user_id = req.headers.get('X-User-Id', DEFAULT_PROJECT)
        server = self.manager.create_server(body, project_id, user_id)
        return wsgi.json_response({'server': {
            'id': server['id'],
            'links': views.links(self._base(req), 'servers', server['id']),
            'OS-DCF:diskConfig': 'MANUAL',
            'security_groups': [{'name': 'default'}],
            'adminPass': uuid.uuid4().hex[:12]}}, status=202)

    def _server(self, data, server_id):
        server = data['servers'].get(server_id)
        if server is None:
            raise errors.NotFound(
                f'Instance {server_id} could not be found.')
        return server

    def _server_view(self, req, server):
        return views.server(server, self._base(req),
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
            pattern = re.compile(params['name'])
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
                views.server_summary(s, self._base(req))
                for s in self._filtered_servers(req, data)]})

    def list_servers_detail(self, req):
        with self.state.read() as data:
            return wsgi.json_response({'servers': [
                self._server_view(req, s)
                for s in self._filtered_servers(req, data)]})

    def delete_server(self, req, server_id):
        self.manager.delete_server(server_id)
        return wsgi.json_response(None, status=204)

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

    # -- flavors ------------------------------------------------------------

    def _flavor(self, data, flavor_id):
        flavor = data['flavors'].get(flavor_id)
        if flavor is None:
            raise errors.NotFound(f'Flavor {flavor_id} could not be found.')
        return flavor

    def _listed_flavors(self, req, data):
        flavors = sorted(data['flavors'].values(),
                         key=lambda f: (f['created_at'], f['id']))
        is_public = req.GET.get('is_public', 'true').lower()
        if is_public in ('true', 't', '1', 'yes'):
            flavors = [f for f in flavors if f['is_public']]
        elif is_public in ('false', 'f', '0', 'no'):
            flavors = [f for f in flavors if not f['is_public']]
        return flavors

    def list_flavors(self, req):
        version = req.environ['nova.version']
        with self.state.read() as data:
            return wsgi.json_response({'flavors': [
                views.flavor_summary(f, self._base(req), version)
                for f in self._listed_flavors(req, data)]})

    def list_flavors_detail(self, req):
        version = req.environ['nova.version']
        with self.state.read() as data:
            return wsgi.json_response({'flavors': [
                views.flavor(f, self._base(req), version)
                for f in self._listed_flavors(req, data)]})

    def show_flavor(self, req, flavor_id):
        with self.state.read() as data:
            return wsgi.json_response({'flavor': views.flavor(
                self._flavor(data, flavor_id), self._base(req),
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
                'extra_specs': {}, 'created_at': _now(),
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
            record, self._base(req), req.environ['nova.version'])})

    def update_flavor(self, req, flavor_id):
        body = wsgi.json_body(req).get('flavor') or {}
        if set(body) != {'description'}:
            raise errors.BadRequest('Only the description of a flavor can '
                                    'be updated.')
        with self.state.transaction() as data:
            flavor = self._flavor(data, flavor_id)
            flavor['description'] = body['description']
            return wsgi.json_response({'flavor': views.flavor(
                flavor, self._base(req), req.environ['nova.version'])})

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

    def show_extra_spec(self, req, flavor_id, key):
        with self.state.read() as data:
            specs = self._flavor(data, flavor_id)['extra_specs']
            if key not in specs:
                raise errors.NotFound(
                    f'Flavor {flavor_id} has no extra specs with key {key}.')
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
            specs = self._flavor(data, flavor_id)['extra_specs']
            if key not in specs:
                raise errors.NotFound(
                    f'Flavor {flavor_id} has no extra specs with key {key}.')
            del specs[key]
        return wsgi.json_response(None, status=200)

    # -- aggregates ---------------------------------------------------------

    def _aggregate(self, data, aggregate_id):
        aggregate = data['aggregates'].get(str(aggregate_id))
        if aggregate is None:
            raise errors.NotFound(
                f'Aggregate {aggregate_id} could not be found.')
        return aggregate

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
                         'created_at': _now(), 'updated_at': None}
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
            aggregate['updated_at'] = _now()
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
            aggregate['updated_at'] = _now()
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

    # -- server groups ------------------------------------------------------

    def _group(self, data, group_id):
        group = data['server_groups'].get(group_id)
        if group is None:
            raise errors.NotFound(
                f'Instance group {group_id} could not be found.')
        return group

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
                 'project_id': req.headers.get('X-Project-Id',
                                               DEFAULT_PROJECT),
                 'user_id': req.headers.get('X-User-Id', DEFAULT_PROJECT)}
        with self.state.transaction() as data:
            data['server_groups'][group['id']] = group
        return wsgi.json_response(
            {'server_group': views.server_group(group, version)})

    def delete_server_group(self, req, group_id):
        with self.state.transaction() as data:
            self._group(data, group_id)
            del data['server_groups'][group_id]
        return wsgi.json_response(None, status=204)

    # -- hypervisors and zones ----------------------------------------------

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
                    servers if with_servers else None, detail))
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
                                                            _now())})

    def list_zones(self, req):
        return self._zones(detail=False)

    def list_zones_detail(self, req):
        return self._zones(detail=True)
