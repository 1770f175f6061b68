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
"""What the tests of the fabric alone share: a fabric, amphorae, their agent.

Each test module keeps its own prefix and management subnet, so that
modules never share links or namespaces.
"""

import uuid

import pytest
import requests

from sriov_octavia_testbed import plumbing
from tests.functional.testbed import controller_files


def new_id():
    return str(uuid.uuid4())


def fabric_fixture(prefix, mgmt_subnet, **options):
    """A ``fabric`` fixture: a fabric with its management network.

    A module takes it as ``fabric = fabric_lab.fabric_fixture(...)``.
    """
    @pytest.fixture
    def fabric(tmp_path):
        fab = plumbing.Fabric(str(tmp_path / 'state'), prefix=prefix,
                              **options)
        fab.ensure_mgmt_network(mgmt_subnet)
        yield fab
        fab.cleanup()
    return fabric


def mgmt_port(ip, mac):
    return {'id': new_id(), 'mac_address': mac,
            'fixed_ips': [{'ip_address': ip}]}


def boot_with_agent(fabric, ip, mac):
    """An amphora booted from the controller's user data, its agent up."""
    server_id = new_id()
    amphora = fabric.boot_amphora(
        server_id, mgmt_port(ip, mac),
        user_data=controller_files.user_data(fabric, server_id, ip))
    fabric.wait_for_agent(amphora.server_id, timeout=60)
    return amphora


def agent_call(fabric, amphora, method, path, **kwargs):
    """A request to the agent's API, with the controller's certificate."""
    kwargs.setdefault('cert', fabric.agent_client_cert)
    kwargs.setdefault('timeout', 30)
    return requests.request(method, f'{amphora.agent_url}/1.0/{path}',
                            verify=fabric.ca_cert, **kwargs)
