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
"""Tasks on Nova of a failover: the replacement amphora (flows.failover).

The new server carries its role's name and metadata and records the server
it replaces, by which a resumed run finds it again; it is undone with the
slot (flows.tasks.failover_network.delete_replacement), not here.
"""

from taskflow import task

from flows.tasks import compute
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import clients
from sriov_octavia import naming


class BootReplacementAmphora(task.Task):
    """Failover: boot the amphora replacing the slot's ``old_amphora``.

    ``old_amphora`` is ``{"role", "server_id", "port_id"}`` (ids None when
    the role has lost them), None when the slot replaces nothing. The new
    server gets the role's name and metadata, joins the load balancer's
    server group and records the server it replaces, by which a resumed
    run finds it again. Provides a list of one amphora (none for an empty
    slot), the shape the create flow's tasks take.

    Nothing to revert here: until the failover commits, the slot's first
    task (flows.tasks.failover_network.FindAmphoraToReplace) deletes every
    server of the role but the old one.
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
        groups = compute.find_server_groups(conn, loadbalancer_id)
        attrs, networks = compute.boot_attrs(
            conn, flavor, availability_zone,
            groups[0].id if groups else None)
        for server in compute.servers_of_role(conn, loadbalancer_id, role):
            if (server.id != old_amphora['server_id'] and
                    server.metadata.get(naming.META_REPLACES) == replaces):
                return [amphorae_lib.amphora_of(server, networks[0])]
        return [compute.boot_server(conn, loadbalancer_id, role, identity,
                                    attrs, networks, replaces=replaces)]


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
        compute.attach_ports(clients.connection(), amphorae, vrrp_ports)
