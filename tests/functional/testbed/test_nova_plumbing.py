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
"""Servers of the compute emulator as amphorae: namespaces, the real agent,
VFs plugged and unplugged, the agent's management path cut on request.

The emulator is started by the testbed's lifecycle, as ``up`` starts it.
"""

import base64
import socket
import types
import uuid

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
import pytest

from sriov_octavia_testbed import plumbing
from tests.functional.testbed import controller_files
from tests.functional.testbed import nova_env
from tests.functional.testbed.nova_env import PROJECT

pytestmark = pytest.mark.netns


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp('tnv-plumbing'))
    with nova_env.neutron_testbed(state_dir, start_nova=True) as testbed:
        conn = testbed.connect()
        try:
            yield _populate(testbed, conn)
        finally:
            conn.close()


def _populate(testbed, conn):
    mgmt = conn.network.create_network(
        name='tnv-mgmt', provider_network_type='flat',
        provider_physical_network=nova_env.MGMT_PHYSNET, project_id=PROJECT)
    # The testbed's own management subnet: its gateway goes to the root
    # namespace, where it clashes with no other instance's.
    conn.network.create_subnet(network_id=mgmt.id, cidr=testbed.mgmt_cidr,
                               ip_version=4, enable_dhcp=False,
                               project_id=PROJECT)
    vip = conn.network.create_network(
        name='tnv-vip', provider_network_type='vlan',
        provider_physical_network=nova_env.SRIOV_PHYSNET,
        project_id=PROJECT)
    conn.network.create_subnet(network_id=vip.id, cidr='198.51.100.0/24',
                               ip_version=4, enable_dhcp=False,
                               project_id=PROJECT)
    return types.SimpleNamespace(
        testbed=testbed, conn=conn, mgmt_net=mgmt, vip_net=vip,
        fabric=plumbing.Fabric(testbed.state_dir, prefix=testbed.prefix),
        image=conn.image.create_image(
            name='tnv-amphora', disk_format='qcow2',
            container_format='bare', tags=['amphora'], data=b'not a disk',
            allow_duplicates=True),
        flavor=conn.compute.create_flavor(name='tnv-plain', vcpus=1,
                                          ram=1024, disk=2))


def _direct_port(cloud):
    return cloud.conn.network.create_port(
        network_id=cloud.vip_net.id, binding_vnic_type='direct',
        project_id=PROJECT)


def _macs(namespace):
    with IPRoute(netns=namespace) as ipr:
        return {link.get_attr('IFLA_ADDRESS') for link in ipr.get_links()}


def _agent_accepts(amphora):
    try:
        with socket.create_connection(
                (amphora.mgmt_ip, plumbing.AGENT_PORT), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture
def amphora_server(cloud):
    """A server booted with a mgmt network and a VF port, removed after."""
    vip_port = _direct_port(cloud)
    # The agent starts from the user data the boot request carries.
    user_data = controller_files.user_data(cloud.fabric, str(uuid.uuid4()))
    server = cloud.conn.compute.create_server(
        name=f'tnv-{uuid.uuid4().hex[:6]}', flavor_id=cloud.flavor.id,
        image_id=cloud.image.id,
        networks=[{'uuid': cloud.mgmt_net.id}, {'port': vip_port.id}],
        user_data=base64.b64encode(user_data.encode()).decode())
    try:
        yield nova_env.wait_active(cloud.conn, server), vip_port
    finally:
        nova_env.clear_faults(cloud.testbed)
        nova_env.delete_server(cloud.conn, server)
        cloud.conn.network.delete_port(vip_port, ignore_missing=True)


def test_server_is_an_amphora_with_its_vf(cloud, amphora_server):
    server, vip_port = amphora_server
    amphora = cloud.fabric.amphora(server.id)
    assert amphora is not None
    mgmt_port = next(cloud.conn.network.ports(network_id=cloud.mgmt_net.id,
                                              device_id=server.id))
    assert amphora.mgmt_ip == mgmt_port.fixed_ips[0]['ip_address']
    cloud.fabric.wait_for_agent(server.id)
    assert vip_port.mac_address in _macs(amphora.data_namespace)
    assert list(cloud.fabric.vfs(server.id)) == [vip_port.id]

    nova_env.delete_server(cloud.conn, server)
    assert cloud.fabric.amphora(server.id) is None
    existing = pyroute2_netns.listnetns()
    assert amphora.namespace not in existing
    assert amphora.data_namespace not in existing


def test_attach_and_detach_plug_vfs(cloud, amphora_server):
    server, _vip_port = amphora_server
    conn = cloud.conn
    amphora = cloud.fabric.amphora(server.id)
    member_port = _direct_port(cloud)
    try:
        conn.compute.create_server_interface(server, port_id=member_port.id)
        assert member_port.mac_address in _macs(amphora.data_namespace)
        conn.compute.delete_server_interface(member_port, server=server)
        nova_env.wait_until(
            lambda: member_port.id not in cloud.fabric.vfs(server.id),
            what='the VF to be unplugged')
        assert member_port.mac_address not in _macs(amphora.data_namespace)
        nova_env.wait_until(
            lambda: nova_env.port_unbound(conn, member_port.id),
            what='the port to be unbound')
    finally:
        conn.network.delete_port(member_port, ignore_missing=True)


def test_agent_unreachable_fault(cloud, amphora_server):
    server, _vip_port = amphora_server
    amphora = cloud.fabric.amphora(server.id)
    cloud.fabric.wait_for_agent(server.id)
    nova_env.set_faults(cloud.testbed, agent='unreachable',
                        servers=[server.id])
    assert not _agent_accepts(amphora)
    assert cloud.fabric.agent_running(server.id)
    nova_env.clear_faults(cloud.testbed)
    # The link is back; the root namespace re-learns the agent's MAC.
    nova_env.wait_until(lambda: _agent_accepts(amphora),
                        what='the agent to be reachable again')
