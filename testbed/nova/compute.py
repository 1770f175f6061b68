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
"""

import base64
import binascii
import collections
import datetime
import threading
import uuid

from oslo_log import log as logging

from testbed.nova import errors
from testbed.nova import faults as faults_mod
from testbed.nova import inventory as pci
from testbed.nova import neutron as neutron_ports
from testbed.nova import scheduler

LOG = logging.getLogger(__name__)

# nova-api's limit on user data, base64 encoded.
MAX_USER_DATA = 65535

# Nova's power states.
NOSTATE = 0
RUNNING = 1


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def resource_id(ref):
    """Nova accepts ids and full URLs for flavorRef/imageRef."""
    return str(ref).rstrip('/').rsplit('/', 1)[-1]


class ComputeManager:
    def __init__(self, state, inventory, neutron, fabric, faults):
        self.state = state
        self.inventory = inventory
        self.neutron = neutron
        # None: API-only emulation, servers get no namespaces.
        self.fabric = fabric
        self.faults = faults
        self._locks = {}
        self._locks_guard = threading.Lock()
        self._threads = []

    def _server_lock(self, server_id):
        with self._locks_guard:
            return self._locks.setdefault(server_id, threading.Lock())

    # -- availability zones -------------------------------------------------

    def host_zones(self, data):
        states = scheduler.host_states(
            self.inventory.hosts, list(data['aggregates'].values()), {}, {})
        return {h.name: h.availability_zone for h in states}

    # -- create -------------------------------------------------------------

    def create_server(self, body, project_id, user_id):
        req = body.get('server')
        if not isinstance(req, dict) or not req.get('name'):
            raise errors.BadRequest("Invalid input: 'name' is a required "
                                    "property")
        hints = (body.get('OS-SCH-HNT:scheduler_hints')
                 or body.get('os:scheduler_hints') or {})
        requested = self._requested_networks(req.get('networks'))
        user_data = self._user_data(req.get('user_data'))
        config_drive = self._config_drive(req.get('config_drive'))
        security_groups = self._security_groups(req.get('security_groups'),
                                                project_id)
        if req.get('key_name') is not None:
            # No key pair exists here, so none can be named; nova-api
            # answers this for a name it does not know.
            raise errors.BadRequest('Invalid key_name provided.')
        with self.state.transaction() as data:
            flavor_id = resource_id(req.get('flavorRef', ''))
            if flavor_id not in data['flavors']:
                raise errors.BadRequest(
                    f'Flavor {flavor_id} could not be found.')
            image_id = resource_id(req.get('imageRef', ''))
            if image_id not in data['images']:
                raise errors.BadRequest('Can not find requested image')
            zone, host = scheduler.parse_availability_zone(
                req.get('availability_zone'))
            zones = self.host_zones(data)
            if zone and zone not in zones.values():
                raise errors.BadRequest(
                    'The requested availability zone is not available')
            if host and host not in zones:
                raise errors.BadRequest(
                    f'Compute host {host} could not be found.')
            group_id = hints.get('group')
            if group_id and group_id not in data['server_groups']:
                raise errors.BadRequest(
                    f'Instance group {group_id} could not be found.')
            server_id = str(uuid.uuid4())
            timestamp = now()
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
                'task_state': 'scheduling', 'power_state': NOSTATE,
                'created': timestamp, 'updated': timestamp,
                'launched_at': None, 'fault': None,
                'metadata': req.get('metadata') or {},
                'key_name': req.get('key_name'),
                'user_data': user_data,
                'config_drive': config_drive,
                'security_groups': security_groups,
                'description': req.get('description'),
                'requested_networks': requested, 'interfaces': [],
                'spawned': False,
            }
            if group_id:
                data['server_groups'][group_id]['members'].append(server_id)
            server = dict(data['servers'][server_id])
        self._start(self._build, server_id)
        return server

    @staticmethod
    def _user_data(user_data):
        """nova-api's checks: base64, at most MAX_USER_DATA bytes."""
        if user_data is None:
            return None
        if not isinstance(user_data, str):
            raise errors.BadRequest("Invalid input for field/attribute "
                                    "user_data.")
        if len(user_data) > MAX_USER_DATA:
            raise errors.BadRequest(
                f'User data too large. User data must be no larger than '
                f'{MAX_USER_DATA} bytes once base64 encoded. Your data is '
                f'{len(user_data)} bytes')
        try:
            base64.b64decode(user_data, validate=True)
        except binascii.Error:
            raise errors.BadRequest('User data needs to be valid base 64.')
        return user_data

    @staticmethod
    def _config_drive(value):
        """As nova-api: a boolean or its string, shown as 'True' or ''."""
        if value in (None, '', False, 'False', 'false'):
            return ''
        if value in (True, 'True', 'true'):
            return 'True'
        raise errors.BadRequest("Invalid input for field/attribute "
                                f"config_drive. Value: {value}.")

    def _security_groups(self, requested, project_id):
        """Resolve ``[{"name": name or id}]`` as nova-api does in Neutron.

        Returns ``[{"id", "name"}]``; None when the request named none
        (Neutron then gives Nova's ports the project's default group).
        """
        if requested is None:
            return None
        if not isinstance(requested, list) or not all(
                isinstance(entry, dict) and entry.get('name')
                for entry in requested):
            raise errors.BadRequest("Invalid input for field/attribute "
                                    "security_groups.")
        resolved = []
        for entry in requested:
            group = self.neutron.find_security_group(entry['name'],
                                                     project_id)
            if group is None:
                raise errors.BadRequest(
                    f"Security group {entry['name']} not found for project "
                    f"{project_id}.")
            resolved.append({'id': group.id, 'name': group.name})
        return resolved

    def _requested_networks(self, networks):
        """Validate ``networks`` like nova-api does, before any scheduling."""
        if networks in (None, 'none'):
            return []
        if not isinstance(networks, list):
            raise errors.BadRequest(
                'Automatic network allocation is not available here: pass '
                'a list of networks or ports')
        requested = []
        for entry in networks:
            if entry.get('port'):
                requested.append(self._requested_port(entry['port']))
            elif entry.get('uuid'):
                try:
                    self.neutron.get_network(entry['uuid'])
                except neutron_ports.NetworkNotFound as e:
                    raise errors.BadRequest(str(e))
                requested.append({'network_id': entry['uuid'],
                                  'fixed_ip': entry.get('fixed_ip'),
                                  'vnic_type': 'normal',
                                  'physical_network': None})
            else:
                raise errors.BadRequest(
                    'Bad networks format: each entry needs a port or uuid')
        return requested

    def _requested_port(self, port_id):
        try:
            port = self.neutron.get_port(port_id)
        except neutron_ports.PortNotFound as e:
            raise errors.BadRequest(str(e))
        if port.device_id:
            raise errors.Conflict(f'Port {port_id} is still in use.')
        return {'port_id': port_id, 'network_id': port.network_id,
                'vnic_type': port.binding_vnic_type or 'normal',
                'physical_network': self._physical_network(port)}

    def _physical_network(self, port):
        """The physnet a port needs a VF on, None for non-SR-IOV ports."""
        if port.binding_vnic_type not in neutron_ports.SRIOV_VNIC_TYPES:
            return None
        network = self.neutron.get_network(port.network_id)
        return network.provider_physical_network or ''

    # -- scheduling ---------------------------------------------------------

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

    def _request_spec(self, data, server):
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

    def _schedule(self, server_id):
        """Pick a host and claim the VFs there, in one step."""
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

    # -- build --------------------------------------------------------------

    def _build(self, server_id):
        with self._server_lock(server_id):
            try:
                server = self._schedule(server_id)
            except scheduler.NoValidHost as e:
                LOG.warning('Server %s: %s (%s)', server_id, e, e.details)
                self._set_error(server_id, str(e), e.details)
                return
            if server is None:
                return
            try:
                self._build_on_host(server)
            except Exception as e:
                LOG.exception('Build of server %s failed', server_id)
                self._tear_down(server_id)
                self._set_error(
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
            vf = self._vf(host, request.get('pci_slot'))
            # Record first: a failing bind must still be cleaned up.
            self._add_interface(server_id, port_id, created, vf)
            port = self.neutron.bind_port(port_id, server_id, host, zone, vf)
            self._add_interface(server_id, port_id, created, vf, port)
            ports.append(port)
        if self.faults.trips('boot'):
            raise faults_mod.InjectedFault('spawning on the hypervisor')
        if self.fabric is not None:
            self._spawn(server, ports)
        self._mark(server_id, status='ACTIVE', vm_state='active',
                   task_state=None, power_state=RUNNING, launched_at=now())

    def _vf(self, host, pci_slot):
        return pci.find_vf(self.inventory, host, pci_slot) if pci_slot \
            else None

    def _spawn(self, server, ports):
        """Turn the server into an amphora: namespaces, agent, VFs.

        The first port with a normal vNIC is the management one (Octavia
        boots amphorae with the lb-mgmt-net first); every other port is
        plugged as a data-plane "VF". A server without such a port stays
        API state only: there is no way to reach an agent on it.
        """
        server_id = server['id']
        mgmt = next((p for p in ports if p.binding_vnic_type
                     not in neutron_ports.SRIOV_VNIC_TYPES), None)
        if mgmt is None:
            LOG.warning('Server %s has no management port: no amphora is '
                        'started for it', server_id)
            return
        self._mark(server_id, spawned=True)
        # Config drive or metadata service, cloud-init in the guest reads
        # the same user data.
        user_data = (base64.b64decode(server['user_data'])
                     if server.get('user_data') else None)
        self.fabric.boot_amphora(
            server_id, mgmt.to_dict(computed=False),
            mgmt_subnet=self._subnet(mgmt), user_data=user_data)
        if self.faults.agents_unreachable:
            self.fabric.set_agent_reachable(server_id, False)
        for port in ports:
            if port is not mgmt:
                self._plug(server_id, port)

    def _subnet(self, port):
        if not port.fixed_ips:
            return None
        return self.neutron.get_subnet(
            port.fixed_ips[0]['subnet_id']).to_dict(computed=False)

    def _plug(self, server_id, port):
        self.fabric.attach_vf(server_id, port.to_dict(computed=False),
                              self._subnet(port))

    def _add_interface(self, server_id, port_id, created, vf, port=None):
        with self.state.transaction() as data:
            interfaces = data['servers'][server_id]['interfaces']
            record = next((i for i in interfaces if i['port_id'] == port_id),
                          None)
            if record is None:
                record = {'port_id': port_id, 'created_by_nova': created,
                          'pci_slot': vf.pci_slot if vf else None,
                          'physical_network':
                              vf.physical_network if vf else None,
                          'tag': None}
                interfaces.append(record)
            if port is not None:
                record.update(self._port_facts(port))
            return dict(record)

    def _port_facts(self, port):
        network = self.neutron.get_network(port.network_id)
        return {'net_id': port.network_id, 'network_name': network.name,
                'mac_addr': port.mac_address,
                'fixed_ips': [{'subnet_id': ip['subnet_id'],
                               'ip_address': ip['ip_address']}
                              for ip in port.fixed_ips or []],
                'vnic_type': port.binding_vnic_type,
                'vif_type': port.binding_vif_type,
                'port_state': port.status}

    def _mark(self, server_id, **values):
        with self.state.transaction() as data:
            server = data['servers'].get(server_id)
            if server is not None:
                server.update(values, updated=now())

    def _set_error(self, server_id, message, details):
        self._mark(server_id, status='ERROR', vm_state='error',
                   task_state=None, power_state=NOSTATE,
                   fault={'code': 500, 'message': message,
                          'details': details, 'created': now()})

    # -- delete -------------------------------------------------------------

    def delete_server(self, server_id):
        with self.state.transaction() as data:
            server = data['servers'].get(server_id)
            if server is None:
                raise errors.NotFound(
                    f'Instance {server_id} could not be found.')
            server['task_state'] = 'deleting'
        self._start(self._delete, server_id)

    def _delete(self, server_id):
        with self._server_lock(server_id):
            self._tear_down(server_id)
            with self.state.transaction() as data:
                server = data['servers'].pop(server_id, None)
                group = data['server_groups'].get(
                    (server or {}).get('group_id') or '')
                if group and server_id in group['members']:
                    group['members'].remove(server_id)
        with self._locks_guard:
            self._locks.pop(server_id, None)

    def _tear_down(self, server_id):
        """Give back everything a server holds: namespaces, ports, VFs."""
        with self.state.read() as data:
            server = dict(data['servers'][server_id])
        if self.fabric is not None and server['spawned']:
            try:
                self.fabric.delete_amphora(server_id)
            except Exception:
                LOG.exception('Removing the namespaces of %s failed',
                              server_id)
        for interface in server['interfaces']:
            try:
                self._release_port(interface)
            except Exception:
                # Keep going: the VFs and the other ports must come back.
                LOG.exception('Releasing port %s of %s failed',
                              interface['port_id'], server_id)
        with self.state.transaction() as data:
            pci.release(data['pci_allocations'], server_id)
            server = data['servers'][server_id]
            server['interfaces'] = []
            server['spawned'] = False

    def _release_port(self, interface):
        # Nova deletes the ports it created and only unbinds the others.
        if interface['created_by_nova']:
            self.neutron.delete_port(interface['port_id'])
        else:
            self.neutron.unbind_port(interface['port_id'])

    # -- interfaces ---------------------------------------------------------

    def attach_interface(self, server_id, port_id=None, net_id=None):
        with self._server_lock(server_id):
            server = self._active_server(server_id, 'attach_interface')
            if port_id:
                port = self._attachable_port(server, port_id)
                physnet = self._physical_network(port)
            elif net_id:
                try:
                    self.neutron.get_network(net_id)
                except neutron_ports.NetworkNotFound as e:
                    raise errors.NotFound(str(e))
                physnet = None
            else:
                raise errors.BadRequest(
                    'Either port_id or net_id must be given.')
            vf = self._claim_for_attach(server, port_id, physnet)
            created = False
            try:
                if self.faults.trips('attach'):
                    raise faults_mod.InjectedFault('attach')
                if not port_id:
                    port_id = self.neutron.create_port(
                        net_id, server['project_id'], server_id,
                        server['availability_zone']).id
                    created = True
                self._add_interface(server_id, port_id, created, vf)
                port = self.neutron.bind_port(
                    port_id, server_id, server['host'],
                    server['availability_zone'], vf)
                record = self._add_interface(server_id, port_id, created, vf,
                                             port)
                if self.fabric is not None:
                    self._plug(server_id, port)
                return record
            except Exception as e:
                LOG.warning('Attaching port %s to %s failed: %s', port_id,
                            server_id, e)
                self._detach(server_id, port_id, created, unplug=False)
                raise errors.ServerError(
                    f'Failed to attach network adapter device to '
                    f'{server_id}')

    def _active_server(self, server_id, action):
        with self.state.read() as data:
            server = data['servers'].get(server_id)
            if server is None:
                raise errors.NotFound(
                    f'Instance {server_id} could not be found.')
            if server['vm_state'] != 'active' or server['task_state']:
                raise errors.Conflict(
                    f"Cannot '{action}' instance {server_id} while it is in "
                    f"vm_state {server['vm_state']}")
            return dict(server)

    def _attachable_port(self, server, port_id):
        try:
            port = self.neutron.get_port(port_id)
        except neutron_ports.PortNotFound as e:
            raise errors.NotFound(str(e))
        if port.device_id:
            raise errors.Conflict(f'Port {port_id} is still in use.')
        return port

    def _claim_for_attach(self, server, port_id, physnet):
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

    def detach_interface(self, server_id, port_id):
        with self.state.read() as data:
            server = data['servers'].get(server_id)
            if server is None:
                raise errors.NotFound(
                    f'Instance {server_id} could not be found.')
            interface = next((i for i in server['interfaces']
                              if i['port_id'] == port_id), None)
        if interface is None:
            raise errors.NotFound(f'Port id {port_id} could not be found.')
        self._active_server(server_id, 'detach_interface')
        self._start(self._detach_locked, server_id, port_id,
                    interface['created_by_nova'])

    def _detach_locked(self, server_id, port_id, created):
        with self._server_lock(server_id):
            self._detach(server_id, port_id, created, unplug=True)

    def _detach(self, server_id, port_id, created, unplug):
        if unplug and self.fabric is not None:
            try:
                self.fabric.detach_vf(server_id, port_id)
            except Exception:
                LOG.exception('Unplugging %s from %s failed', port_id,
                              server_id)
        if port_id is None:
            # Attach failed before a port existed: nothing was claimed.
            return
        self._release_port({'port_id': port_id, 'created_by_nova': created})
        with self.state.transaction() as data:
            pci.release(data['pci_allocations'], server_id, port_id)
            server = data['servers'].get(server_id)
            if server is not None:
                server['interfaces'] = [i for i in server['interfaces']
                                        if i['port_id'] != port_id]

    # -- process life -------------------------------------------------------

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def recover(self):
        """Finish what a previous run of the emulator left half done."""
        with self.state.read() as data:
            servers = [dict(s) for s in data['servers'].values()]
        for server in servers:
            if server['task_state'] == 'deleting':
                self._start(self._delete, server['id'])
            elif server['status'] == 'BUILD':
                self._tear_down(server['id'])
                self._set_error(server['id'],
                                'Build of instance %s aborted: the compute '
                                'service restarted during the build'
                                % server['id'], 'restart')

    def wait(self, timeout=None):
        """Let running builds/deletes finish (used on shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    # -- agents -------------------------------------------------------------

    def set_agents_reachable(self, server_ids, reachable):
        """Cut or restore the management path of amphora agents.

        ``server_ids`` None means every spawned server. Returns the ids of
        the servers changed.
        """
        if self.fabric is None:
            raise errors.BadRequest('The emulator runs without kernel '
                                    'plumbing: there are no agents')
        with self.state.read() as data:
            spawned = [s['id'] for s in data['servers'].values()
                       if s['spawned']]
        changed = []
        for server_id in (spawned if server_ids is None else server_ids):
            if server_id not in spawned:
                raise errors.NotFound(
                    f'Instance {server_id} has no amphora agent.')
            self.fabric.set_agent_reachable(server_id, reachable)
            changed.append(server_id)
        return changed
