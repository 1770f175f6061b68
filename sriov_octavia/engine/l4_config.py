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
"""The L4 engine's document: the UDP and SCTP listeners of one amphora.

haproxy proxies neither UDP nor SCTP; the amphora agent balances them with
nftables in its data namespace (NAT to the chosen member, conntrack for
the flows, its own health checks). It takes the whole L4 state of the load
balancer in one JSON document (``PUT /1.0/loadbalancer/<amphora_id>/
<lb_id>/l4``), rendered here from the same provider state haproxy's
configuration is rendered from::

    {"loadbalancer_id", "flow_limit",
     "listeners": [{"id", "protocol", "port", "addresses",
                    "connection_limit",
                    "pool": null | {"id", "algorithm", "persistence",
                                    "members": [...], "monitor"}}]}

What Octavia's objects mean here:

- A listener with ``admin_state_up`` false accepts nothing (the firewall
  opens nothing for it either), so it is left out. It listens on every
  VIP of the load balancer, the additional ones included.
- ``connection_limit`` -1, 0 or unset is no limit of the listener's own
  (the amphora's ``flow_limit`` still bounds all of them).
- A pool with ``admin_state_up`` false keeps its members in the document,
  all disabled: the listener then has no member to send to and drops,
  which is what a disabled pool means, while the members stay known to
  the status the agent reports.
- A health monitor with ``admin_state_up`` false checks nothing: sent as
  null, its members count as available (as haproxy does without
  ``check``). ``max_retries`` is the rise threshold, ``max_retries_down``
  the fall threshold (Octavia's own mapping). Octavia accepts a timeout
  longer than the delay; the agent probes each member once per delay and
  refuses that, so the timeout sent is at most the delay (a probe still
  unanswered when the next is due has failed).

Listeners are sent in (protocol, port) order and members in id order, not
in the order of the state (an updated object moves to its end): the agent
derives its flow marks and hash slots from the order, and both amphorae,
and every push, must derive the same so that a client keeps its member
(SOURCE_IP) across a failover and an unrelated change.
"""

from octavia.common import constants as octavia_consts
from octavia_lib.common import constants as lib_consts

from sriov_octavia import conf as sriov_conf
from sriov_octavia.engine import octavia_models

CONF = sriov_conf.CONF

# The listener protocols the L4 engine serves instead of haproxy.
PROTOCOLS = (lib_consts.PROTOCOL_UDP, lib_consts.PROTOCOL_SCTP)

# A monitor's rise/fall when Octavia left them unset (its API's default
# for max_retries_down).
_DEFAULT_THRESHOLD = octavia_consts.DEFAULT_MAX_RETRIES_DOWN
# What an HTTP monitor checks when Octavia left the fields unset (the
# defaults of Octavia's API); other monitor types ignore them, but the
# document always carries them.
_DEFAULT_HTTP = {
    'http_method': octavia_consts.HEALTH_MONITOR_HTTP_DEFAULT_METHOD,
    'url_path': octavia_consts.HEALTH_MONITOR_DEFAULT_URL_PATH,
    'expected_codes': octavia_consts.HEALTH_MONITOR_DEFAULT_EXPECTED_CODES,
    'http_version': 1.0}


class UnsupportedObject(ValueError):
    """An object of the state the L4 engine cannot express.

    The driver refuses these before a job is posted; this guards the
    jobs posted before it did.
    """


def _enabled(obj):
    # Unset (absent) admin_state_up is Octavia's default: up.
    return obj.get(lib_consts.ADMIN_STATE_UP) is not False


def is_l4(listener):
    """Whether the L4 engine (not haproxy) serves ``listener``."""
    return listener.get(lib_consts.PROTOCOL) in PROTOCOLS


def listeners(state):
    """The state's listeners the L4 engine serves: enabled UDP and SCTP."""
    return [listener for listener in state.get(lib_consts.LISTENERS) or ()
            if listener and is_l4(listener) and _enabled(listener)]


def has_listeners(state):
    """Whether the load balancer has a listener for the L4 engine."""
    return bool(listeners(state))


def empty(loadbalancer_id, conf=CONF):
    """The document of a load balancer without UDP or SCTP listeners.

    The agent removes its L4 table on it, leaving haproxy alone (a
    ``DELETE`` of the load balancer would stop both).
    """
    return {'loadbalancer_id': loadbalancer_id,
            'flow_limit': conf.sriov_amphora.l4_flow_limit,
            'listeners': []}


def _connection_limit(limit):
    return limit if limit is not None and limit > 0 else None


def _persistence(pool):
    persistence = pool.session_persistence
    if persistence is None:
        return None
    if persistence.type != lib_consts.SESSION_PERSISTENCE_SOURCE_IP:
        raise UnsupportedObject(
            f'pool {pool.id}: session_persistence.type: '
            f'{persistence.type} is not possible on a {pool.protocol} '
            f'pool; only SOURCE_IP is')
    return {'type': lib_consts.SESSION_PERSISTENCE_SOURCE_IP,
            'granularity': persistence.persistence_granularity or None}


def _monitor(monitor):
    if monitor is None or not monitor.enabled:
        return None
    document = {
        'type': monitor.type,
        'delay': monitor.delay,
        'timeout': min(monitor.timeout, monitor.delay),
        'rise': monitor.rise_threshold or _DEFAULT_THRESHOLD,
        'fall': monitor.fall_threshold or _DEFAULT_THRESHOLD,
        'domain_name': monitor.domain_name or None,
    }
    for field, default in _DEFAULT_HTTP.items():
        value = getattr(monitor, field)
        document[field] = default if value in (None, '') else value
    return document


def _member(member, pool_enabled):
    return {'id': member.id,
            'address': member.ip_address,
            'port': member.protocol_port,
            'weight': member.weight,
            'backup': bool(member.backup),
            'enabled': bool(pool_enabled and member.enabled),
            'monitor_address': member.monitor_address or None,
            'monitor_port': member.monitor_port or None}


def _pool(pool):
    if pool is None:
        return None
    return {'id': pool.id,
            'algorithm': pool.lb_algorithm,
            'persistence': _persistence(pool),
            'members': [_member(member, pool.enabled) for member in sorted(
                pool.members, key=lambda member: member.id)],
            'monitor': _monitor(pool.health_monitor)}


def _addresses(loadbalancer):
    found = [loadbalancer.vip.ip_address]
    found += [extra.ip_address for extra in loadbalancer.additional_vips
              if extra.ip_address]
    # An address given twice would be one listener key twice.
    return list(dict.fromkeys(found))


def render(state, conf=CONF):
    """The L4 document of ``state`` (the same for every amphora).

    :param state: the load balancer's provider dict after the change, as
        ``haproxy_config.render`` takes it (``listeners``, ``pools`` with
        ``members`` and ``healthmonitor``, ``vip_address`` and
        ``additional_vips``).
    :returns: the document; its ``listeners`` are empty when the load
        balancer has no enabled UDP or SCTP listener.
    :raises UnsupportedObject: a pool of such a listener has a session
        persistence other than SOURCE_IP.
    """
    loadbalancer = octavia_models.load_balancer(
        dict(state, **{lib_consts.LISTENERS: listeners(state)}))
    addresses = _addresses(loadbalancer)
    document = empty(loadbalancer.id, conf)
    for listener in sorted(
            loadbalancer.listeners,
            key=lambda listener: (listener.protocol,
                                  listener.protocol_port, listener.id)):
        document['listeners'].append({
            'id': listener.id,
            'protocol': listener.protocol,
            'port': listener.protocol_port,
            'addresses': list(addresses),
            'connection_limit': _connection_limit(
                listener.connection_limit),
            'pool': _pool(listener.default_pool),
        })
    return document
