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
"""The L4 engine's counters as Prometheus text."""

from amphora_agent import config
from amphora_agent.metrics import l4_metrics


def test_counters_become_families():
    text = l4_metrics.render({
        'listeners': {'l-1': {'flows': 5, 'refused': 1, 'no_member': 0,
                              'active': 2}},
        'members': {'m-1': {'listener': 'l-1', 'flows': 5, 'active': 2,
                            'status': 'UP'}},
        'over_flow_limit': 3, 'unsolicited': 4, 'conntrack_count': 9})

    assert 'octavia_sriov_l4_up 1\n' in text
    assert 'octavia_sriov_l4_listener_flows_total{listener="l-1"} 5' in text
    assert ('octavia_sriov_l4_member_status{state="UP",listener="l-1",'
            'member="m-1"} 1') in text
    assert 'octavia_sriov_l4_over_flow_limit_total 3' in text
    assert 'octavia_sriov_l4_conntrack_flows 9' in text


def test_unreadable_is_up_0():
    assert l4_metrics.render(None, failed=True).endswith(
        'octavia_sriov_l4_up 0\n')


def test_refresh_interval_is_listed():
    names = [opt.name for group, opts in config.list_opts()
             for opt in opts]
    assert 'l4_refresh_interval' in names
