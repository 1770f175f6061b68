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

import base64
import json
import logging

from cryptography import x509
from openstack import exceptions as os_exceptions
import pytest

from flows.tasks import compute
from flows.tasks import identity
from sriov_octavia.amphora import bootstrap
from sriov_octavia import amphorae
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia_testbed.plumbing import cloud_init
from tests.unit.flows import conftest
from tests.unit.flows import fake_cloud

LB_ID = conftest.LB_ID
ACTIVE_STANDBY = sriov_flavor.TOPOLOGY_ACTIVE_STANDBY


def _roles(flavor):
    return compute.roles(flavor)


def _boot(cloud, flavor, zone=None, group_id=None):
    roles = _roles(flavor)
    identities = identity.IssueAmphoraIdentities(roles).execute(LB_ID)
    boot_attrs = compute.PrepareBoot().execute(flavor, zone or {}, group_id)
    return compute.BootAmphorae(roles).execute(LB_ID, identities,
                                               boot_attrs)


def _user_data_files(server):
    """What the server's cloud-init would write: ``{path: bytes}``."""
    text = base64.b64decode(server.user_data).decode()
    return {path: content for path, content, _mode
            in cloud_init.parse(text)}


def test_active_standby_group_is_anti_affinity_and_reverted(cloud,
                                                            worker_conf):
    task = compute.CreateServerGroup()
    group_id = task.execute(LB_ID)
    group = cloud.compute.groups[group_id]
    assert (group.name, group.policy) == (f'octavia-lb-{LB_ID}',
                                          'anti-affinity')
    task.revert(LB_ID, result=group_id)
    assert cloud.compute.groups == {}


def test_boot_single_amphora(cloud, worker_conf):
    amphorae = _boot(cloud, conftest.make_flavor())
    [server] = cloud.compute.created
    amphora_id = server.metadata['sriov_octavia_amphora_id']
    assert amphorae == [{'id': server.id, 'amphora_id': amphora_id,
                         'role': 'STANDALONE',
                         'mgmt_network_id': fake_cloud.MGMT_NET}]
    assert server.flavor_id == fake_cloud.COMPUTE_FLAVOR
    # The newest image with the tag.
    assert server.image_id == 'new-image'
    assert server.networks == [{'uuid': fake_cloud.MGMT_NET}]
    assert server.metadata == {'sriov_octavia_lb': LB_ID,
                               'sriov_octavia_role': 'STANDALONE',
                               'sriov_octavia_amphora_id': amphora_id}
    assert server.scheduler_hints is None
    assert server.availability_zone is None
    # Octavia's defaults: user data through the metadata service, the
    # project's default group, no key pair.
    assert server.config_drive is False
    assert server.security_groups is None
    assert server.key_name is None


def test_the_user_data_carries_the_identity_and_agent_config(cloud,
                                                             worker_conf):
    _boot(cloud, conftest.make_flavor())
    [server] = cloud.compute.created
    amphora_id = server.metadata['sriov_octavia_amphora_id']
    files = _user_data_files(server)
    certificate = x509.load_pem_x509_certificate(
        files['/etc/octavia/certs/server.pem'])
    assert certificate.subject.rfc4514_string() == f'CN={amphora_id}'
    assert b'PRIVATE KEY' in files['/etc/octavia/certs/server.pem']
    with open(worker_conf.controller_worker.client_ca, 'rb') as ca:
        assert files['/etc/octavia/certs/client_ca.pem'] == ca.read()
    assert f'amphora_id = {amphora_id}'.encode() in files[
        '/etc/octavia/amphora-sriov-agent.conf']


def test_octavia_amphora_settings_reach_nova(cloud, worker_conf):
    for name, value in (('amp_secgroup_list', ['lb-mgmt-sec-grp', 'sg-2']),
                        ('amp_ssh_key_name', 'octavia-ssh'),
                        ('user_data_config_drive', True)):
        worker_conf.set_override(name, value, group='controller_worker')
    try:
        _boot(cloud, conftest.make_flavor())
    finally:
        for name in ('amp_secgroup_list', 'amp_ssh_key_name',
                     'user_data_config_drive'):
            worker_conf.clear_override(name, group='controller_worker')
    [server] = cloud.compute.created
    assert server.security_groups == [{'name': 'lb-mgmt-sec-grp'},
                                      {'name': 'sg-2'}]
    assert server.key_name == 'octavia-ssh'
    assert server.config_drive is True


def test_no_identity_names_what_is_missing_and_boots_nothing(
        cloud, worker_conf, tmp_path, caplog):
    worker_conf.set_override('ca_private_key', str(tmp_path / 'gone.key'),
                             group='certificates')
    try:
        with pytest.raises(bootstrap.IdentityError, match='gone.key'):
            _boot(cloud, conftest.make_flavor())
    finally:
        worker_conf.clear_override('ca_private_key', group='certificates')
    assert cloud.compute.created == []
    assert (f'No identity for the STANDALONE amphora of load balancer '
            f'{LB_ID}') in caplog.text


def test_the_identity_result_holds_no_key_in_clear(cloud, worker_conf):
    identities = identity.IssueAmphoraIdentities(
        sriov_flavor.topology_roles(ACTIVE_STANDBY)).execute(LB_ID)
    assert sorted(identities) == ['BACKUP', 'MASTER']
    for issued in identities.values():
        assert 'PRIVATE KEY' not in json.dumps(issued)
        assert b'PRIVATE KEY' in bootstrap.decrypt_server_pem(
            issued['server_pem'])


def test_boot_active_standby_in_zone_and_group(cloud, worker_conf):
    zone = {'compute_zone': 'az-sriov', 'management_network': 'zone-mgmt'}
    amphorae = _boot(cloud, conftest.make_flavor(ACTIVE_STANDBY), zone,
                     group_id='group-1')
    assert [a['role'] for a in amphorae] == ['MASTER', 'BACKUP']
    for server in cloud.compute.created:
        assert server.availability_zone == 'az-sriov'
        assert server.networks == [{'uuid': 'zone-mgmt'}]
        assert server.scheduler_hints == {'group': 'group-1'}
    assert [s.name for s in cloud.compute.created] == [
        f'amphora-{LB_ID}-master', f'amphora-{LB_ID}-backup']


@pytest.mark.parametrize('key, expected', [
    (sriov_flavor.COMPUTE_FLAVOR, 'no compute flavor'),
    (sriov_flavor.AMP_IMAGE_TAG, 'no amphora image tag'),
])
def test_boot_names_the_missing_setting(cloud, worker_conf, key, expected):
    flavor = dict(conftest.make_flavor(), **{key: None})
    with pytest.raises(compute.ComputeError, match=expected):
        _boot(cloud, flavor)
    assert cloud.compute.created == []


def test_boot_without_image_for_the_tag(cloud, worker_conf):
    flavor = dict(conftest.make_flavor(),
                  **{sriov_flavor.AMP_IMAGE_TAG: 'missing'})
    with pytest.raises(compute.ComputeError, match='tag missing'):
        _boot(cloud, flavor)


def test_boot_without_management_network(cloud, worker_conf):
    worker_conf.set_override('amp_boot_network_list', [],
                             group='controller_worker')
    with pytest.raises(amphorae.AmphoraLookupError,
                       match='management network'):
        _boot(cloud, conftest.make_flavor())


def test_boot_revert_deletes_servers_found_by_metadata(cloud, worker_conf):
    flavor = conftest.make_flavor(ACTIVE_STANDBY)
    _boot(cloud, flavor)
    other = cloud.compute.create_server(
        name=f'amphora-{LB_ID}-master', flavor_id=fake_cloud.COMPUTE_FLAVOR,
        metadata={'sriov_octavia_lb': 'another-lb'})
    # A failed execute has no result: the revert must find the servers.
    compute.BootAmphorae(_roles(flavor)).revert(LB_ID, result=None)
    assert list(cloud.compute.servers_by_id) == [other.id]


def test_wait_adds_the_management_address(cloud, worker_conf):
    flavor = conftest.make_flavor()
    booted = _boot(cloud, flavor)
    [amphora] = compute.WaitForAmphorae().execute(
        conftest.make_loadbalancer(), flavor, booted)
    assert amphora['mgmt_ip'].startswith('198.18.0.')
    assert amphora['id'] == booted[0]['id']


def test_wait_fails_on_no_valid_host_with_operator_hint(cloud, worker_conf,
                                                        caplog):
    flavor = conftest.make_flavor()
    booted = _boot(cloud, flavor)
    cloud.compute.build_fault = ('No valid host was found. There are not '
                                 'enough hosts available.')
    with caplog.at_level(logging.ERROR), \
            pytest.raises(compute.ComputeError, match='No valid host'):
        compute.WaitForAmphorae().execute(conftest.make_loadbalancer(),
                                          flavor, booted)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert 'host aggregate' in message
    assert "{'sriov-nic': 'true'}" in message
    assert 'physical network sriovnet' in message


def test_wait_fails_on_other_errors_with_the_fault(cloud, worker_conf):
    flavor = conftest.make_flavor()
    booted = _boot(cloud, flavor)
    cloud.compute.build_fault = 'Build of instance aborted: disk full'
    with pytest.raises(compute.ComputeError, match='disk full'):
        compute.WaitForAmphorae().execute(conftest.make_loadbalancer(),
                                          flavor, booted)


def test_wait_times_out(cloud, worker_conf, monkeypatch):
    flavor = conftest.make_flavor()
    booted = _boot(cloud, flavor)
    monkeypatch.setattr(cloud.compute, 'get_server',
                        lambda server_id: cloud.compute._server(server_id))
    worker_conf.set_override('amp_active_retries', 0,
                             group='controller_worker')
    with pytest.raises(compute.ComputeError, match='timed out'):
        compute.WaitForAmphorae().execute(conftest.make_loadbalancer(),
                                          flavor, booted)


def _active_amphora(cloud):
    flavor = conftest.make_flavor()
    booted = _boot(cloud, flavor)
    return compute.WaitForAmphorae().execute(conftest.make_loadbalancer(),
                                             flavor, booted)


def _vrrp_port(cloud, amphora):
    port = cloud.network.create_port(
        network_id=fake_cloud.VIP_NET, binding_vnic_type='direct',
        fixed_ips=[{'subnet_id': fake_cloud.VIP_SUBNET}])
    return {'id': port.id, 'vnic_type': 'direct', 'amphora_id': amphora['id']}


def test_attach_and_revert(cloud, worker_conf):
    amphorae = _active_amphora(cloud)
    ports = [_vrrp_port(cloud, amphorae[0])]
    task = compute.AttachPorts()
    task.execute(amphorae, ports)
    attached = [i.port_id for i in
                cloud.compute.server_interfaces(amphorae[0]['id'])]
    assert ports[0]['id'] in attached
    task.revert(amphorae, ports, result=None)
    attached = [i.port_id for i in
                cloud.compute.server_interfaces(amphorae[0]['id'])]
    assert ports[0]['id'] not in attached
    assert cloud.network.get_port(ports[0]['id']).device_id == ''


def test_attach_failure_is_logged_with_vf_hint(cloud, worker_conf, caplog):
    amphorae = _active_amphora(cloud)
    ports = [_vrrp_port(cloud, amphorae[0])]
    cloud.compute.attach_error = os_exceptions.BadRequestException(
        'Failed to claim PCI device')
    with caplog.at_level(logging.ERROR), \
            pytest.raises(os_exceptions.BadRequestException):
        compute.AttachPorts().execute(amphorae, ports)
    assert 'free VFs' in caplog.text


def test_detach_of_a_deleted_server_is_done(cloud, worker_conf):
    amphorae = _active_amphora(cloud)
    cloud.compute.delete_server(amphorae[0]['id'])
    compute.detach_port(cloud, amphorae[0]['id'], 'any-port')


def test_delete_amphorae_and_group(cloud, worker_conf):
    flavor = conftest.make_flavor(ACTIVE_STANDBY)
    group_id = compute.CreateServerGroup().execute(LB_ID)
    _boot(cloud, flavor, group_id=group_id)
    compute.DeleteAmphorae().execute(LB_ID)
    assert cloud.compute.servers_by_id == {}
    assert cloud.compute.groups == {}


def test_resumed_tasks_reuse_what_an_interrupted_run_made(
        cloud, worker_conf):
    # A worker that takes over a job runs the interrupted task again.
    flavor = conftest.make_flavor(ACTIVE_STANDBY)
    group_id = compute.CreateServerGroup().execute(LB_ID)
    assert compute.CreateServerGroup().execute(LB_ID) == group_id
    first = _boot(cloud, flavor, group_id=group_id)
    assert _boot(cloud, flavor, group_id=group_id) == first
    assert len(cloud.compute.servers_by_id) == 2
    amphorae = compute.WaitForAmphorae().execute(
        conftest.make_loadbalancer(), flavor, first)
    ports = [_vrrp_port(cloud, amphora) for amphora in amphorae]
    compute.AttachPorts().execute(amphorae, ports)
    compute.AttachPorts().execute(amphorae, ports)
    for amphora in amphorae:
        assert len(cloud.compute.server_interfaces(amphora['id'])) == 2
