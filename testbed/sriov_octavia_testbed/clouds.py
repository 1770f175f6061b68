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
"""The clouds.yaml through which the CLI and openstacksdk reach the testbed.

Also the service catalog the identity stand-in hands out with its tokens:
the same endpoints, so a client that reads the catalog (Barbican's, and
Octavia's certificate manager) and one given the endpoints find the same
services.
"""

import uuid

import openstack.config
import openstack.connection
import yaml

from sriov_octavia_testbed import config
from sriov_octavia_testbed import identity

REGION = 'RegionOne'
# service type -> the service's name in the catalog.
SERVICE_NAMES = {
    'identity': 'keystone',
    'network': 'neutron',
    'load-balancer': 'octavia',
    'compute': 'nova',
    'image': 'glance',
    'key-manager': 'barbican',
}
_INTERFACES = ('public', 'internal', 'admin')
_ID_NAMESPACE = uuid.UUID('0d6c0f5e-8f4b-4b7e-9a55-2a4f7c3e9b01')


def endpoints(testbed):
    """The URL of every service, by service type.

    The network endpoint is Neutron's root URL: clients discover /v2.0
    themselves, and the CLI resolves names (``--vip-subnet-id vip-subnet``)
    through it. Barbican's is its root too, as Keystone lists it: its
    clients add /v1.
    """
    nova = testbed.url('nova')
    return {
        'identity': testbed.url('identity') + '/v3',
        'network': testbed.url('neutron') + '/',
        'load-balancer': testbed.url('octavia-api'),
        'compute': nova + '/compute/v2.1',
        'image': nova + '/image',
        'key-manager': testbed.url('barbican'),
    }


def catalog(testbed):
    """The service catalog of the instance, as Keystone v3 shows it."""
    entries = []
    for service_type, url in endpoints(testbed).items():
        entries.append({
            'type': service_type,
            'name': SERVICE_NAMES[service_type],
            'id': uuid.uuid5(_ID_NAMESPACE, service_type).hex,
            'endpoints': [{
                'id': uuid.uuid5(_ID_NAMESPACE,
                                 f'{service_type}/{interface}').hex,
                'interface': interface, 'region': REGION,
                'region_id': REGION, 'url': url,
            } for interface in _INTERFACES],
        })
    return entries


def user_auth(testbed, user, project):
    """keystoneauth ``password`` options of a user of the stand-in."""
    return {
        'auth_url': endpoints(testbed)['identity'],
        'username': user,
        'password': identity.PASSWORD,
        'project_name': project['name'],
        'user_domain_name': identity.DOMAIN['name'],
        'project_domain_name': identity.DOMAIN['name'],
    }


def cloud(testbed, authenticated=True):
    """One ``clouds:`` entry, every endpoint but Barbican's given directly.

    ``authenticated``: the identity stand-in runs. The cloud's user then
    logs in there (user ``admin`` of the testbed project), as a user of a
    real cloud does: Barbican takes nothing but a token, its client finds
    it in the token's catalog only, and Octavia passes the user's token on
    to Barbican to grant itself access to the user's TLS secrets. Neutron,
    Octavia and the compute emulator ignore the token. Without the
    stand-in no token and no catalog: the given endpoints only.
    """
    entry = {
        'auth_type': 'none',
        'region_name': REGION,
    }
    if authenticated:
        entry.update({
            'auth_type': 'password',
            'identity_api_version': '3',
            'auth': user_auth(testbed, identity.ADMIN_USER,
                              identity.PROJECT),
        })
    given = endpoints(testbed)
    entry.update({
        # Only version discovery, the testbed's projects and users, and
        # tokens: some CLI commands (server list, --project) insist on an
        # Identity client.
        'identity_endpoint_override': given['identity'],
        'load_balancer_endpoint_override': given['load-balancer'],
        'network_endpoint_override': given['network'],
        'compute_endpoint_override': given['compute'],
        'image_endpoint_override': given['image'],
    })
    return entry


def write(testbed, authenticated=True):
    with open(testbed.clouds_yaml, 'w') as f:
        yaml.safe_dump({'clouds': {config.CLOUD_NAME: cloud(
            testbed, authenticated)}}, f, default_flow_style=False)


def connect(testbed):
    """An openstacksdk connection to the testbed, as its clouds.yaml says."""
    loader = openstack.config.OpenStackConfig(
        config_files=[testbed.clouds_yaml])
    return openstack.connection.Connection(
        config=loader.get_one(cloud=config.CLOUD_NAME))
