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
"""The amphora firewall's desired state, from the load balancer's objects.

The amphora agent takes the whole state of one amphora's firewall in one
body (``POST /1.0/security-group``)::

    {"vip_interfaces": [this amphora's VRRP address],
     "listeners": [{"protocol", "port", "allowed_cidrs"}],
     "vrrp_peers": [the other amphorae's VRRP addresses],
     "members": [{"address", "protocol", "port"}]}

It is computed here from the provider objects as octavia-lib hands them to
the driver and the driver puts them into jobs (``to_dict(recurse=True,
render_unsets=False)``: unset fields are absent, nested objects are dicts).

- Listeners: the load-balancing engine terminates HTTP, HTTPS,
  TERMINATED_HTTPS and PROMETHEUS on TCP; UDP and SCTP are themselves. A
  listener with ``admin_state_up`` false accepts nothing, so it opens
  nothing. No allowed CIDRs means any source, as in Octavia's API.
- Members: the firewall is stateless, so the replies to the engine's own
  connections (traffic to members, health checks) must be let in by their
  source: the member's address and port over the pool's transport, and the
  health monitor's target (``monitor_address``/``monitor_port`` when set)
  over the monitor's transport (PING is ICMP and has no port). Disabled
  members, pools and monitors send nothing and open nothing.
"""

from octavia_lib.common import constants as lib_consts

# Transport of a listener or pool protocol.
_TRANSPORT = {
    lib_consts.PROTOCOL_TCP: 'TCP',
    lib_consts.PROTOCOL_HTTP: 'TCP',
    lib_consts.PROTOCOL_HTTPS: 'TCP',
    lib_consts.PROTOCOL_TERMINATED_HTTPS: 'TCP',
    lib_consts.PROTOCOL_PROMETHEUS: 'TCP',
    lib_consts.PROTOCOL_PROXY: 'TCP',
    lib_consts.PROTOCOL_PROXYV2: 'TCP',
    lib_consts.PROTOCOL_UDP: 'UDP',
    lib_consts.PROTOCOL_SCTP: 'SCTP',
}

# What a health monitor's checks are carried by; None: no port (ICMP).
_MONITOR_TRANSPORT = {
    lib_consts.HEALTH_MONITOR_PING: 'ICMP',
    lib_consts.HEALTH_MONITOR_TCP: 'TCP',
    lib_consts.HEALTH_MONITOR_HTTP: 'TCP',
    lib_consts.HEALTH_MONITOR_HTTPS: 'TCP',
    lib_consts.HEALTH_MONITOR_TLS_HELLO: 'TCP',
    lib_consts.HEALTH_MONITOR_UDP_CONNECT: 'UDP',
    lib_consts.HEALTH_MONITOR_SCTP: 'SCTP',
}


class UnsupportedObject(ValueError):
    """An object this firewall cannot express (unknown protocol/type).

    ``field`` names the object and attribute, e.g.
    ``listener 5e1c...: protocol``.
    """

    def __init__(self, field, reason):
        super().__init__(f'{field}: {reason}')
        self.field = field
        self.reason = reason


def _enabled(obj):
    # Unset (absent) admin_state_up is Octavia's default: up.
    return obj.get('admin_state_up') is not False


def _transport(protocol, kind, obj_id):
    try:
        return _TRANSPORT[protocol]
    except KeyError:
        raise UnsupportedObject(
            field=f'{kind} {obj_id}: protocol',
            reason=f'{protocol!r} is not a protocol the firewall '
                   'knows') from None


def listener_entries(listeners):
    """The ``listeners`` of the body; disabled listeners left out."""
    entries = {}
    for listener in listeners:
        if not _enabled(listener):
            continue
        protocol = _transport(listener.get('protocol'), 'listener',
                              listener.get('listener_id'))
        key = (protocol, listener['protocol_port'])
        cidrs = listener.get('allowed_cidrs') or []
        if key in entries:
            # Two listeners on one port and transport cannot both be up
            # in Octavia; should it happen, the wider one wins.
            previous = entries[key]
            cidrs = [] if not previous or not cidrs else sorted(
                set(previous) | set(cidrs))
        entries[key] = list(cidrs)
    return [{'protocol': protocol, 'port': port, 'allowed_cidrs': cidrs}
            for (protocol, port), cidrs in sorted(entries.items())]


def _pools_of(loadbalancer, listeners, pools):
    """Every pool once.

    Given ``pools`` are all there is (a flow passing the state after its
    change); otherwise the load balancer's pools and the listeners' default
    pools. A pool's id decides what is the same pool; the first copy wins.
    """
    if pools is not None:
        candidates = list(pools)
    else:
        candidates = list(loadbalancer.get('pools') or ())
        candidates += [listener.get('default_pool')
                       for listener in listeners]
    found = {}
    for index, pool in enumerate(candidates):
        if pool:
            found.setdefault(pool.get('pool_id') or f'#{index}', pool)
    return list(found.values())


def member_entries(pools):
    """The ``members`` of the body from pools with members and monitors."""
    entries = set()
    for pool in pools:
        if not _enabled(pool):
            continue
        members = [member for member in pool.get('members') or ()
                   if member and _enabled(member)]
        if not members:
            continue
        protocol = _transport(pool.get('protocol'), 'pool',
                              pool.get('pool_id'))
        monitor = pool.get('healthmonitor')
        monitor_transport = None
        if monitor and _enabled(monitor):
            try:
                monitor_transport = _MONITOR_TRANSPORT[monitor.get('type')]
            except KeyError:
                raise UnsupportedObject(
                    field=f"health monitor {monitor.get('healthmonitor_id')}"
                          ': type',
                    reason=f"{monitor.get('type')!r} is not a monitor type "
                           'the firewall knows') from None
        for member in members:
            entries.add((member['address'], protocol,
                         member['protocol_port']))
            if monitor_transport is None:
                continue
            address = member.get('monitor_address') or member['address']
            if monitor_transport == 'ICMP':
                entries.add((address, 'ICMP', None))
            else:
                entries.add((address, monitor_transport,
                             member.get('monitor_port') or
                             member['protocol_port']))
    result = []
    for address, protocol, port in sorted(
            entries, key=lambda entry: (entry[0], entry[1], entry[2] or 0)):
        entry = {'address': address, 'protocol': protocol}
        if port is not None:
            entry['port'] = port
        result.append(entry)
    return result


def security_group_body(loadbalancer, vrrp_ips, this_vrrp_ip,
                        listeners=None, pools=None):
    """The agent's security-group body for the amphora ``this_vrrp_ip``.

    ``loadbalancer`` is the provider dict of the load balancer; its
    ``listeners`` and ``pools`` are used unless ``listeners`` or ``pools``
    are given (a flow passing the state after the change it applies).
    ``vrrp_ips`` are the VRRP addresses of all the load balancer's amphorae
    (one for SINGLE), ``this_vrrp_ip`` the one of the amphora the body is
    for; the others become its VRRP peers.
    """
    if this_vrrp_ip not in vrrp_ips:
        raise UnsupportedObject(
            field='this_vrrp_ip',
            reason=f'{this_vrrp_ip} is not among the amphorae\'s VRRP '
                   f'addresses {list(vrrp_ips)}')
    if listeners is None:
        listeners = loadbalancer.get('listeners') or []
    listeners = [listener for listener in listeners if listener]
    return {
        'vip_interfaces': [this_vrrp_ip],
        'listeners': listener_entries(listeners),
        'vrrp_peers': sorted({address for address in vrrp_ips
                              if address != this_vrrp_ip}),
        'members': member_entries(_pools_of(loadbalancer, listeners, pools)),
    }
