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
"""What a load balancer left in a testbed's cloud, and its amphorae."""

from flows.tasks import network
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import naming
from sriov_octavia_testbed import plumbing
from sriov_octavia_testbed import seed


def leftovers(conn, lb_id):
    """Servers and VRRP ports of the load balancer still in the cloud."""
    return ([server.id for server in amphorae.find_servers(conn, lb_id)],
            [port.id for port in network.find_vrrp_ports(conn, lb_id)])


def agent_for(tb, conn, server):
    """A client of the amphora agent of ``server``, over its mgmt net."""
    fabric = plumbing.Fabric(tb.state_dir, prefix=tb.prefix)
    mgmt = conn.network.find_network(seed.MGMT_NETWORK, ignore_missing=False)
    [mgmt_ip] = [interface.fixed_ips[0]['ip_address'] for interface
                 in conn.compute.server_interfaces(server)
                 if interface.net_id == mgmt.id]
    # As the controller checks it: the certificate names the amphora id.
    return agent_client.AgentClient(
        (mgmt_ip, 9443), fabric.agent_client_cert, fabric.ca_cert,
        server_name=server.metadata[naming.META_AMPHORA_ID])
