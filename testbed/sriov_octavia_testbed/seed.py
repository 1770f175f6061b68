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
"""The default content of a testbed cloud, created as an operator would.

Everything goes through openstacksdk against the running services and is
looked up by name first, so seeding twice changes nothing.
"""

import ipaddress

from oslo_log import log as logging

from sriov_octavia_testbed import inventory

LOG = logging.getLogger(__name__)

MGMT_NETWORK = 'lb-mgmt-net'
MGMT_SUBNET = 'lb-mgmt-subnet'
# The group an Octavia operator makes for the amphorae's management ports.
MGMT_SECURITY_GROUP = 'lb-mgmt-sec-grp'
SRIOV_AGGREGATE = 'sriov_aggregate'
SRIOV_PROPERTY = 'sriov-nic'
SRIOV_FLAVOR = 'amphora-sriov-flavor'
PLAIN_FLAVOR = 'amphora'
AMPHORA_IMAGE = 'amphora-x64-haproxy'
AMPHORA_IMAGE_TAG = 'amphora'


def networks(mgmt_cidr):
    """The provider networks with their subnets, by name."""
    mgmt = ipaddress.ip_network(mgmt_cidr)
    return (
        {'name': 'vip-net', 'shared': True,
         'provider_network_type': 'vlan',
         'provider_physical_network': inventory.SRIOV_PHYSNET,
         'subnets': (
             {'name': 'vip-subnet', 'ip_version': 4,
              'cidr': '203.0.113.0/24', 'gateway_ip': '203.0.113.1'},
             {'name': 'vip-subnet-v6', 'ip_version': 6,
              'cidr': '2001:db8:1::/64', 'gateway_ip': '2001:db8:1::1'},
         )},
        {'name': 'member-net', 'shared': True,
         'provider_network_type': 'vlan',
         'provider_physical_network': inventory.SRIOV_PHYSNET,
         'subnets': (
             {'name': 'member-subnet', 'ip_version': 4,
              'cidr': '198.51.100.0/24', 'gateway_ip': '198.51.100.1'},
         )},
        {'name': MGMT_NETWORK, 'shared': False,
         'provider_network_type': 'flat',
         'provider_physical_network': inventory.MGMT_PHYSNET,
         'subnets': (
             {'name': MGMT_SUBNET, 'ip_version': mgmt.version,
              'cidr': str(mgmt), 'gateway_ip': str(mgmt[1])},
         )},
    )


def seed_networks(conn, mgmt_cidr):
    """Create the networks and subnets; return the subnets by name."""
    subnets = {}
    for spec in networks(mgmt_cidr):
        spec = dict(spec)
        subnet_specs = spec.pop('subnets')
        network = conn.network.find_network(spec['name'])
        if network is None:
            network = conn.network.create_network(**spec)
            LOG.info('created network %s', network.name)
        for subnet_spec in subnet_specs:
            subnet = conn.network.find_subnet(subnet_spec['name'],
                                              network_id=network.id)
            if subnet is None:
                # No DHCP agent runs: amphorae get their addresses from
                # the ports, through their agent.
                subnet = conn.network.create_subnet(
                    network_id=network.id, enable_dhcp=False,
                    **subnet_spec)
                LOG.info('created subnet %s', subnet.name)
            subnets[subnet.name] = subnet
    return subnets


def seed_mgmt_security_group(conn, controller_ip, agent_port):
    """The amphorae's management group, as Octavia's guides have it made.

    The controller may reach the agent's port; ICMP, for an operator's
    ping. Returns the group's id.
    """
    group = conn.network.find_security_group(MGMT_SECURITY_GROUP)
    if group is not None:
        return group.id
    group = conn.network.create_security_group(
        name=MGMT_SECURITY_GROUP,
        description='Amphora management ports: agent and ICMP')
    version = ipaddress.ip_address(controller_ip).version
    ethertype = f'IPv{version}'
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction='ingress', ethertype=ethertype,
        protocol='tcp', port_range_min=agent_port,
        port_range_max=agent_port,
        remote_ip_prefix=f'{controller_ip}/{32 if version == 4 else 128}')
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction='ingress', ethertype=ethertype,
        protocol='icmp' if version == 4 else 'ipv6-icmp')
    LOG.info('created security group %s', MGMT_SECURITY_GROUP)
    return group.id


def seed_compute(conn, inv):
    """Aggregate, flavors and image for SR-IOV and plain amphorae.

    Returns the flavor ids by name.
    """
    aggregate = conn.compute.find_aggregate(SRIOV_AGGREGATE)
    if aggregate is None:
        aggregate = conn.compute.create_aggregate(name=SRIOV_AGGREGATE)
    for host in inventory.sriov_hosts(inv):
        if host not in (aggregate.hosts or []):
            aggregate = conn.compute.add_host_to_aggregate(aggregate, host)
    if (aggregate.metadata or {}).get(SRIOV_PROPERTY) != 'true':
        conn.compute.set_aggregate_metadata(aggregate,
                                            {SRIOV_PROPERTY: 'true'})
    flavor_ids = {}
    for name, extra_specs in ((SRIOV_FLAVOR, {SRIOV_PROPERTY: 'true'}),
                              (PLAIN_FLAVOR, {})):
        flavor = conn.compute.find_flavor(name)
        if flavor is None:
            flavor = conn.compute.create_flavor(name=name, vcpus=1,
                                                ram=1024, disk=2)
            if extra_specs:
                conn.compute.create_flavor_extra_specs(flavor, extra_specs)
            LOG.info('created flavor %s', name)
        flavor_ids[name] = flavor.id
    if conn.image.find_image(AMPHORA_IMAGE) is None:
        conn.image.create_image(name=AMPHORA_IMAGE, disk_format='qcow2',
                                container_format='bare',
                                tags=[AMPHORA_IMAGE_TAG],
                                allow_duplicates=True)
        LOG.info('created image %s', AMPHORA_IMAGE)
    return flavor_ids
