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
"""The L4 engine's numbers (UDP and SCTP listeners) as Prometheus metrics.

haproxy's exporter knows nothing of the flows nftables balances, so a
PROMETHEUS listener shows them here, every family starting with
``octavia_sriov_l4_``. Totals are the kernel's counters (they restart from
zero when the amphora reboots); active flows are counted in conntrack at
scrape time. ``octavia_sriov_l4_up`` is 0 when they could not be read;
with no L4 document in force only it is shown, at 1.
"""

from amphora_agent.metrics import text_format

PREFIX = 'octavia_sriov_l4_'
_LISTENER_COUNTERS = {
    'flows': 'New flows a UDP or SCTP listener sent to a member.',
    'refused': 'New flows refused by the listener\'s connection_limit.',
    'no_member': 'New flows dropped because no member was available.',
    'bytes_in': 'Bytes of the listener\'s flows from the clients.',
    'bytes_out': 'Bytes of the listener\'s flows back to the clients.',
}
_STATES = ('UP', 'DOWN', 'NO CHECK', 'MAINT')


def _listener_families(listeners):
    families = []
    for kind, meaning in _LISTENER_COUNTERS.items():
        family = text_format.Family(f'{PREFIX}listener_{kind}_total',
                                    text_format.COUNTER, meaning)
        for listener_id, values in sorted(listeners.items()):
            family.add(values.get(kind, 0), listener=listener_id)
        families.append(family)
    active = text_format.Family(
        f'{PREFIX}listener_active_flows', text_format.GAUGE,
        'Flows of a UDP or SCTP listener conntrack holds now.')
    for listener_id, values in sorted(listeners.items()):
        active.add(values.get('active', 0), listener=listener_id)
    return families + [active]


def _member_families(members):
    flows = text_format.Family(
        f'{PREFIX}member_flows_total', text_format.COUNTER,
        'New flows sent to a member.')
    active = text_format.Family(
        f'{PREFIX}member_active_flows', text_format.GAUGE,
        'Flows of a member conntrack holds now.')
    status = text_format.Family(
        f'{PREFIX}member_status', text_format.GAUGE,
        '1 for the state a member is in (UP, DOWN, NO CHECK, MAINT).')
    for member_id, values in sorted(members.items()):
        labels = {'listener': values.get('listener', ''),
                  'member': member_id}
        flows.add(values.get('flows', 0), **labels)
        active.add(values.get('active', 0), **labels)
        for state in _STATES:
            status.add(int(values.get('status') == state), state=state,
                       **labels)
    return [flows, active, status]


def families(counters, failed=False):
    """The families of ``counters`` (L4Engine.counters(), or None)."""
    up = text_format.Family(
        f'{PREFIX}up', text_format.GAUGE,
        '1 when the L4 (UDP and SCTP) engine\'s counters could be read.')
    if failed:
        return [up.add(0)]
    if counters is None:
        return [up.add(1)]
    result = [up.add(1)]
    result += _listener_families(counters.get('listeners') or {})
    result += _member_families(counters.get('members') or {})
    result.append(text_format.Family(
        f'{PREFIX}over_flow_limit_total', text_format.COUNTER,
        'New flows dropped because the amphora held flow_limit flows.',
        [({}, counters.get('over_flow_limit') or 0)]))
    result.append(text_format.Family(
        f'{PREFIX}unsolicited_total', text_format.COUNTER,
        'Packets shaped like a member\'s reply that no flow expected.',
        [({}, counters.get('unsolicited') or 0)]))
    if counters.get('conntrack_count') is not None:
        result.append(text_format.Family(
            f'{PREFIX}conntrack_flows', text_format.GAUGE,
            'Entries in the data namespace\'s conntrack table.',
            [({}, counters['conntrack_count'])]))
    return result


def render(counters, failed=False):
    return text_format.render(families(counters, failed=failed))
