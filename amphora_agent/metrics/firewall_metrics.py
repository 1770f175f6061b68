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
"""The SR-IOV firewall's counters as Prometheus metrics.

A VF bypasses the host: the firewall's nftables counters are the only
record of what reached the amphora and what it refused, so a PROMETHEUS
listener shows them beside haproxy's metrics. Every family starts with
``octavia_sriov_firewall_``; the counters are the kernel's, they restart
from zero when the amphora reboots. ``octavia_sriov_firewall_up`` is 0
when the counters could not be read (then only it is shown).
"""

from amphora_agent.metrics import text_format

PREFIX = 'octavia_sriov_firewall_'
_UNITS = ('packets', 'bytes')
# Firewall.counters() keys of the counters shared by all interfaces, and
# what their accept rules let through.
_SHARED = {
    'vrrp': 'VRRP advertisements from the peer amphorae',
    'members': 'replies of members to the amphora (connections, echo '
               'replies of PING monitors)',
    'essentials': 'ICMP errors, neighbour discovery, MLD queries and DHCP '
                  'replies',
    'fragments': 'non-first IP fragments',
}


def _listener_sort_key(item):
    protocol, _, port = item[0].partition(':')
    return (protocol, int(port) if port.isdigit() else 0, port)


def _listener_families(listeners):
    families = []
    for verdict, meaning in (('accepted', 'from its allowed CIDRs, '
                                          'accepted'),
                             ('dropped', 'from other sources, dropped')):
        for unit in _UNITS:
            family = text_format.Family(
                f'{PREFIX}listener_{verdict}_{unit}_total',
                text_format.COUNTER,
                f'{unit.capitalize()} to a listener\'s port {meaning} on '
                'the VIP interfaces.')
            for key, values in sorted(listeners.items(),
                                      key=_listener_sort_key):
                protocol, _, port = key.partition(':')
                value = values.get(verdict, {}).get(unit)
                if value is not None:
                    family.add(value, protocol=protocol, port=port)
            families.append(family)
    return families


def _interface_families(interfaces):
    families = []
    for unit in _UNITS:
        family = text_format.Family(
            f'{PREFIX}interface_dropped_{unit}_total', text_format.COUNTER,
            f'{unit.capitalize()} dropped on a VF because no rule accepted '
            'them.')
        for ifname, values in sorted(interfaces.items()):
            value = values.get('dropped', {}).get(unit)
            if value is not None:
                family.add(value, interface=ifname)
        families.append(family)
    return families


def _shared_families(counters):
    families = []
    for name, meaning in _SHARED.items():
        accepted = (counters.get(name) or {}).get('accepted')
        if not accepted:
            continue
        for unit in _UNITS:
            families.append(text_format.Family(
                f'{PREFIX}{name}_accepted_{unit}_total', text_format.COUNTER,
                f'{unit.capitalize()} accepted on the VFs: {meaning}.',
                [({}, accepted.get(unit, 0))]))
    return families


def _repair_families(repairs):
    return [
        text_format.Family(
            f'{PREFIX}drift_repairs_total', text_format.COUNTER,
            'Times the nftables table was found changed (by hand?) and '
            'put back as the agent applied it.',
            [({}, repairs.get('count') or 0)]),
        text_format.Family(
            f'{PREFIX}drift_repairs_failed_total', text_format.COUNTER,
            'Repairs of a changed nftables table that left a difference.',
            [({}, repairs.get('failed') or 0)]),
    ]


def families(counters):
    """The families of ``counters`` (Firewall.counters(), or None)."""
    up = text_format.Family(
        f'{PREFIX}up', text_format.GAUGE,
        '1 when the SR-IOV firewall\'s counters could be read, else 0.')
    if counters is None:
        return [up.add(0)]
    return ([up.add(1)] +
            _listener_families(counters.get('listeners') or {}) +
            _interface_families(counters.get('interfaces') or {}) +
            _shared_families(counters) +
            _repair_families(counters.get('repairs') or {}))


def render(counters):
    return text_format.render(families(counters))
