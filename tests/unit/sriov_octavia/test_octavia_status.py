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

from sriov_octavia import octavia_status as status

LB = 'lb-1'


def _loadbalancer():
    return {
        'loadbalancer_id': LB,
        'listeners': [
            {'listener_id': 'l-default', 'default_pool_id': 'p-1',
             'l7policies': []},
            {'listener_id': 'l-redirect', 'default_pool_id': None,
             'l7policies': [{'l7policy_id': 'pol-1',
                             'redirect_pool_id': 'p-1',
                             'admin_state_up': True,
                             'rules': [{'l7rule_id': 'r-1'}]}]},
            {'listener_id': 'l-disabled-policy', 'l7policies': [
                {'l7policy_id': 'pol-2', 'redirect_pool_id': 'p-1',
                 'admin_state_up': False, 'rules': [{'l7rule_id': 'r-2'}]}]},
            {'listener_id': 'l-other', 'default_pool_id': 'p-2'},
        ],
        'pools': [{'pool_id': 'p-1', 'members': [{'member_id': 'm-1'},
                                                 {'member_id': 'm-2'}]},
                  {'pool_id': 'p-2'}],
    }


def test_provisioning_update_nests_objects_and_hands_back_the_lb():
    update = status.provisioning_update(LB, [
        ('listener', 'l-1', 'ACTIVE'), ('member', 'm-1', 'DELETED'),
        ('health_monitor', 'hm-1', 'ERROR'), ('l7policy', 'pol-1', 'ACTIVE'),
        ('l7rule', 'r-1', 'ACTIVE'), ('pool', 'p-1', 'ACTIVE')])
    assert update == {
        'listeners': [{'id': 'l-1', 'provisioning_status': 'ACTIVE'}],
        'members': [{'id': 'm-1', 'provisioning_status': 'DELETED'}],
        'healthmonitors': [{'id': 'hm-1', 'provisioning_status': 'ERROR'}],
        'l7policies': [{'id': 'pol-1', 'provisioning_status': 'ACTIVE'}],
        'l7rules': [{'id': 'r-1', 'provisioning_status': 'ACTIVE'}],
        'pools': [{'id': 'p-1', 'provisioning_status': 'ACTIVE'}],
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ACTIVE'}],
    }


def test_provisioning_update_of_the_lb_itself_is_not_doubled():
    update = status.provisioning_update(
        LB, [('loadbalancer', LB, 'ERROR')])
    assert update == {
        'loadbalancers': [{'id': LB, 'provisioning_status': 'ERROR'}]}


def test_listener_has_no_parent_below_the_lb():
    assert status.locked_parents('listener', {'listener_id': 'l-1'},
                                 _loadbalancer()) == []


def test_member_parents_are_its_pool_and_the_listeners_using_it():
    parents = status.locked_parents('member', {'pool_id': 'p-1'},
                                    _loadbalancer())
    assert parents == [('pool', 'p-1'), ('listener', 'l-default'),
                       ('listener', 'l-redirect')]


def test_health_monitor_parents_like_a_member():
    assert status.locked_parents('health_monitor', {'pool_id': 'p-2'},
                                 _loadbalancer()) == [
        ('pool', 'p-2'), ('listener', 'l-other')]


def test_new_pool_includes_the_listener_it_is_created_for():
    parents = status.locked_parents(
        'pool', {'pool_id': 'p-new', 'listener_id': 'l-other'},
        _loadbalancer())
    assert parents == [('listener', 'l-other')]


def test_l7_parents():
    assert status.locked_parents(
        'l7policy', {'l7policy_id': 'pol-1', 'listener_id': 'l-redirect'},
        _loadbalancer()) == [('listener', 'l-redirect')]
    assert status.locked_parents(
        'l7rule', {'l7rule_id': 'r-1', 'l7policy_id': 'pol-1'},
        _loadbalancer()) == [('l7policy', 'pol-1'),
                             ('listener', 'l-redirect')]


def test_pool_member_ids():
    assert status.pool_member_ids('p-1', _loadbalancer()) == ['m-1', 'm-2']
    assert status.pool_member_ids('p-2', _loadbalancer()) == []
    assert status.pool_member_ids('p-gone', _loadbalancer()) == []
