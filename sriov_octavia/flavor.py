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
"""Flavor metadata of the amphora-sriov provider.

An Octavia flavor profile for this provider is a JSON object with the keys
of ``SCHEMA``. The driver validates it when the profile is created and at
every load balancer create, and hands the worker the flavor with every key
present (``with_defaults``), so flows never guess a default.
"""


from sriov_octavia import conf as sriov_conf
from sriov_octavia import metadata
from sriov_octavia import naming

# Its import registers every option this module reads.
CONF = sriov_conf.CONF

LOADBALANCER_TOPOLOGY = 'loadbalancer_topology'
COMPUTE_FLAVOR = 'compute_flavor'
AMP_IMAGE_TAG = 'amp_image_tag'
SRIOV_VIP = 'sriov_vip'
ALLOW_MEMBER_SRIOV = 'allow_member_sriov'
SRIOV_VNIC_TYPE = 'sriov_vnic_type'

TOPOLOGY_SINGLE = 'SINGLE'
TOPOLOGY_ACTIVE_STANDBY = 'ACTIVE_STANDBY'
# The amphorae each topology has, by role, in the order they are booted.
TOPOLOGY_ROLES = {
    TOPOLOGY_SINGLE: (naming.ROLE_STANDALONE,),
    TOPOLOGY_ACTIVE_STANDBY: (naming.ROLE_MASTER, naming.ROLE_BACKUP),
}
VNIC_TYPE_DIRECT = 'direct'
VNIC_TYPE_MACVTAP = 'macvtap'

# The key names and meanings of the first five match Octavia's own amphora
# provider, so a flavor profile written for it keeps its meaning here.
SCHEMA = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    'title': 'amphora-sriov flavor metadata',
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        LOADBALANCER_TOPOLOGY: {
            'type': 'string',
            'enum': [TOPOLOGY_SINGLE, TOPOLOGY_ACTIVE_STANDBY],
            'description': 'SINGLE: one amphora per load balancer. '
                           'ACTIVE_STANDBY: two amphorae sharing the VIP '
                           'through VRRP. Default: [controller_worker] '
                           'loadbalancer_topology of octavia.conf.',
        },
        COMPUTE_FLAVOR: {
            'type': 'string',
            'minLength': 1,
            'description': 'ID of the Nova flavor the amphorae boot with. '
                           'For SR-IOV it must carry the properties that '
                           'place amphorae on hosts with VFs on the VIP and '
                           'member networks (host aggregates). Default: '
                           '[controller_worker] amp_flavor_id.',
        },
        AMP_IMAGE_TAG: {
            'type': 'string',
            'minLength': 1,
            'description': 'Glance tag of the amphora image; the image '
                           'needs nftables, which replaces the security '
                           'groups SR-IOV ports do not have. Default: '
                           '[controller_worker] amp_image_tag.',
        },
        SRIOV_VIP: {
            'type': 'boolean',
            'default': False,
            'description': 'true: each amphora gets its VIP network '
                           'interface as an SR-IOV VF (a VRRP base port of '
                           'vnic type sriov_vnic_type holding the VIP as an '
                           'allowed address pair); Neutron security groups '
                           'then do not apply, the amphora firewall filters '
                           'by listener allowed_cidrs and vip_sg_ids is '
                           'refused. Default: false.',
        },
        ALLOW_MEMBER_SRIOV: {
            'type': 'boolean',
            'default': False,
            'description': 'true: members may be created with vnic_type '
                           'direct (openstack loadbalancer member create '
                           '--request-sriov), which attaches their subnet '
                           'to the amphorae as an SR-IOV VF. A member whose '
                           'VF cannot be attached goes to ERROR. Default: '
                           'false.',
        },
        SRIOV_VNIC_TYPE: {
            'type': 'string',
            'enum': [VNIC_TYPE_DIRECT, VNIC_TYPE_MACVTAP],
            'default': VNIC_TYPE_DIRECT,
            'description': 'Neutron vnic_type of the VF ports. direct: the '
                           'VF is passed through to the amphora (fastest). '
                           'macvtap: the VF stays on the host behind a '
                           'macvtap device, so operators can observe the '
                           'traffic on the host and amphorae can be live '
                           'migrated, at some speed cost. Default: direct.',
        },
    },
}


def supported_metadata():
    return metadata.descriptions(SCHEMA)


def _cloud_references(flavor_metadata, connection):
    compute_flavor = flavor_metadata.get(COMPUTE_FLAVOR)
    if compute_flavor:
        yield (COMPUTE_FLAVOR, compute_flavor, 'Nova flavor with ID',
               lambda: metadata.get_exists(connection().compute.get_flavor,
                                           compute_flavor))
    image_tag = flavor_metadata.get(AMP_IMAGE_TAG)
    if image_tag:
        yield (AMP_IMAGE_TAG, image_tag, 'Glance image with tag',
               lambda: any(connection().image.images(tag=image_tag,
                                                     limit=1)))


def validate(flavor_metadata, conf=CONF):
    """Check flavor metadata; every error names its key.

    :raises UnsupportedOptionError: a key is unknown, has the wrong type or
        value, or names a compute flavor or image tag the cloud lacks.
    """
    metadata.validate(SCHEMA, flavor_metadata, 'flavor metadata',
                      _cloud_references, conf)


def with_defaults(flavor_metadata, conf=CONF):
    """Return the flavor with every key present.

    The defaults of the keys Octavia's amphora provider also knows come
    from octavia.conf [controller_worker], the same place octavia-api takes
    the load balancer topology from, so the worker and the API agree.
    Keys without a configured default are None.
    """
    worker = conf.controller_worker
    flavor = {
        LOADBALANCER_TOPOLOGY: worker.loadbalancer_topology,
        COMPUTE_FLAVOR: worker.amp_flavor_id or None,
        AMP_IMAGE_TAG: worker.amp_image_tag or None,
    }
    flavor.update({key: prop['default']
                   for key, prop in SCHEMA['properties'].items()
                   if 'default' in prop})
    flavor.update(flavor_metadata or {})
    return flavor


def topology_roles(topology):
    """The amphora roles of a topology (None: SINGLE)."""
    return TOPOLOGY_ROLES[topology or TOPOLOGY_SINGLE]
