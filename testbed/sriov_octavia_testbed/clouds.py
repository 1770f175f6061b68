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
"""The clouds.yaml through which the CLI and openstacksdk reach the testbed."""

import openstack.config
import openstack.connection
import yaml

from sriov_octavia_testbed import config


def cloud(testbed):
    """One ``clouds:`` entry: no Keystone, every endpoint given directly.

    The network endpoint is Neutron's root URL: clients discover /v2.0
    themselves, and the CLI resolves names (``--vip-subnet-id vip-subnet``)
    through it.
    """
    nova = testbed.url('nova')
    return {
        'auth_type': 'none',
        'region_name': 'RegionOne',
        # Only version discovery and the testbed's project: some CLI
        # commands (server list, --project) insist on an Identity client.
        'identity_endpoint_override': testbed.url('identity') + '/v3',
        'load_balancer_endpoint_override': testbed.url('octavia-api'),
        'network_endpoint_override': testbed.url('neutron') + '/',
        'compute_endpoint_override': nova + '/compute/v2.1',
        'image_endpoint_override': nova + '/image',
    }


def write(testbed):
    with open(testbed.clouds_yaml, 'w') as f:
        yaml.safe_dump({'clouds': {config.CLOUD_NAME: cloud(testbed)}}, f,
                       default_flow_style=False)


def connect(testbed):
    """An openstacksdk connection to the testbed, as its clouds.yaml says."""
    loader = openstack.config.OpenStackConfig(
        config_files=[testbed.clouds_yaml])
    return openstack.connection.Connection(
        config=loader.get_one(cloud=config.CLOUD_NAME))
