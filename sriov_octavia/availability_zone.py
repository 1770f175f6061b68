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
"""Availability zone metadata of the amphora-sriov provider.

An Octavia availability zone profile says where amphorae boot and which
networks they use there. octavia-api itself enforces valid_vip_networks;
the worker reads compute_zone and management_network.
"""


from sriov_octavia import conf as sriov_conf
from sriov_octavia import metadata

# Its import registers every option this module reads.
CONF = sriov_conf.CONF

COMPUTE_ZONE = 'compute_zone'
MANAGEMENT_NETWORK = 'management_network'
VALID_VIP_NETWORKS = 'valid_vip_networks'

# The keys and meanings match Octavia's amphora provider (without
# volume_zone: amphorae of this provider boot from their image, without
# volumes).
SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'amphora-sriov availability zone metadata',
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        COMPUTE_ZONE: {
            'type': 'string',
            'minLength': 1,
            'description': 'Nova availability zone the amphorae boot in; '
                           'its hosts need VFs on the VIP and member '
                           'networks when the flavor asks for SR-IOV.',
        },
        MANAGEMENT_NETWORK: {
            'type': 'string',
            'minLength': 1,
            'description': 'ID of the Neutron network of the amphora '
                           'management interface in this zone (replaces '
                           '[controller_worker] amp_boot_network_list).',
        },
        VALID_VIP_NETWORKS: {
            'type': 'array',
            'items': {'type': 'string', 'minLength': 1},
            'description': 'IDs of the Neutron networks load balancers in '
                           'this zone may put their VIP on; replaces '
                           '[networking] valid_vip_networks of '
                           'octavia.conf.',
        },
    },
}


def supported_metadata():
    return metadata.descriptions(SCHEMA)


def _cloud_references(az_metadata, connection):
    zone = az_metadata.get(COMPUTE_ZONE)
    if zone:
        yield (COMPUTE_ZONE, zone, 'Nova availability zone',
               lambda: any(found.name == zone for found
                           in connection().compute.availability_zones()))
    networks = [(MANAGEMENT_NETWORK, az_metadata.get(MANAGEMENT_NETWORK))]
    networks += [(f'{VALID_VIP_NETWORKS}.{index}', network_id)
                 for index, network_id in enumerate(
                     az_metadata.get(VALID_VIP_NETWORKS, []))]
    for key, network_id in networks:
        if network_id:
            yield (key, network_id, 'Neutron network with ID',
                   lambda network_id=network_id: metadata.get_exists(
                       connection().network.get_network, network_id))


def validate(az_metadata, conf=CONF):
    """Check availability zone metadata; every error names its key.

    :raises UnsupportedOptionError: a key is unknown, has the wrong type,
        or names a zone or network the cloud lacks.
    """
    metadata.validate(SCHEMA, az_metadata, 'availability zone metadata',
                      _cloud_references, conf)
