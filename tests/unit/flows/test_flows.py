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

import flows
from flows import common
from flows.tasks import firewall
from flows.tasks import status as status_tasks
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
    with mock.patch.object(firewall, 'push_state') as push_state:
        yield push_state


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
    assert set(flows.FLOWS) == expected


@pytest.mark.parametrize('flow_name', sorted(
    name for name in flows.FLOWS if name != 'member.batch_update' and
    name.split('.')[0] in OBJECTS))
def test_object_flows_guard_first_and_report_last(flow_name):
    flow = flows.FLOWS[flow_name]()
    atoms = list(flow)
    assert flow.name == flow_name
    assert isinstance(atoms[0], status_tasks.ResolveParents)
    final = (status_tasks.MarkDeleted if flow_name.endswith('.delete')
             else status_tasks.MarkActive)
    assert isinstance(atoms[-1], final)
    obj, operation = flow_name.split('.')
    required = {obj, 'loadbalancer_id', 'flavor', 'availability_zone'}
    if operation == 'update':
        required.add('original_' + obj)
    # Every change reaches the amphorae (haproxy, firewall).
    [push] = [atom for atom in atoms
              if isinstance(atom, firewall.PushState)]
    assert push.object_type == obj
    assert push.deleting == (operation == 'delete')
    assert flow.requires >= required


def test_member_create_reports_member_pool_listener_lb(reporter):
    engines.run(flows.FLOWS['member.create'](), store=_store('member'))
    assert _updates(reporter) == [{
        'members': [{'id': 'm-1', 'provisioning_status': 'ACTIVE'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_member_update_finds_its_pool_in_the_original(reporter):
    # Octavia passes only the changed fields (and the id) as the new object.
    store = _store('member')
    store['original_member'] = store['member']
    store['member'] = {'member_id': 'm-1', 'weight': 5}
    engines.run(flows.FLOWS['member.update'](), store=store)
    assert _updates(reporter) == [{
        'members': [{'id': 'm-1', 'provisioning_status': 'ACTIVE'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_l7rule_delete_reports_deleted(reporter, pushed):
    engines.run(flows.FLOWS['l7rule.delete'](), store=_store('l7rule'))
    state, zone, flavor = pushed.call_args.args
    assert state['listeners'][0]['l7policies'] == [
        {'l7policy_id': 'pol-1', 'rules': [{'l7rule_id': 'r-2'}]}]
    assert _updates(reporter) == [{
        'l7rules': [{'id': 'r-1', 'provisioning_status': 'DELETED'}],
        'l7policies': [{'id': 'pol-1', 'provisioning_status': 'ACTIVE'}],
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_failing_step_marks_error_and_hands_back_parents(reporter):
    flow = common.object_flow('health_monitor.create', 'health_monitor',
                              steps=[Boom()])
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
        engines.run(flows.FLOWS['listener.update'](), store=store)
    assert _updates(reporter) == [{
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ERROR'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}]}]


def test_member_batch_update(reporter):
    store = {'members': [{'member_id': 'm-1', 'pool_id': 'p-1'},
                         {'member_id': 'm-new', 'pool_id': 'p-1'}],
             'pool_id': 'p-1', 'loadbalancer_id': LB,
             'flavor': conftest.make_flavor(sriov_vip=False),
             'availability_zone': {}}
    engines.run(flows.FLOWS['member.batch_update'](), store=store)
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
        engines.run(flows.FLOWS['member.batch_update'](), store=store)
    # The second report is the revert: both removed members in ERROR.
    assert _updates(reporter)[1]['members'] == [
        {'id': 'm-old', 'provisioning_status': 'ERROR'},
        {'id': 'm-1', 'provisioning_status': 'ERROR'}]
