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
"""The testbed's stand-in for hypervisors, VFs and physical networks.

An amphora is a pair of network namespaces running the real amphora agent,
started as the image's unit starts it from the files its boot request's
user data carried (``cloud_init``), in a file system view of its own
(``amphora_init``):
``<prefix>-amp-<id>`` holds the management interface and the agent (an
amphora's root namespace), ``<prefix>-amp-<id>-lb`` the VIP and member
interfaces (the agent's ``network_namespace``). The management network is
the bridge ``<prefix>-mgmt`` in the root namespace, carrying the management
subnets' gateway addresses, so the controller reaches every agent directly.
A VF is a veth pair: one end, with the Neutron port's MAC address, appears
in the amphora's data namespace as a hot-plugged VF would (down, without an
address); the other joins the bridge of the port's network in
``<prefix>-phys``. That namespace is also the router between networks: a
subnet's gateway address sits on its network's bridge. Clients and members
are namespaces with one interface on a network's bridge.

What has to survive a restart of the process using the fabric (agent PIDs,
which VF is which interface) is kept in ``<state>/amphorae/<id>/``; all
else is read back from the kernel.

``Fabric`` is the one object the rest of the testbed uses; each part lives
in a module of its own: ``networks``, ``amphorae`` (and ``agents``, the
image's part), ``vfs``, ``hosts``, ``certificates`` and ``records`` (the
persisted records and the state lock), ``namespaces``.
"""

from oslo_log import log as logging
from pyroute2 import netns as pyroute2_netns

from sriov_octavia_testbed.plumbing import agents as agents_mod
from sriov_octavia_testbed.plumbing import amphorae as amphorae_mod
from sriov_octavia_testbed.plumbing import certificates as certificates_mod
from sriov_octavia_testbed.plumbing import hosts as hosts_mod
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import names as names_mod
from sriov_octavia_testbed.plumbing import namespaces
from sriov_octavia_testbed.plumbing import networks as networks_mod
from sriov_octavia_testbed.plumbing import records as records_mod
from sriov_octavia_testbed.plumbing import vfs as vfs_mod

LOG = logging.getLogger(__name__)


class Fabric:
    """Kernel objects and agent processes of one testbed instance."""

    def __init__(self, state_dir, prefix='sotb', agent_executable=None,
                 stop_grace=10.0):
        self._records = records_mod.Records(state_dir)
        self.state_dir = self._records.state_dir
        self.names = names_mod.Names(prefix)
        self.prefix = prefix
        self.stop_grace = stop_grace
        self._lock = self._records.lock
        self._certificates = certificates_mod.Certificates(self._records,
                                                           prefix)
        self._agents = agents_mod.Agents(self._records, self._certificates,
                                         agent_executable, stop_grace)
        self.agent_executable = self._agents.executable
        self._networks = networks_mod.Networks(self.names, self._lock)
        self._amphorae = amphorae_mod.Amphorae(
            self.names, self._records, self._networks, self._agents,
            stop_grace)
        self._vfs = vfs_mod.Vfs(self.names, self._records, self._networks)
        self._hosts = hosts_mod.Hosts(self.names, self._lock, self._networks,
                                      stop_grace)

    # Certificates (see certificates) -------------------------------------

    @property
    def ca_cert(self):
        return self._certificates.ca_cert

    @property
    def ca_key(self):
        return self._certificates.ca_key

    @property
    def agent_client_cert(self):
        return self._certificates.agent_client_cert

    # Networks (see networks) ---------------------------------------------

    def ensure_mgmt_network(self, subnet):
        return self._networks.ensure_mgmt_network(subnet)

    def ensure_network(self, network_id, subnet=None):
        return self._networks.ensure_network(network_id, subnet)

    # Amphorae (see amphorae and agents) -----------------------------------

    def boot_amphora(self, server_id, mgmt_port, mgmt_subnet=None,
                     user_data=None):
        return self._amphorae.boot(server_id, mgmt_port, mgmt_subnet,
                                   user_data)

    def reboot_amphora(self, server_id):
        return self._amphorae.reboot(server_id)

    def delete_amphora(self, server_id):
        self._amphorae.delete(server_id)

    def amphora(self, server_id):
        return self._amphorae.get(server_id)

    def amphorae(self):
        return self._amphorae.all()

    def amphora_path(self, server_id, path):
        return self._amphorae.path(server_id, path)

    def set_agent_reachable(self, server_id, reachable):
        self._amphorae.set_reachable(server_id, reachable)

    def agent_running(self, server_id):
        return self._agents.running(server_id)

    def stop_agent(self, server_id):
        """Stop the amphora's agent, as a crash inside the VM would.

        haproxy and keepalived go on serving; Nova still has the server.
        """
        with self._lock:
            return self._agents.stop(self._records.get(server_id))

    def wait_for_agent(self, server_id, timeout=60.0):
        self._agents.wait(server_id, timeout)

    # VFs (see vfs) --------------------------------------------------------

    def attach_vf(self, server_id, port, subnet=None):
        return self._vfs.attach(server_id, port, subnet)

    def detach_vf(self, server_id, port_id):
        self._vfs.detach(server_id, port_id)

    def vfs(self, server_id):
        return self._vfs.of(server_id)

    # Hosts (see hosts) ----------------------------------------------------

    def add_host(self, name, network_id, mac, cidr, gateway=None):
        return self._hosts.add(name, network_id, mac, cidr, gateway)

    def remove_host(self, name):
        self._hosts.remove(name)

    # Everything -----------------------------------------------------------

    def cleanup(self):
        """Remove every namespace, link and agent of this testbed instance.

        Agents are stopped first (by the PIDs recorded at boot), then what
        is left running in any of the testbed's namespaces (haproxy and
        keepalived in amphorae, servers on hosts): a process inside a
        namespace keeps the namespace, and its links, alive after the name
        is removed. Returns what was removed, by kind.
        """
        removed = {'agents': [], 'processes': [], 'namespaces': [],
                   'links': []}
        with self._lock:
            for record in self._records.all():
                if self._agents.stop(record):
                    removed['agents'].append(record['agent']['pid'])
                for name in (record['data_namespace'], record['namespace']):
                    removed['processes'] += namespaces.end_processes_in(
                        name, self.stop_grace)
            for name in pyroute2_netns.listnetns():
                if self.names.owns(name):
                    # Hosts' servers, and whatever an amphora without a
                    # record still runs.
                    removed['processes'] += namespaces.remove(
                        name, self.stop_grace)
                    removed['namespaces'].append(name)
            # Bridge ports first, so that deleting the bridge finds none.
            root_links = sorted(
                (name for name in links.names(None) if self.names.owns(name)),
                key=lambda name: name == self.names.mgmt_bridge)
            for name in root_links:
                if links.delete(None, name):
                    removed['links'].append(name)
            for server_id in self._records.server_ids():
                self._records.remove(server_id)
        LOG.info('Testbed %s cleaned up: %s', self.prefix, removed)
        return removed
