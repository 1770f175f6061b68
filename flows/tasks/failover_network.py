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
"""Tasks on Neutron of a failover: find, replace and commit an amphora.

A failover's new VRRP port carries ``replacement_vrrp_port_name`` until
the failover commits (``CommitReplacement``), so the serving amphora of a
role is never in doubt and what a failed failover leaves is found by name
(``delete_replacement``), also by a worker that took the job over.
"""

from oslo_log import log as logging
from taskflow import task

from flows.tasks import compute
from flows.tasks import network
from flows.tasks import undo
from sriov_octavia import clients
from sriov_octavia import naming

LOG = logging.getLogger(__name__)


def serving_amphora(conn, loadbalancer_id, role):
    """``{"role", "server_id", "port_id"}`` of the role's amphora now.

    The server holding the role's VRRP port, else any server of the role;
    ids are None when the role has lost its server or port.
    """
    port = network.role_vrrp_port(conn, loadbalancer_id, role)
    servers = compute.servers_of_role(conn, loadbalancer_id, role)
    server = next((server for server in servers
                   if port is not None and server.id == port.device_id),
                  servers[0] if servers else None)
    return {'role': role, 'server_id': server.id if server else None,
            'port_id': port.id if port else None}


def _delete_old_amphora(conn, loadbalancer_id, old_amphora):
    if old_amphora['server_id']:
        compute.delete_server(conn, old_amphora['server_id'])
    if old_amphora['port_id']:
        conn.network.delete_port(old_amphora['port_id'], ignore_missing=True)
        LOG.info('Deleted VRRP port %s of load balancer %s',
                 old_amphora['port_id'], loadbalancer_id)


def delete_replacement(conn, loadbalancer_id, old_amphora):
    """Undo a failover of ``old_amphora`` unless it has committed.

    Committed: the role's VRRP port is bound to a server other than the old
    one (``CommitReplacement`` renamed the new port last). Otherwise every
    server of the role but the old one and the new VRRP port are deleted,
    the servers first so that Nova gives their VFs back.
    """
    role = old_amphora['role']
    port = network.role_vrrp_port(conn, loadbalancer_id, role)
    if (port is not None and port.device_id and
            port.device_id != old_amphora['server_id']):
        LOG.warning('Load balancer %s: amphora %s replaced the %s amphora '
                    'before the failover failed; it stays.', loadbalancer_id,
                    port.device_id, role)
        return
    for server in compute.servers_of_role(conn, loadbalancer_id, role):
        if server.id != old_amphora['server_id']:
            LOG.info('Deleting amphora %s, the failed replacement of the %s '
                     'amphora of load balancer %s', server.id, role,
                     loadbalancer_id)
            compute.delete_server(conn, server.id)
    for port in network.find_replacement_vrrp_ports(conn, loadbalancer_id,
                                                    (role,)):
        conn.network.delete_port(port, ignore_missing=True)
        LOG.info('Deleted VRRP port %s of a failed replacement amphora of '
                 'load balancer %s', port.id, loadbalancer_id)


class _FindAmphoraToReplace(task.Task):
    """The first task of a failover slot; on revert, undo the slot.

    Provides ``old_amphora_<slot>`` (``serving_amphora``), None when the
    slot has nothing to replace. Everything the slot's later tasks make is
    found by the role's names and metadata, so the undo needs no record of
    it, also after a worker took the job over (``delete_replacement``).
    """

    def __init__(self, slot):
        super(_FindAmphoraToReplace, self).__init__(
            name=f'failover-{slot}-find-amphora',
            provides=f'old_amphora_{slot}')
        self.slot = slot

    def revert(self, loadbalancer_id, result, *args, **kwargs):
        if not isinstance(result, dict):
            return
        with undo.reverting(f'the replacement of the {result["role"]} '
                            f'amphora of load balancer '
                            f'{loadbalancer_id}'):
            delete_replacement(clients.connection(), loadbalancer_id, result)


class FindAmphoraToReplace(_FindAmphoraToReplace):
    """Load balancer failover: the amphora serving the slot's ``role``."""

    def __init__(self, slot, role):
        super(FindAmphoraToReplace, self).__init__(slot)
        self.role = role

    def execute(self, loadbalancer_id):
        old = serving_amphora(clients.connection(), loadbalancer_id,
                              self.role)
        LOG.info('Load balancer %s failover: replacing the %s amphora %s',
                 loadbalancer_id, old['role'], old['server_id'] or
                 '(none left)')
        return old


class FindNamedAmphora(_FindAmphoraToReplace):
    """Amphora failover: the store's ``amphora`` (``{"id", "role"}``).

    An amphora that no longer serves its role (an earlier failover
    replaced it) is not failed over again: the slot is empty.
    """

    def __init__(self, slot, roles):
        super(FindNamedAmphora, self).__init__(slot)
        self.roles = tuple(roles)

    def execute(self, loadbalancer_id, amphora):
        if amphora['role'] not in self.roles:
            raise ValueError(f'load balancer {loadbalancer_id} has no '
                             f'{amphora["role"]} amphora; its roles: '
                             f'{", ".join(self.roles)}')
        old = serving_amphora(clients.connection(), loadbalancer_id,
                              amphora['role'])
        if (amphora.get('id') and old['server_id'] and
                old['server_id'] != amphora['id']):
            LOG.info('Amphora %s of load balancer %s was replaced by %s '
                     'already: nothing to fail over', amphora['id'],
                     loadbalancer_id, old['server_id'])
            return None
        LOG.info('Load balancer %s: failing over the %s amphora %s',
                 loadbalancer_id, old['role'],
                 old['server_id'] or '(none left)')
        return old


class DeleteOldAmphoraFirst(task.Task):
    """Failover in an anti-affinity group: the old amphora goes first.

    The group holds the old amphora and its peer; its replacement may only
    go to a host holding neither, which a pair of SR-IOV hosts does not
    have until the old amphora is gone. The peer keeps serving meanwhile.
    Without a group (SINGLE) the old amphora serves until the new one is
    ready (``CommitReplacement``).
    """

    def __init__(self, slot):
        super(DeleteOldAmphoraFirst, self).__init__(
            name=f'failover-{slot}-delete-old-first',
            rebind={'old_amphora': f'old_amphora_{slot}'})

    def execute(self, loadbalancer_id, old_amphora):
        if not old_amphora:
            return
        conn = clients.connection()
        if compute.find_server_groups(conn, loadbalancer_id):
            _delete_old_amphora(conn, loadbalancer_id, old_amphora)


class CreateReplacementVrrpPort(network.CreateVrrpPorts):
    """Failover: a new VRRP base port for the new amphora.

    Made like the create flow's but named ``replacement_vrrp_port_name``
    until the failover commits. Provides a list of one port (none for an
    empty slot). Undone with the slot (``delete_replacement``), so no
    revert of its own: a committed port must stay.
    """

    port_name = staticmethod(naming.replacement_vrrp_port_name)

    def __init__(self, slot):
        super(CreateReplacementVrrpPort, self).__init__(
            (), name=f'failover-{slot}-create-vrrp-port',
            rebind={'amphorae': f'replacement_amphorae_{slot}'},
            provides=f'replacement_ports_{slot}')

    def revert(self, *args, **kwargs):
        pass


class CommitReplacement(task.Task):
    """Failover: the new amphora becomes the role's amphora.

    The old server and VRRP port are deleted (if ``DeleteOldAmphoraFirst``
    left them), then the new port takes the role's name: from then on every
    flow finds the new amphora, and a failure later in the job keeps it.
    Running it again (a resumed job) finishes what a first run began.
    """

    def __init__(self, slot):
        super(CommitReplacement, self).__init__(
            name=f'failover-{slot}-commit',
            rebind={'old_amphora': f'old_amphora_{slot}',
                    'vrrp_ports': f'replacement_ports_{slot}'})

    def execute(self, loadbalancer_id, old_amphora, vrrp_ports):
        if not old_amphora:
            return
        conn = clients.connection()
        role = old_amphora['role']
        [port] = vrrp_ports
        _delete_old_amphora(conn, loadbalancer_id, old_amphora)
        conn.network.update_port(
            port['id'], name=naming.vrrp_port_name(loadbalancer_id, role))
        LOG.info('Load balancer %s: amphora %s (VRRP port %s, %s) is its %s '
                 'amphora now', loadbalancer_id, port['amphora_id'],
                 port['id'], port['ip_address'], role)
