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
"""This provider's amphorae in Nova, their agents' addresses and clients.

The one place that knows how an amphora is found again (the server
metadata ``sriov_octavia.naming`` defines), which address its agent
listens on (its port on the management network) and how a client for that
agent is made. The flows' tasks and the worker's health and certificate
loops all use it.

An amphora is passed around as a dict: ``{"id": server id, "amphora_id":
the name its agent's certificate carries, "role": STANDALONE | MASTER |
BACKUP, "mgmt_network_id": ..., "mgmt_ip": ...}`` (``mgmt_ip`` once the
server is ACTIVE).
"""

import collections

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import conf as sriov_conf
from sriov_octavia import naming

# Its import registers every option this module reads.
CONF = sriov_conf.CONF


class AmphoraLookupError(Exception):
    """An amphora's management network or address cannot be found."""


def _controller_worker(conf):
    return conf.controller_worker


def management_networks(availability_zone, conf=CONF):
    """The networks amphorae boot on, the first one holding their agent.

    The availability zone's ``management_network``, else [controller_worker]
    amp_boot_network_list.
    """
    zone_network = (availability_zone or {}).get('management_network')
    if zone_network:
        return [zone_network]
    networks = list(_controller_worker(conf).amp_boot_network_list)
    if not networks:
        raise AmphoraLookupError(
            'no management network: set management_network in the '
            'availability zone profile or [controller_worker] '
            'amp_boot_network_list')
    return networks


def find_servers(conn, loadbalancer_id):
    """The amphora servers of a load balancer, as Nova has them."""
    # The name narrows the listing on a busy cloud; the metadata decides.
    found = conn.compute.servers(
        details=True, name=naming.server_name_pattern(loadbalancer_id))
    return [server for server in found
            if (server.metadata or {}).get(naming.META_LOADBALANCER) ==
            loadbalancer_id]


def servers_by_loadbalancer(conn, active_only=True):
    """``{loadbalancer id: [servers]}`` of this provider, in one listing.

    :param active_only: only the servers Nova has ACTIVE.
    """
    found = collections.defaultdict(list)
    for server in conn.compute.servers(details=True):
        lb_id = (server.metadata or {}).get(naming.META_LOADBALANCER)
        if lb_id and (server.status == 'ACTIVE' or not active_only):
            found[lb_id].append(server)
    return found


def amphora_of(server, mgmt_network_id=None, mgmt_ip=None):
    """The amphora dict of a Nova server."""
    metadata = server.metadata or {}
    amphora = {'id': server.id,
               'amphora_id': metadata.get(naming.META_AMPHORA_ID),
               'role': metadata.get(naming.META_ROLE),
               'mgmt_network_id': mgmt_network_id}
    if mgmt_ip is not None:
        amphora['mgmt_ip'] = mgmt_ip
    return amphora


def mgmt_ip(conn, server_id, networks, any_network=False):
    """The address of the amphora's agent: its port on ``networks``.

    :param networks: the management networks, as ``management_networks``
        gives them.
    :param any_network: without a port on ``networks`` take the first
        interface Nova lists, the one the amphora booted with (for a
        caller that does not know the load balancer's availability zone,
        whose management network may be another).
    :raises AmphoraLookupError: no such address.
    """
    interfaces = [interface for interface
                  in conn.compute.server_interfaces(server_id)
                  if interface.fixed_ips]
    for network_id in networks:
        for interface in interfaces:
            if interface.net_id == network_id:
                return interface.fixed_ips[0]['ip_address']
    if any_network and interfaces:
        return interfaces[0].fixed_ips[0]['ip_address']
    raise AmphoraLookupError(f'amphora {server_id} has no address on the '
                             f'management network '
                             f'{", ".join(networks) or "(none)"}')


def find_amphorae(conn, loadbalancer_id, availability_zone, conf=CONF):
    """The load balancer's amphorae with their agents' addresses."""
    networks = management_networks(availability_zone, conf)
    return [amphora_of(server, networks[0],
                       mgmt_ip(conn, server.id, networks[:1]))
            for server in find_servers(conn, loadbalancer_id)]


def agent_for(amphora, conf=CONF, retries=None, timeout=None):
    """A client for the agent of ``amphora`` (a dict with ``mgmt_ip``)."""
    return agent_client.AgentClient.from_conf(
        amphora['mgmt_ip'], conf, amphora_id=amphora.get('amphora_id'),
        retries=retries, timeout=timeout)


def server_mgmt_ip(conn, server, conf=CONF):
    """The address of a running server's agent, None when it has none.

    For the worker's loops, which do not know the load balancer's
    availability zone: on one of [controller_worker]
    amp_boot_network_list, else on the network the amphora booted with (an
    availability zone's management network).
    """
    try:
        return mgmt_ip(conn, server.id,
                       conf.controller_worker.amp_boot_network_list,
                       any_network=True)
    except AmphoraLookupError:
        return None


def server_agent(conn, server, conf=CONF):
    """A client of a running server's agent, None without an address.

    One attempt per request: a dead amphora must not hold up a loop over
    all of them, whose next round asks again.
    """
    address = server_mgmt_ip(conn, server, conf)
    if address is None:
        return None
    return agent_for(amphora_of(server, mgmt_ip=address), conf, retries=0)
