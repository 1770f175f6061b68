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
"""Host selection of the compute emulator (testbed.nova.scheduler)."""

import pytest

from sriov_octavia_testbed.nova import scheduler


def _host(name, zone='nova', metadata=None, free_vfs=None, instances=0):
    return scheduler.HostState(
        name=name, availability_zone=zone,
        metadata={k: set(v) for k, v in (metadata or {}).items()},
        free_vfs=free_vfs or {}, instance_count=instances)


@pytest.mark.parametrize('value,requirement,matches', [
    ('true', 'true', True),
    ('true', 'false', False),
    ('8', '>= 4', True),
    ('2', '>= 4', False),
    ('4', '= 4', True),
    ('5', '== 4', False),
    ('4', '!= 4', False),
    ('3', '<= 4', True),
    ('x710', '<in> 71', True),
    ('x710', '<in> e810', False),
    ('a b c', '<all-in> a c', True),
    ('a b', '<all-in> a c', False),
    ('b', '<or> a <or> b', True),
    ('c', '<or> a <or> b', False),
    ('abc', 's== abc', True),
    ('abd', 's> abc', True),
    ('abc', 's< abc', False),
    ('many', '>= 4', False),
])
def test_spec_matches(value, requirement, matches):
    assert scheduler.spec_matches(value, requirement) is matches


def test_aggregate_extra_specs_keeps_unscoped_and_own_scope():
    assert scheduler.aggregate_extra_specs({
        'sriov-nic': 'true',
        'aggregate_instance_extra_specs:fast': 'yes',
        'hw:cpu_policy': 'dedicated',
        'trait:CUSTOM_X': 'required',
    }) == {'sriov-nic': 'true', 'fast': 'yes'}


@pytest.mark.parametrize('requested,expected', [
    (None, (None, None)),
    ('', (None, None)),
    ('az1', ('az1', None)),
    ('az1:compute-2', ('az1', 'compute-2')),
    ('nova:compute-2:node', ('nova', 'compute-2')),
    (':compute-2', (None, 'compute-2')),
])
def test_parse_availability_zone(requested, expected):
    assert scheduler.parse_availability_zone(requested) == expected


def test_host_states_zone_and_metadata_from_aggregates():
    aggregates = [
        {'hosts': ['h1', 'h2'], 'metadata': {'sriov-nic': 'true'}},
        {'hosts': ['h2'], 'metadata': {'availability_zone': 'az2',
                                       'sriov-nic': 'false'}},
    ]
    h1, h2, h3 = scheduler.host_states(
        ['h1', 'h2', 'h3'], aggregates, {'h1': {'physnet': 2}}, {'h2': 3})
    assert (h1.availability_zone, h2.availability_zone,
            h3.availability_zone) == ('nova', 'az2', 'nova')
    assert h2.metadata['sriov-nic'] == {'true', 'false'}
    assert h3.metadata == {}
    assert h1.free_vfs == {'physnet': 2} and h3.free_vfs == {}
    assert h2.instance_count == 3


def test_aggregate_filter_needs_every_spec():
    hosts = [_host('h1', metadata={'sriov-nic': ['true']}),
             _host('h2', metadata={'sriov-nic': ['true'], 'fast': ['yes']})]
    spec = scheduler.RequestSpec(extra_specs={
        'sriov-nic': 'true', 'aggregate_instance_extra_specs:fast': 'yes',
        'hw:mem_page_size': 'large'})
    assert scheduler.select_host(spec, hosts).name == 'h2'


def test_any_aggregate_value_may_match():
    hosts = [_host('h1', metadata={'tier': ['gold', 'silver']})]
    spec = scheduler.RequestSpec(extra_specs={'tier': 'silver'})
    assert scheduler.select_host(spec, hosts).name == 'h1'


def test_no_match_raises_no_valid_host_with_the_filter_trail():
    hosts = [_host('h1', metadata={'sriov-nic': ['false']})]
    spec = scheduler.RequestSpec(extra_specs={'sriov-nic': 'true'})
    with pytest.raises(scheduler.NoValidHost) as failure:
        scheduler.select_host(spec, hosts)
    assert str(failure.value) == ('No valid host was found. There are not '
                                  'enough hosts available.')
    assert 'AggregateInstanceExtraSpecsFilter returned 0 host(s)' in \
        failure.value.details


def test_zone_and_forced_host():
    hosts = [_host('h1', zone='az1'), _host('h2', zone='az2'),
             _host('h3', zone='az2')]
    assert scheduler.select_host(
        scheduler.RequestSpec(availability_zone='az2'), hosts).name == 'h2'
    assert scheduler.select_host(
        scheduler.RequestSpec(availability_zone='az2', forced_host='h3'),
        hosts).name == 'h3'
    with pytest.raises(scheduler.NoValidHost):
        scheduler.select_host(
            scheduler.RequestSpec(availability_zone='az1', forced_host='h3'),
            hosts)


def test_anti_affinity_avoids_member_hosts():
    hosts = [_host('h1'), _host('h2'), _host('h3')]
    spec = scheduler.RequestSpec(group_policy='anti-affinity',
                                 group_hosts=['h1', 'h2'])
    assert scheduler.select_host(spec, hosts).name == 'h3'
    spec.group_hosts.append('h3')
    with pytest.raises(scheduler.NoValidHost):
        scheduler.select_host(spec, hosts)


def test_anti_affinity_max_server_per_host():
    hosts = [_host('h1'), _host('h2', instances=5)]
    spec = scheduler.RequestSpec(group_policy='anti-affinity',
                                 group_max_per_host=2, group_hosts=['h1'])
    assert scheduler.select_host(spec, hosts).name == 'h1'


def test_affinity_follows_the_first_member():
    hosts = [_host('h1'), _host('h2', instances=5)]
    spec = scheduler.RequestSpec(group_policy='affinity',
                                 group_hosts=['h2'])
    assert scheduler.select_host(spec, hosts).name == 'h2'
    spec.group_hosts = []
    assert scheduler.select_host(spec, hosts).name == 'h1'


def test_soft_anti_affinity_prefers_but_does_not_require():
    hosts = [_host('h1'), _host('h2', instances=3)]
    spec = scheduler.RequestSpec(group_policy='soft-anti-affinity',
                                 group_hosts=['h1'])
    assert scheduler.select_host(spec, hosts).name == 'h2'
    spec.group_hosts = ['h1', 'h2']
    assert scheduler.select_host(spec, hosts).name == 'h1'


def test_pci_filter_counts_vfs_per_physical_network():
    hosts = [_host('h1', free_vfs={'sriovnet': 1}),
             _host('h2', free_vfs={'sriovnet': 2, 'other': 0},
                   instances=9)]
    spec = scheduler.RequestSpec(pci_requests={'sriovnet': 2})
    assert scheduler.select_host(spec, hosts).name == 'h2'
    spec.pci_requests = {'other': 1}
    with pytest.raises(scheduler.NoValidHost) as failure:
        scheduler.select_host(spec, hosts)
    assert 'PciPassthroughFilter returned 0' in failure.value.details


def test_spreads_by_instance_count_then_inventory_order():
    hosts = [_host('h1', instances=2), _host('h2', instances=1),
             _host('h3', instances=1)]
    assert scheduler.select_host(scheduler.RequestSpec(), hosts).name == \
        'h2'
