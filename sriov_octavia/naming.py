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
"""How this provider names and marks what it makes in Nova and Neutron.

The provider keeps no database of its own: servers, server groups, ports
and security groups are found again by these names and this metadata, by
the flows, the health loop, the operator tools and the keepalived
renderer alike. Changing one of them orphans what older code made.
"""

# The provider name octavia-api knows this driver by (setup.cfg).
PROVIDER = 'amphora-sriov'

ROLE_STANDALONE = 'STANDALONE'
ROLE_MASTER = 'MASTER'
ROLE_BACKUP = 'BACKUP'
ALL_ROLES = (ROLE_STANDALONE, ROLE_MASTER, ROLE_BACKUP)

# Server metadata: the load balancer and role of an amphora, the amphora
# id its agent's certificate is issued to, and for a failover's new
# amphora the server it replaces ('' when none was left).
META_LOADBALANCER = 'sriov_octavia_lb'
META_ROLE = 'sriov_octavia_role'
META_AMPHORA_ID = 'sriov_octavia_amphora_id'
META_REPLACES = 'sriov_octavia_replaces'


def server_name(loadbalancer_id, role):
    return f'amphora-{loadbalancer_id}-{role.lower()}'


def server_name_pattern(loadbalancer_id):
    """The regular expression Nova's name filter takes for all of them."""
    return f'^amphora-{loadbalancer_id}-'


def server_group_name(loadbalancer_id):
    return f'octavia-lb-{loadbalancer_id}'


def security_group_name(loadbalancer_id):
    return f'octavia-lb-{loadbalancer_id}'


def vrrp_port_name(loadbalancer_id, role):
    return f'octavia-lb-vrrp-{loadbalancer_id}-{role.lower()}'


def replacement_vrrp_port_name(loadbalancer_id, role):
    """The name of a failover's new VRRP port until the failover commits.

    The old amphora's port keeps ``vrrp_port_name`` meanwhile, so the
    serving port of a role is never in doubt, and what a failed failover
    must delete is what carries this name.
    """
    return vrrp_port_name(loadbalancer_id, role) + '-failover'


def member_port_prefix(loadbalancer_id):
    return f'octavia-lb-member-{loadbalancer_id}-'


def member_port_name(loadbalancer_id, role, network_id):
    return f'{member_port_prefix(loadbalancer_id)}{role.lower()}-{network_id}'
