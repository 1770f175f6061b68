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
"""The compute emulator's server life cycle with Neutron and the plumbing
replaced by in-memory fakes (testbed.nova.compute)."""

import base64
import json
import uuid

import pytest

from sriov_octavia_testbed.nova import compute
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import inventory
from sriov_octavia_testbed.nova import neutron as neutron_ports
from sriov_octavia_testbed.nova import state as state_mod

INVENTORY = {
    'h1': {'pci_devices': [{'pf': 'p0', 'physical_network': 'sriovnet',
                            'vf_count': 1}]},
    'h2': {},
}


class FakeResource:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def to_dict(self, computed=True):
        return dict(self.__dict__)


class FakeNeutron:
    """Ports, networks and subnets in memory; binds like ML2 would."""

    def __init__(self):
        self.networks, self.subnets, self.ports = {}, {}, {}
        self.unbindable = set()
        self.security_groups = {}

    def network(self, physnet=None, bindable=True):
        network = FakeResource(id=str(uuid.uuid4()), name='net',
                               provider_physical_network=physnet)
        subnet = FakeResource(id=str(uuid.uuid4()), cidr='198.51.100.0/24',
                              gateway_ip='198.51.100.1')
        self.networks[network.id] = network
        self.subnets[subnet.id] = subnet
        network.subnet_id = subnet.id
        if not bindable:
            self.unbindable.add(network.id)
        return network

    def port(self, network, vnic_type='normal'):
        port = FakeResource(
            id=str(uuid.uuid4()), network_id=network.id,
            binding_vnic_type=vnic_type, device_id='', device_owner='',
            binding_host_id=None, binding_profile={},
            binding_vif_type='unbound', status='DOWN',
            mac_address='fa:16:3e:00:00:%02x' % (len(self.ports) + 1),
            fixed_ips=[{'subnet_id': network.subnet_id,
                        'ip_address': f'198.51.100.{len(self.ports) + 2}'}])
        self.ports[port.id] = port
        return port

    def get_port(self, port_id):
        if port_id not in self.ports:
            raise neutron_ports.PortNotFound(f'Port id {port_id} could not '
                                             'be found.')
        return self.ports[port_id]

    def get_network(self, network_id):
        if network_id not in self.networks:
            raise neutron_ports.NetworkNotFound(f'Network {network_id}')
        return self.networks[network_id]

    def get_subnet(self, subnet_id):
        return self.subnets[subnet_id]

    def find_security_group(self, name_or_id, project_id):
        for group_id, name in self.security_groups.items():
            if name_or_id in (group_id, name):
                return FakeResource(id=group_id, name=name)
        return None

    def create_port(self, network_id, project_id, server_id, zone,
                    fixed_ip=None, security_group_ids=None):
        port = self.port(self.networks[network_id])
        port.security_group_ids = security_group_ids
        if fixed_ip:
            port.fixed_ips[0]['ip_address'] = fixed_ip
        port.device_id, port.device_owner = server_id, f'compute:{zone}'
        return port

    def bind_port(self, port_id, server_id, host, zone, vf=None):
        port = self.ports[port_id]
        port.device_id, port.device_owner = server_id, f'compute:{zone}'
        port.binding_host_id = host
        if vf is not None:
            port.binding_profile = {'pci_slot': vf.pci_slot,
                                    'physical_network': vf.physical_network}
        if port.network_id in self.unbindable:
            port.binding_vif_type = 'binding_failed'
            raise neutron_ports.PortBindingFailed(port_id)
        port.binding_vif_type = 'hw_veb' if vf else 'ovs'
        return port

    def unbind_port(self, port_id):
        port = self.ports[port_id]
        port.device_id = port.device_owner = ''
        port.binding_host_id, port.binding_profile = None, {}
        port.binding_vif_type = 'unbound'

    def delete_port(self, port_id):
        self.ports.pop(port_id, None)


class FakeFabric:
    def __init__(self):
        self.calls = []
        # An exception to raise when booting.
        self.fail_boot = None

    def boot_amphora(self, server_id, mgmt_port, mgmt_subnet=None,
                     user_data=None):
        self.calls.append(('boot', server_id, mgmt_port['id'],
                           mgmt_subnet['cidr'], user_data))
        if self.fail_boot:
            raise self.fail_boot

    def attach_vf(self, server_id, port, subnet=None):
        self.calls.append(('attach', server_id, port['id']))

    def detach_vf(self, server_id, port_id):
        self.calls.append(('detach', server_id, port_id))

    def delete_amphora(self, server_id):
        self.calls.append(('delete', server_id))

    def set_agent_reachable(self, server_id, reachable):
        self.calls.append(('reachable', server_id, reachable))


@pytest.fixture
def env(tmp_path):
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'hosts': INVENTORY}))
    neutron = FakeNeutron()
    fabric = FakeFabric()
    faults = faults_mod.Faults()
    manager = compute.ComputeManager(
        state_mod.State(str(tmp_path)), inventory.Inventory.load(str(path)),
        neutron, fabric, faults)
    with manager.state.transaction() as data:
        data['flavors']['f1'] = {'id': 'f1', 'name': 'f1', 'extra_specs': {}}
        data['images']['i1'] = {'id': 'i1'}
    return manager, neutron, fabric, faults


def _boot(manager, networks, **extra):
    body = {'server': dict(name='amp', flavorRef='f1', imageRef='i1',
                           networks=networks, **extra)}
    server = manager.create_server(body, 'project', 'user')
    manager.wait()
    with manager.state.read() as data:
        return dict(data['servers'][server['id']])


USER_DATA = b'#cloud-config\nwrite_files: []\n'


@pytest.mark.parametrize('extra, message', [
    ({'user_data': 'not base64!'}, 'User data needs to be valid base 64.'),
    ({'user_data': 'QUFB' * 16384}, 'User data too large'),
    ({'key_name': 'octavia-ssh'}, 'Invalid key_name provided.'),
    ({'security_groups': [{'name': 'nope'}]},
     'Security group nope not found for project project.'),
    ({'security_groups': 'lb-mgmt-sec-grp'},
     'Invalid input for field/attribute security_groups.'),
    ({'config_drive': 'maybe'}, 'Invalid input for field/attribute '
                                'config_drive.'),
], ids=['user-data-base64', 'user-data-size', 'key-name', 'unknown-group',
        'groups-format', 'config-drive'])
def test_boot_requests_refused_as_nova_api_refuses_them(env, extra,
                                                        message):
    manager, neutron, _fabric, _faults = env
    mgmt = neutron.network('physnet1')
    body = {'server': dict(name='amp', flavorRef='f1', imageRef='i1',
                           networks=[{'uuid': mgmt.id}], **extra)}
    with pytest.raises(errors.BadRequest) as raised:
        manager.create_server(body, 'project', 'user')
    assert message in str(raised.value)
    with manager.state.read() as data:
        assert data['servers'] == {}


def test_security_groups_go_on_the_ports_nova_creates_only(env):
    manager, neutron, _fabric, _faults = env
    neutron.security_groups['sg-1'] = 'lb-mgmt-sec-grp'
    mgmt = neutron.network('physnet1')
    vip = neutron.port(neutron.network('sriovnet'), 'direct')
    server = _boot(manager, [{'uuid': mgmt.id}, {'port': vip.id}],
                   security_groups=[{'name': 'lb-mgmt-sec-grp'}],
                   config_drive=True)
    mgmt_port = next(p for p in neutron.ports.values()
                     if p.network_id == mgmt.id)
    assert mgmt_port.security_group_ids == ['sg-1']
    assert getattr(vip, 'security_group_ids', None) is None
    assert server['security_groups'] == [{'id': 'sg-1',
                                          'name': 'lb-mgmt-sec-grp'}]
    assert server['config_drive'] == 'True'


def _allocations(manager):
    with manager.state.read() as data:
        return json.loads(json.dumps(data['pci_allocations']))


def test_boot_binds_claims_and_spawns(env):
    manager, neutron, fabric, _faults = env
    mgmt = neutron.network('physnet1')
    vip = neutron.port(neutron.network('sriovnet'), 'direct')
    server = _boot(manager, [{'uuid': mgmt.id, 'fixed_ip': '198.51.100.9'},
                             {'port': vip.id}],
                   user_data=base64.b64encode(USER_DATA).decode())
    assert server['status'] == 'ACTIVE'
    assert server['host'] == 'h1'
    assert vip.binding_vif_type == 'hw_veb'
    assert vip.binding_profile == {'pci_slot': '0000:81:10.0',
                                   'physical_network': 'sriovnet'}
    mgmt_port = next(p for p in neutron.ports.values()
                     if p.network_id == mgmt.id)
    assert mgmt_port.device_owner == 'compute:nova'
    assert mgmt_port.fixed_ips[0]['ip_address'] == '198.51.100.9'
    assert fabric.calls == [
        # The amphora boots from the user data, decoded as in the guest.
        ('boot', server['id'], mgmt_port.id, '198.51.100.0/24', USER_DATA),
        ('attach', server['id'], vip.id)]
    assert _allocations(manager) == {'h1': {'0000:81:10.0': {
        'server_id': server['id'], 'port_id': vip.id}}}

    manager.delete_server(server['id'])
    manager.wait()
    assert fabric.calls[-1] == ('delete', server['id'])
    assert mgmt_port.id not in neutron.ports
    assert vip.device_id == '' and vip.binding_host_id is None
    assert _allocations(manager) == {'h1': {}}
    with manager.state.read() as data:
        assert data['servers'] == {}


def test_boot_without_vf_is_no_valid_host(env):
    manager, neutron, fabric, _faults = env
    net = neutron.network('sriovnet')
    ports = [neutron.port(net, 'direct') for _ in range(2)]
    server = _boot(manager, [{'port': p.id} for p in ports])
    assert server['status'] == 'ERROR'
    assert server['fault']['code'] == 500
    assert server['fault']['message'].startswith('No valid host was found.')
    assert fabric.calls == []
    assert all(p.device_id == '' for p in ports)


def test_binding_failure_cleans_up(env):
    manager, neutron, fabric, _faults = env
    dark = neutron.network('dark', bindable=False)
    vip = neutron.port(neutron.network('sriovnet'), 'direct')
    server = _boot(manager, [{'port': vip.id}, {'uuid': dark.id}])
    assert server['status'] == 'ERROR'
    assert 'Binding failed for port' in server['fault']['message']
    assert [p for p in neutron.ports.values()
            if p.network_id == dark.id] == []
    assert vip.device_id == ''
    assert _allocations(manager) == {'h1': {}}
    assert fabric.calls == []


def test_spawn_failure_cleans_up(env):
    manager, neutron, fabric, _faults = env
    fabric.fail_boot = RuntimeError('no namespaces today')
    mgmt = neutron.network('physnet1')
    server = _boot(manager, [{'uuid': mgmt.id}])
    assert server['status'] == 'ERROR'
    assert server['fault']['message'] == (
        f"Build of instance {server['id']} aborted: no namespaces today")
    assert fabric.calls[-1] == ('delete', server['id'])
    assert neutron.ports == {}


def test_api_validation(env):
    manager, neutron, _fabric, _faults = env
    port = neutron.port(neutron.network('sriovnet'), 'direct')
    port.device_id = 'someone-else'
    with pytest.raises(errors.Conflict):
        _boot(manager, [{'port': port.id}])
    with pytest.raises(errors.BadRequest):
        _boot(manager, [{'port': 'missing'}])
    with pytest.raises(errors.BadRequest):
        _boot(manager, [], availability_zone='elsewhere')
    with pytest.raises(errors.BadRequest):
        manager.create_server({'server': {'name': 'x', 'flavorRef': 'no',
                                          'imageRef': 'i1'}}, 'p', 'u')


def test_attach_claims_and_detach_releases(env):
    manager, neutron, fabric, _faults = env
    server = _boot(manager, [], availability_zone='nova:h1')
    net = neutron.network('sriovnet')
    first, second = neutron.port(net, 'direct'), neutron.port(net, 'direct')
    record = manager.attach_interface(server['id'], port_id=first.id)
    assert record['pci_slot'] == '0000:81:10.0'
    assert first.binding_host_id == 'h1'
    with pytest.raises(errors.BadRequest) as failure:
        manager.attach_interface(server['id'], port_id=second.id)
    assert 'Failed to claim PCI device' in failure.value.message
    assert second.device_id == ''

    manager.detach_interface(server['id'], first.id)
    manager.wait()
    assert ('detach', server['id'], first.id) in fabric.calls
    assert first.device_id == ''
    manager.attach_interface(server['id'], port_id=second.id)
    assert second.binding_profile['pci_slot'] == '0000:81:10.0'


def test_attach_fault_rolls_back(env):
    manager, neutron, fabric, faults = env
    server = _boot(manager, [], availability_zone='nova:h1')
    port = neutron.port(neutron.network('sriovnet'), 'direct')
    faults.update({'attach': 'fail_once'})
    with pytest.raises(errors.ServerError):
        manager.attach_interface(server['id'], port_id=port.id)
    assert port.device_id == ''
    assert _allocations(manager) == {'h1': {}}
    manager.attach_interface(server['id'], port_id=port.id)
    assert port.binding_vif_type == 'hw_veb'


def test_attach_needs_an_active_server(env):
    manager, neutron, _fabric, faults = env
    faults.update({'schedule': 'fail'})
    server = _boot(manager, [])
    port = neutron.port(neutron.network('sriovnet'), 'direct')
    with pytest.raises(errors.Conflict):
        manager.attach_interface(server['id'], port_id=port.id)
    with pytest.raises(errors.NotFound):
        manager.attach_interface('missing', port_id=port.id)


def test_anti_affinity_group_from_hints(env):
    manager, _neutron, _fabric, _faults = env
    with manager.state.transaction() as data:
        data['server_groups']['g'] = {'id': 'g', 'policy': 'anti-affinity',
                                      'rules': {}, 'members': []}
    hints = {'OS-SCH-HNT:scheduler_hints': {'group': 'g'}}
    servers = []
    for _ in range(3):
        body = {'server': {'name': 'a', 'flavorRef': 'f1', 'imageRef': 'i1',
                           'networks': []}}
        body.update(hints)
        servers.append(manager.create_server(body, 'p', 'u')['id'])
        manager.wait()
    with manager.state.read() as data:
        placed = [data['servers'][s] for s in servers]
        assert sorted(s['host'] for s in placed[:2]) == ['h1', 'h2']
        assert placed[2]['status'] == 'ERROR'
        assert data['server_groups']['g']['members'] == servers


def test_state_is_persisted_and_recovered(env, tmp_path):
    manager, neutron, _fabric, _faults = env
    server = _boot(manager, [{'port': neutron.port(
        neutron.network('sriovnet'), 'direct').id}])
    with manager.state.transaction() as data:
        data['servers'][server['id']]['status'] = 'BUILD'
    reloaded = compute.ComputeManager(
        state_mod.State(str(tmp_path)), manager.inventory, neutron,
        FakeFabric(), faults_mod.Faults())
    reloaded.recover()
    with reloaded.state.read() as data:
        recovered = data['servers'][server['id']]
        assert recovered['status'] == 'ERROR'
        assert 'restarted' in recovered['fault']['message']
        assert data['pci_allocations'] == {'h1': {}}


def test_agents_unreachable_for_new_amphorae(env):
    manager, neutron, fabric, faults = env
    faults.update({'agent': 'unreachable'})
    server = _boot(manager, [{'uuid': neutron.network('physnet1').id}])
    assert fabric.calls[-1] == ('reachable', server['id'], False)
    assert manager.set_agents_reachable(None, True) == [server['id']]
    with pytest.raises(errors.NotFound):
        manager.set_agents_reachable(['missing'], True)


def test_management_port_is_the_first_normal_port(env):
    manager, neutron, fabric, _faults = env
    vip = neutron.port(neutron.network('sriovnet'), 'direct')
    mgmt = neutron.port(neutron.network('physnet1'))
    server = _boot(manager, [{'port': vip.id}, {'port': mgmt.id}])
    assert [call[:3] for call in fabric.calls] == [
        ('boot', server['id'], mgmt.id), ('attach', server['id'], vip.id)]


def test_server_without_management_port_gets_no_amphora(env):
    manager, neutron, fabric, _faults = env
    vip = neutron.port(neutron.network('sriovnet'), 'direct')
    server = _boot(manager, [{'port': vip.id}])
    assert server['status'] == 'ACTIVE'
    assert vip.binding_vif_type == 'hw_veb'
    assert fabric.calls == []
    manager.delete_server(server['id'])
    manager.wait()
    assert fabric.calls == []
