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
"""Tasks on Nova (and Glance): amphora servers, their group, their VFs.

Nothing here keeps its own record of what it made. Servers carry metadata
naming their load balancer and role, server groups a name derived from the
load balancer id, so a revert, a resumed flow or the delete flow finds them
again in Nova itself.

An amphora is passed between tasks as a dict: ``{"id": server id,
"amphora_id": the name its agent's certificate carries, "role": STANDALONE
| MASTER | BACKUP, "mgmt_network_id": ..., "mgmt_ip": ...}`` (``mgmt_ip``
once the server is ACTIVE).
"""

import base64
import contextlib
import time

from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_log import log as logging
from taskflow import task

from sriov_octavia.amphora import bootstrap
from sriov_octavia import clients
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

ROLES = {
    sriov_flavor.TOPOLOGY_SINGLE: (naming.ROLE_STANDALONE,),
    sriov_flavor.TOPOLOGY_ACTIVE_STANDBY: (naming.ROLE_MASTER,
                                           naming.ROLE_BACKUP),
}

SERVER_GROUP_POLICY = 'anti-affinity'
NO_VALID_HOST = 'No valid host'
# Seconds between two looks at Nova while waiting for it.
POLL_INTERVAL = 1.0

AMPHORAE = 'amphorae'
BOOTED_AMPHORAE = 'booted_amphorae'
SERVER_GROUP_ID = 'server_group_id'


class ComputeError(Exception):
    """Nova did not do what an amphora needs; the message says what."""


def _controller_worker(conf):
    conf.import_group('controller_worker', 'octavia.common.config')
    return conf.controller_worker


def compute_timeout(conf=CONF):
    """Seconds Nova may take to build, delete or (de)attach.

    Octavia's own [controller_worker] amp_active_retries times
    amp_active_wait_sec, so both providers give Nova the same time.
    """
    worker = _controller_worker(conf)
    return worker.amp_active_retries * worker.amp_active_wait_sec


def wait_until(done, timeout, what):
    """Call ``done()`` until it returns something true; return that.

    :raises ComputeError: naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise ComputeError(f'timed out after {timeout} s waiting for '
                               f'{what}')
        time.sleep(POLL_INTERVAL)


@contextlib.contextmanager
def reverting(what):
    """Undo ``what`` without ever raising.

    A revert that raised would stop taskflow from reverting the tasks
    before it, the one marking the load balancer ERROR among them, and
    leave the load balancer PENDING for good. What a failed undo leaves
    behind carries the load balancer's names and metadata, so deleting the
    load balancer in ERROR removes it.
    """
    try:
        yield
    except Exception:
        LOG.exception('Could not undo %s; deleting the load balancer in '
                      'ERROR removes what is left', what)


def roles(flavor):
    return ROLES[flavor[sriov_flavor.LOADBALANCER_TOPOLOGY]]


def failover_order(flavor):
    """The roles in the order a load balancer failover replaces them.

    The standby first: the master keeps serving while it is replaced, and
    the new standby takes over while the master is.
    """
    return tuple(reversed(roles(flavor)))


def find_servers(conn, loadbalancer_id):
    """The amphora servers of a load balancer, as Nova has them."""
    # The name narrows the listing on a busy cloud; the metadata decides.
    found = conn.compute.servers(
        details=True, name=naming.server_name_pattern(loadbalancer_id))
    return [server for server in found
            if (server.metadata or {}).get(naming.META_LOADBALANCER) ==
            loadbalancer_id]


def servers_of_role(conn, loadbalancer_id, role):
    return [server for server in find_servers(conn, loadbalancer_id)
            if server.metadata.get(naming.META_ROLE) == role]


def find_server_groups(conn, loadbalancer_id):
    name = naming.server_group_name(loadbalancer_id)
    return [group for group in conn.compute.server_groups()
            if group.name == name]


def delete_servers(conn, loadbalancer_id, conf=CONF):
    """Delete a load balancer's amphora servers and wait until gone."""
    servers = find_servers(conn, loadbalancer_id)
    for server in servers:
        LOG.info('Deleting amphora %s (%s) of load balancer %s', server.id,
                 (server.metadata or {}).get(naming.META_ROLE),
                 loadbalancer_id)
        conn.compute.delete_server(server, ignore_missing=True)
    if servers:
        wait_until(lambda: not find_servers(conn, loadbalancer_id),
                   compute_timeout(conf),
                   f'the amphorae of load balancer {loadbalancer_id} to be '
                   f'deleted')
    return [server.id for server in servers]


def delete_server(conn, server_id, conf=CONF):
    """Delete one amphora server and wait until Nova has it no more."""
    def gone():
        try:
            return conn.compute.get_server(server_id).status == 'DELETED'
        except os_exceptions.NotFoundException:
            return True

    conn.compute.delete_server(server_id, ignore_missing=True)
    wait_until(gone, compute_timeout(conf),
               f'amphora {server_id} to be deleted')
    LOG.info('Deleted amphora %s', server_id)


def delete_server_groups(conn, loadbalancer_id):
    for group in find_server_groups(conn, loadbalancer_id):
        LOG.info('Deleting server group %s of load balancer %s', group.id,
                 loadbalancer_id)
        conn.compute.delete_server_group(group, ignore_missing=True)


def _image_id(conn, tag):
    if not tag:
        message = ('no amphora image tag: set amp_image_tag in the flavor '
                   'profile or [controller_worker] amp_image_tag')
        raise ComputeError(message)
    images = list(conn.image.images(tag=tag))
    if not images:
        raise ComputeError(f'no Glance image has the tag {tag}: upload the '
                           f'amphora image with --tag {tag} or correct '
                           f'amp_image_tag')
    # Operators publish a new amphora image under the same tag: the newest
    # one is meant.
    newest = max(images, key=lambda image: image.created_at or '')
    return newest.id


def _mgmt_network_ids(availability_zone, conf):
    zone_network = (availability_zone or {}).get('management_network')
    if zone_network:
        return [zone_network]
    networks = list(_controller_worker(conf).amp_boot_network_list)
    if not networks:
        message = ('no management network: set management_network in the '
                   'availability zone profile or [controller_worker] '
                   'amp_boot_network_list')
        raise ComputeError(message)
    return networks


class CreateServerGroup(task.Task):
    """ACTIVE_STANDBY: an anti-affinity group so the amphorae part hosts.

    Provides the group id, None for SINGLE.
    """

    default_provides = SERVER_GROUP_ID

    def execute(self, loadbalancer_id, flavor):
        if len(roles(flavor)) < 2:
            return None
        conn = clients.connection()
        # A worker resuming this job after another died mid-task finds the
        # group that one made.
        for group in find_server_groups(conn, loadbalancer_id):
            return group.id
        group = conn.compute.create_server_group(
            name=naming.server_group_name(loadbalancer_id),
            policy=SERVER_GROUP_POLICY)
        LOG.info('Created server group %s for load balancer %s', group.id,
                 loadbalancer_id)
        return group.id

    def revert(self, loadbalancer_id, flavor, *args, **kwargs):
        with reverting(f'the server group of load balancer '
                       f'{loadbalancer_id}'):
            delete_server_groups(clients.connection(), loadbalancer_id)


def amphora_of(server, mgmt_network_id):
    """The amphora dict of a server (without ``mgmt_ip``)."""
    metadata = server.metadata or {}
    return {'id': server.id,
            'amphora_id': metadata.get(naming.META_AMPHORA_ID),
            'role': metadata.get(naming.META_ROLE),
            'mgmt_network_id': mgmt_network_id}


def _boot_attrs(conn, flavor, availability_zone, server_group_id):
    """What Nova needs to boot an amphora, and its management networks.

    Octavia's [controller_worker] settings for its own amphorae apply:
    ``amp_secgroup_list`` goes on the ports Nova creates on the management
    networks, ``amp_ssh_key_name`` (when set) is the server's key pair,
    and ``user_data_config_drive`` has Nova hand the user data over on a
    config drive rather than through the metadata service.
    """
    compute_flavor = flavor.get(sriov_flavor.COMPUTE_FLAVOR)
    if not compute_flavor:
        message = ('no compute flavor: set compute_flavor in the '
                   'flavor profile or [controller_worker] '
                   'amp_flavor_id')
        raise ComputeError(message)
    image_id = _image_id(conn, flavor.get(sriov_flavor.AMP_IMAGE_TAG))
    networks = _mgmt_network_ids(availability_zone, CONF)
    worker = _controller_worker(CONF)
    attrs = {'flavor_id': compute_flavor, 'image_id': image_id,
             'networks': [{'uuid': network} for network in networks],
             'config_drive': bool(worker.user_data_config_drive)}
    if worker.amp_secgroup_list:
        attrs['security_groups'] = [{'name': group}
                                    for group in worker.amp_secgroup_list]
    if worker.amp_ssh_key_name:
        attrs['key_name'] = worker.amp_ssh_key_name
    zone = (availability_zone or {}).get('compute_zone')
    if zone:
        attrs['availability_zone'] = zone
    if server_group_id:
        attrs['scheduler_hints'] = {'group': server_group_id}
    return attrs, networks


def _user_data(identity):
    """The base64 user data carrying an amphora's identity and config."""
    amphora_id = identity['amphora_id']
    files = bootstrap.boot_files(
        amphora_id, bootstrap.decrypt_server_pem(identity['server_pem']))
    text = bootstrap.user_data(files)
    return base64.b64encode(text.encode('utf-8')).decode('ascii')


def _boot_server(conn, loadbalancer_id, role, identity, attrs, networks,
                 replaces=None):
    """Boot one amphora server; the amphora dict the tasks pass on.

    ``identity`` is the role's ``flows.tasks.identity`` result: the server
    boots with its certificate and agent configuration as user data.
    """
    metadata = {naming.META_LOADBALANCER: loadbalancer_id,
                naming.META_ROLE: role,
                naming.META_AMPHORA_ID: identity['amphora_id']}
    if replaces is not None:
        metadata[naming.META_REPLACES] = replaces
    server = conn.compute.create_server(
        name=naming.server_name(loadbalancer_id, role), metadata=metadata,
        user_data=_user_data(identity), **attrs)
    LOG.info('Booting amphora %s (server %s, %s) of load balancer %s with '
             'flavor %s, image %s', identity['amphora_id'], server.id, role,
             loadbalancer_id, attrs['flavor_id'], attrs['image_id'])
    return {'id': server.id, 'amphora_id': identity['amphora_id'],
            'role': role, 'mgmt_network_id': networks[0]}


class BootAmphorae(task.Task):
    """Boot one server per role; provides them as ``booted_amphorae``.

    Compute flavor and image tag come from the flavor (which has
    [controller_worker] amp_flavor_id / amp_image_tag as defaults), the
    Nova zone and management network from the availability zone, else
    [controller_worker] amp_boot_network_list.
    """

    default_provides = BOOTED_AMPHORAE

    def execute(self, loadbalancer_id, flavor, availability_zone,
                server_group_id, amphora_identities):
        conn = clients.connection()
        attrs, networks = _boot_attrs(conn, flavor, availability_zone,
                                      server_group_id)
        # Servers of an earlier, interrupted run of this task are used, not
        # booted twice.
        existing = {(server.metadata or {}).get(naming.META_ROLE): server
                    for server in find_servers(conn, loadbalancer_id)}
        amphorae = []
        for role in roles(flavor):
            if role in existing:
                amphorae.append(amphora_of(existing[role], networks[0]))
                continue
            amphorae.append(_boot_server(conn, loadbalancer_id, role,
                                         amphora_identities[role], attrs,
                                         networks))
        return amphorae

    def revert(self, loadbalancer_id, *args, **kwargs):
        # Found by their metadata: a boot that failed half way (or a worker
        # that died after Nova answered) leaves servers no result names.
        with reverting(f'the amphorae of load balancer {loadbalancer_id}'):
            delete_servers(clients.connection(), loadbalancer_id)


def _no_valid_host_hint(conn, compute_flavor, vip_network_id):
    """What an operator should check when Nova found no host."""
    facts = []
    try:
        extra_specs = conn.compute.get_flavor(compute_flavor).extra_specs
        facts.append(f'compute flavor {compute_flavor} asks for '
                     f'{extra_specs or "no extra specs"}')
    except os_exceptions.SDKException:
        pass
    try:
        network = conn.network.get_network(vip_network_id)
        facts.append(f'VIP network {network.id} is on physical network '
                     f'{network.provider_physical_network}')
    except os_exceptions.SDKException:
        pass
    return ('Check that a host aggregate carries the properties the compute '
            'flavor asks for in its extra specs, that its hosts are up, and '
            'that they have free VFs on the physical network of the VIP '
            'network ([pci] device_spec on the compute hosts)' +
            (' (' + '; '.join(facts) + ')' if facts else ''))


def _mgmt_ip(conn, server_id, mgmt_network_id):
    for interface in conn.compute.server_interfaces(server_id):
        if interface.net_id == mgmt_network_id and interface.fixed_ips:
            return interface.fixed_ips[0]['ip_address']
    raise ComputeError(f'amphora {server_id} has no address on the '
                       f'management network {mgmt_network_id}')


def find_amphorae(conn, loadbalancer_id, availability_zone, conf=CONF):
    """The load balancer's amphorae, as the tasks pass them, from Nova.

    For flows on a load balancer whose amphorae are up: the management
    network is the one ``BootAmphorae`` boots them on.
    """
    network_id = _mgmt_network_ids(availability_zone, conf)[0]
    return [dict(amphora_of(server, network_id),
                 mgmt_ip=_mgmt_ip(conn, server.id, network_id))
            for server in find_servers(conn, loadbalancer_id)]


class WaitForAmphorae(task.Task):
    """Wait until every amphora server is ACTIVE; add its management IP.

    A server in ERROR fails the flow with Nova's fault; "No valid host"
    is logged with what the operator has to check for SR-IOV.
    """

    default_provides = AMPHORAE

    def execute(self, loadbalancer, flavor, booted_amphorae):
        conn = clients.connection()
        amphorae = booted_amphorae
        pending = {amphora['id'] for amphora in amphorae}

        def all_active():
            for server_id in sorted(pending):
                server = conn.compute.get_server(server_id)
                if server.status == 'ACTIVE':
                    pending.discard(server_id)
                elif server.status == 'ERROR':
                    self._failed(conn, server, loadbalancer, flavor)
            return not pending

        wait_until(all_active, compute_timeout(CONF),
                   f'amphorae {", ".join(sorted(pending))} to become '
                   f'ACTIVE')
        return [dict(amphora, mgmt_ip=_mgmt_ip(
            conn, amphora['id'], amphora['mgmt_network_id']))
            for amphora in amphorae]

    @staticmethod
    def _failed(conn, server, loadbalancer, flavor):
        fault = server.fault or {}
        message = fault.get('message') or 'no fault recorded'
        if NO_VALID_HOST in message:
            LOG.error('Nova found no host for amphora %s of load balancer '
                      '%s: %s. %s.', server.id,
                      loadbalancer['loadbalancer_id'], message.rstrip('.'),
                      _no_valid_host_hint(
                          conn, flavor[sriov_flavor.COMPUTE_FLAVOR],
                          loadbalancer.get('vip_network_id')))
        else:
            LOG.error('Amphora %s of load balancer %s went to ERROR: %s',
                      server.id, loadbalancer['loadbalancer_id'], message)
        raise ComputeError(f'amphora {server.id} went to ERROR: {message}')


def is_attached(conn, server_id, port_id):
    """Whether Nova has ``port_id`` plugged into ``server_id``."""
    return any(interface.port_id == port_id
               for interface in conn.compute.server_interfaces(server_id))


def detach_port(conn, server_id, port_id, conf=CONF):
    """Detach a port from a server and wait until Nova has let it go."""
    try:
        if not is_attached(conn, server_id, port_id):
            return
        conn.compute.delete_server_interface(port_id, server=server_id,
                                             ignore_missing=True)
        wait_until(lambda: not is_attached(conn, server_id, port_id),
                   compute_timeout(conf),
                   f'port {port_id} to be detached from {server_id}')
    except os_exceptions.NotFoundException:
        # The server is gone, and with it the attachment.
        return
    LOG.info('Detached port %s from amphora %s', port_id, server_id)


def attach_ports(conn, amphorae, vrrp_ports):
    """Hot-plug each amphora's VRRP port through os-interface.

    For a direct port Nova claims a VF on the amphora's host; without a
    free one the attach fails.
    """
    for amphora, port in zip(amphorae, vrrp_ports):
        if is_attached(conn, amphora['id'], port['id']):
            continue
        try:
            conn.compute.create_server_interface(amphora['id'],
                                                 port_id=port['id'])
        except os_exceptions.SDKException as error:
            LOG.error('Nova could not attach VRRP port %s (vnic type %s) to '
                      'amphora %s: %s. For an SR-IOV port check the free VFs '
                      'of the amphora\'s host on the port\'s physical '
                      'network and the nova-compute log.', port['id'],
                      port['vnic_type'], amphora['id'], error)
            raise
        LOG.info('Attached VRRP port %s to amphora %s', port['id'],
                 amphora['id'])


class AttachPorts(task.Task):
    """Hot-plug each amphora's VRRP base port (``attach_ports``)."""

    def execute(self, amphorae, vrrp_ports):
        attach_ports(clients.connection(), amphorae, vrrp_ports)

    def revert(self, amphorae, vrrp_ports, *args, **kwargs):
        for amphora, port in zip(amphorae, vrrp_ports):
            with reverting(f'the attachment of port {port["id"]} to '
                           f'amphora {amphora["id"]}'):
                detach_port(clients.connection(), amphora['id'], port['id'])


class BootReplacementAmphora(task.Task):
    """Failover: boot the amphora replacing the slot's ``old_amphora``.

    ``old_amphora`` is ``{"role", "server_id", "port_id"}`` (ids None when
    the role has lost them), None when the slot replaces nothing. The new
    server gets the role's name and metadata, joins the load balancer's
    server group and records the server it replaces, by which a resumed
    run finds it again. Provides a list of one amphora (none for an empty
    slot), the shape the create flow's tasks take.

    Nothing to revert here: until the failover commits, the slot's first
    task (flows.tasks.network.FindAmphoraToReplace) deletes every server of
    the role but the old one.
    """

    def __init__(self, slot):
        super(BootReplacementAmphora, self).__init__(
            name=f'failover-{slot}-boot-replacement',
            rebind={'old_amphora': f'old_amphora_{slot}',
                    'identity': f'replacement_identity_{slot}'},
            provides=f'booted_replacement_{slot}')

    def execute(self, loadbalancer_id, flavor, availability_zone,
                old_amphora, identity):
        if not old_amphora:
            return []
        conn = clients.connection()
        role = old_amphora['role']
        replaces = old_amphora['server_id'] or ''
        groups = find_server_groups(conn, loadbalancer_id)
        attrs, networks = _boot_attrs(conn, flavor, availability_zone,
                                      groups[0].id if groups else None)
        for server in servers_of_role(conn, loadbalancer_id, role):
            if (server.id != old_amphora['server_id'] and
                    server.metadata.get(naming.META_REPLACES) == replaces):
                return [amphora_of(server, networks[0])]
        return [_boot_server(conn, loadbalancer_id, role, identity, attrs,
                             networks, replaces=replaces)]


class AttachReplacementPorts(task.Task):
    """Failover: hot-plug the new VRRP port into the new amphora.

    Undone with the new amphora (deleting the server gives its VF back);
    a committed failover's attachment must stay, which a revert of its own
    could not tell.
    """

    def __init__(self, slot):
        super(AttachReplacementPorts, self).__init__(
            name=f'failover-{slot}-attach-port',
            rebind={'amphorae': f'replacement_amphorae_{slot}',
                    'vrrp_ports': f'replacement_ports_{slot}'})

    def execute(self, amphorae, vrrp_ports):
        attach_ports(clients.connection(), amphorae, vrrp_ports)


class DeleteAmphorae(task.Task):
    """Delete the load balancer's servers (found by metadata) and group."""

    def execute(self, loadbalancer_id):
        conn = clients.connection()
        delete_servers(conn, loadbalancer_id)
        delete_server_groups(conn, loadbalancer_id)
