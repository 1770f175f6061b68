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

from unittest import mock

import pytest
from taskflow import engines
from taskflow import task

from flows import objects
from flows.tasks import amphora_state
from flows.tasks import lb_state
from flows.tasks import security_group
from flows.tasks import status as status_tasks
from sriov_octavia.worker import jobboard
from tests.unit.flows import conftest

LB = 'lb-1'
BOOM = 'boom'
OBJECTS = ('listener', 'pool', 'member', 'health_monitor', 'l7policy',
           'l7rule')


class Boom(task.Task):
    def execute(self):
        raise RuntimeError(BOOM)


@pytest.fixture
def reporter():
    loadbalancer = {
        'loadbalancer_id': LB,
        'listeners': [{'listener_id': 'l-1', 'default_pool_id': 'p-1',
                       'l7policies': [{'l7policy_id': 'pol-1', 'rules': [
                           {'l7rule_id': 'r-1'}, {'l7rule_id': 'r-2'}]}]}],
        'pools': [{'pool_id': 'p-1', 'members': [{'member_id': 'm-old'},
                                                 {'member_id': 'm-1'}]}]}
    with mock.patch('sriov_octavia.octavia_status.StatusReporter') as cls:
        instance = cls.return_value
        instance.get_loadbalancer.return_value = loadbalancer
        yield instance


@pytest.fixture(autouse=True)
def pushed():
    """The states the flows push to the amphorae (none here)."""
    with mock.patch.object(amphora_state, 'push') as push, \
            mock.patch.object(security_group, 'sync_security_group'), \
            mock.patch('sriov_octavia.clients.connection'), \
            mock.patch('sriov_octavia.amphorae.find_amphorae',
                       return_value=[{'id': 'amp-1'}]):
        yield push


def _updates(reporter):
    return [c.args[0] for c in reporter.update_status.call_args_list]


def _store(object_type):
    objects = {
        'listener': {'listener_id': 'l-1', 'loadbalancer_id': LB},
        'pool': {'pool_id': 'p-1', 'listener_id': 'l-1'},
        'member': {'member_id': 'm-1', 'pool_id': 'p-1'},
        'health_monitor': {'healthmonitor_id': 'hm-1', 'pool_id': 'p-1'},
        'l7policy': {'l7policy_id': 'pol-1', 'listener_id': 'l-1'},
        'l7rule': {'l7rule_id': 'r-1', 'l7policy_id': 'pol-1'},
    }
    return {object_type: objects[object_type], 'loadbalancer_id': LB,
            'flavor': conftest.make_flavor(sriov_vip=False),
            'availability_zone': {}}


def test_flow_names_follow_the_contract():
    expected = {'%s.%s' % (obj, op) for obj in OBJECTS
                for op in ('create', 'update', 'delete')}
    expected.update(('member.batch_update', 'loadbalancer.create',
                     'loadbalancer.update', 'loadbalancer.delete',
                     'loadbalancer.failover', 'amphora.failover'))
    assert jobboard.flow_names() == expected


OBJECT_FLOWS = sorted('%s.%s' % (obj, op) for obj in OBJECTS
                      for op in ('create', 'update', 'delete'))


@pytest.mark.parametrize('sriov_vip', [True, False])
@pytest.mark.parametrize('flow_name', OBJECT_FLOWS)
def test_object_flows_guard_first_and_report_last(flow_name, sriov_vip):
    flow = jobboard.build_flow(flow_name, topology=None, sriov_vip=sriov_vip)
    atoms = list(flow)
    assert flow.name == flow_name
    assert isinstance(atoms[0], status_tasks.ResolveParents)
    final = (status_tasks.MarkDeleted if flow_name.endswith('.delete')
             else status_tasks.MarkActive)
    assert isinstance(atoms[-1], final)
    obj, operation = flow_name.split('.')
    required = {obj, 'loadbalancer_id', 'availability_zone'}
    if operation == 'update':
        required.add('original_' + obj)
    if not sriov_vip or (obj, operation) in objects.MEMBER_PORTS:
        required.add('flavor')
    # Every change reaches the amphorae (haproxy, firewall) once.
    [state] = [atom for atom in atoms
               if isinstance(atom, lb_state.ResolveChangedState)]
    assert state.object_type == obj
    assert state.deleting == (operation == 'delete')
    [push] = [atom for atom in atoms
              if isinstance(atom, amphora_state.PushAmphoraState)]
    assert push.firewall == sriov_vip
    # Only without sriov_vip the Neutron security group follows.
    assert [type(atom) for atom in atoms
            if isinstance(atom, security_group.SyncSecurityGroup)] == (
        [] if sriov_vip else [security_group.SyncSecurityGroup])
    assert flow.requires >= required


@pytest.mark.parametrize('operation', ['create', 'update'])
def test_member_flows_report_member_pool_listener_lb(reporter, operation):
    store = _store('member')
    if operation == 'update':
        # Octavia passes only the changed fields (and the id) as the new
        # object: the pool is found in the original.
        store['original_member'] = store['member']
        store['member'] = {'member_id': 'm-1', 'weight': 5}
    conftest.run_flow(f'member.{operation}', store=store)
    assert _updates(reporter) == [{
        'members': [{'id': 'm-1', 'provisioning_status': 'ACTIVE'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_l7rule_delete_reports_deleted(reporter, pushed):
    conftest.run_flow('l7rule.delete', store=_store('l7rule'))
    state, amphorae, vrrp_ports = pushed.call_args.args
    assert state['listeners'][0]['l7policies'] == [
        {'l7policy_id': 'pol-1', 'rules': [{'l7rule_id': 'r-2'}]}]
    assert _updates(reporter) == [{
        'l7rules': [{'id': 'r-1', 'provisioning_status': 'DELETED'}],
        'l7policies': [{'id': 'pol-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_failing_step_marks_error_and_hands_back_parents(reporter):
    flow = objects.object_flow('health_monitor', 'create', steps=[Boom()])
    with pytest.raises(RuntimeError, match='boom'):
        engines.run(flow, store=_store('health_monitor'))
    assert _updates(reporter) == [{
        'healthmonitors': [{'id': 'hm-1', 'provisioning_status': 'ERROR'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_unreachable_octavia_still_hands_back_the_lb(reporter):
    reporter.get_loadbalancer.side_effect = RuntimeError('no driver-agent')
    store = _store('listener')
    store['original_listener'] = store['listener']
    with pytest.raises(RuntimeError, match='no driver-agent'):
        conftest.run_flow('listener.update', store=store)
    assert _updates(reporter) == [{
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ERROR'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_member_batch_update(reporter):
    store = {'members': [{'member_id': 'm-1', 'pool_id': 'p-1'},
                         {'member_id': 'm-new', 'pool_id': 'p-1'}],
             'pool_id': 'p-1', 'loadbalancer_id': LB,
             'flavor': conftest.make_flavor(sriov_vip=False),
             'availability_zone': {}}
    conftest.run_flow('member.batch_update', store=store)
    assert _updates(reporter) == [{
        'members': [{'id': 'm-1', 'provisioning_status': 'ACTIVE'},
                    {'id': 'm-new', 'provisioning_status': 'ACTIVE'},
                    {'id': 'm-old', 'provisioning_status': 'DELETED'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_member_batch_update_failure_marks_all_its_members_error(reporter):
    reporter.update_status.side_effect = [RuntimeError('socket gone'), None]
    store = {'members': [], 'pool_id': 'p-1', 'loadbalancer_id': LB,
             'flavor': conftest.make_flavor(sriov_vip=False),
             'availability_zone': {}}
    with pytest.raises(RuntimeError, match='socket gone'):
        conftest.run_flow('member.batch_update', store=store)
    # The second report is the revert: both removed members in ERROR.
    assert _updates(reporter)[1]['members'] == [
        {'id': 'm-old', 'provisioning_status': 'ERROR'},
        {'id': 'm-1', 'provisioning_status': 'ERROR'}]
