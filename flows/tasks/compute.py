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
again in Nova itself. An amphora is passed between tasks as the dict
sriov_octavia.amphorae describes.
"""

import base64
import time

from openstack import exceptions as os_exceptions
from oslo_log import log as logging
from taskflow import task

from flows import tasks
from flows.tasks import undo
from sriov_octavia.amphora import bootstrap
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

SERVER_GROUP_POLICY = 'anti-affinity'
NO_VALID_HOST = 'No valid host'
# Seconds between two looks at Nova while waiting for it.
POLL_INTERVAL = 1.0

AMPHORAE = 'amphorae'
BOOTED_AMPHORAE = 'booted_amphorae'
BOOT_ATTRS = 'boot_attrs'
SERVER_GROUP_ID = 'server_group_id'


class ComputeError(Exception):
    """Nova did not do what an amphora needs; the message says what."""


def _controller_worker(conf):
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


def roles(flavor):
    return sriov_flavor.topology_roles(
        flavor[sriov_flavor.LOADBALANCER_TOPOLOGY])


def servers_of_role(conn, loadbalancer_id, role):
    return [server for server
            in amphorae_lib.find_servers(conn, loadbalancer_id)
            if server.metadata.get(naming.META_ROLE) == role]


def find_server_groups(conn, loadbalancer_id):
    name = naming.server_group_name(loadbalancer_id)
    return [group for group in conn.compute.server_groups()
            if group.name == name]


def delete_servers(conn, loadbalancer_id, conf=CONF):
    """Delete a load balancer's amphora servers and wait until gone."""
    servers = amphorae_lib.find_servers(conn, loadbalancer_id)
    for server in servers:
        LOG.info('Deleting amphora %s (%s) of load balancer %s', server.id,
                 (server.metadata or {}).get(naming.META_ROLE),
                 loadbalancer_id)
        conn.compute.delete_server(server, ignore_missing=True)
    if servers:
        wait_until(lambda: not amphorae_lib.find_servers(conn,
                                                         loadbalancer_id),
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


class CreateServerGroup(task.Task):
    """ACTIVE_STANDBY: an anti-affinity group so the amphorae part hosts.

    Provides the group id.
    """

    default_provides = SERVER_GROUP_ID

    def execute(self, loadbalancer_id):
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

    def revert(self, loadbalancer_id, *args, **kwargs):
        with undo.reverting(f'the server group of load balancer '
                            f'{loadbalancer_id}'):
            delete_server_groups(clients.connection(), loadbalancer_id)


def boot_attrs(conn, flavor, availability_zone, server_group_id):
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
    networks = amphorae_lib.management_networks(availability_zone, CONF)
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


def boot_server(conn, loadbalancer_id, role, identity, attrs, networks,
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


class PrepareBoot(task.Task):
    """What Nova boots the load balancer's amphorae with; reads only.

    Compute flavor and image tag come from the flavor (which has
    [controller_worker] amp_flavor_id / amp_image_tag as defaults), the
    Nova zone and management network from the availability zone, else
    [controller_worker] amp_boot_network_list; ``server_group_id`` (the
    ACTIVE_STANDBY group) is optional. Looked up once, before the
    amphorae boot side by side (the SDK's first look-up of the image
    endpoint from two threads at once can fail): provides ``boot_attrs``,
    ``{"attrs": Nova's server attributes, "networks": the management
    networks}``.
    """

    default_provides = BOOT_ATTRS

    def execute(self, flavor, availability_zone, server_group_id=None):
        attrs, networks = boot_attrs(clients.connection(), flavor,
                                     availability_zone, server_group_id)
        return {'attrs': attrs, 'networks': networks}


class BootAmphorae(tasks.RolesTask):
    """Boot one server per role of ``roles``; provides them in a list."""

    default_provides = BOOTED_AMPHORAE

    def execute(self, loadbalancer_id, amphora_identities, boot_attrs):
        conn = clients.connection()
        networks = boot_attrs['networks']
        # Servers of an earlier, interrupted run of this task are used, not
        # booted twice.
        existing = {(server.metadata or {}).get(naming.META_ROLE): server
                    for server in amphorae_lib.find_servers(
                        conn, loadbalancer_id)}
        booted = []
        for role in self.roles:
            if role in existing:
                booted.append(amphorae_lib.amphora_of(existing[role],
                                                      networks[0]))
                continue
            booted.append(boot_server(conn, loadbalancer_id, role,
                                      amphora_identities[role],
                                      boot_attrs['attrs'], networks))
        return booted

    def revert(self, loadbalancer_id, *args, **kwargs):
        # Found by their metadata: a boot that failed half way (or a worker
        # that died after Nova answered) leaves servers no result names.
        with undo.reverting(f'the {"/".join(self.roles)} amphorae of load '
                            f'balancer {loadbalancer_id}'):
            conn = clients.connection()
            for role in self.roles:
                for server in servers_of_role(conn, loadbalancer_id, role):
                    delete_server(conn, server.id)


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
        return [dict(amphora, mgmt_ip=amphorae_lib.mgmt_ip(
            conn, amphora['id'], [amphora['mgmt_network_id']]))
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
            with undo.reverting(f'the attachment of port {port["id"]} to '
                                f'amphora {amphora["id"]}'):
                detach_port(clients.connection(), amphora['id'], port['id'])


class DeleteAmphorae(task.Task):
    """Delete the load balancer's servers (found by metadata) and group."""

    def execute(self, loadbalancer_id):
        conn = clients.connection()
        delete_servers(conn, loadbalancer_id)
        delete_server_groups(conn, loadbalancer_id)
