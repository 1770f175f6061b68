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
"""The amphora-sriov provider driver that octavia-api loads.

It validates what octavia-api hands it, creates the VIP port (the address
holder), and turns every other operation into a job for the workers
(``"<object>.<operation>"`` flows), returning at once. octavia-api builds a
new driver object for each request, so nothing is kept between calls.
"""

import ipaddress

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from octavia_lib.api.drivers import provider_base
from octavia_lib.common import constants as lib_consts
from openstack import exceptions as os_exceptions
from oslo_log import log as logging

from sriov_octavia import availability_zone
from sriov_octavia import clients
from sriov_octavia.engine import l4_config
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import octavia_db
from sriov_octavia import provider_secrets
from sriov_octavia import vip
from sriov_octavia.worker import jobboard

LOG = logging.getLogger(__name__)

# haproxy serves TCP, HTTP, HTTPS, TERMINATED_HTTPS and PROMETHEUS, the
# amphora's nftables L4 engine UDP and SCTP (sriov_octavia.engine).
SUPPORTED_LISTENER_PROTOCOLS = (
    lib_consts.PROTOCOL_TCP, lib_consts.PROTOCOL_HTTP,
    lib_consts.PROTOCOL_HTTPS, lib_consts.PROTOCOL_TERMINATED_HTTPS,
    lib_consts.PROTOCOL_PROMETHEUS, lib_consts.PROTOCOL_UDP,
    lib_consts.PROTOCOL_SCTP)
SUPPORTED_POOL_PROTOCOLS = (
    lib_consts.PROTOCOL_TCP, lib_consts.PROTOCOL_HTTP,
    lib_consts.PROTOCOL_HTTPS, lib_consts.PROTOCOL_PROXY,
    lib_consts.PROTOCOL_PROXYV2, lib_consts.PROTOCOL_UDP,
    lib_consts.PROTOCOL_SCTP)
# Pools the L4 engine balances: it hashes, counts and numbers flows, and
# knows no cookies.
L4_POOL_PROTOCOLS = l4_config.PROTOCOLS
SUPPORTED_LB_ALGORITHMS = (
    lib_consts.LB_ALGORITHM_ROUND_ROBIN,
    lib_consts.LB_ALGORITHM_LEAST_CONNECTIONS,
    lib_consts.LB_ALGORITHM_SOURCE_IP)
L7POLICY_LISTENER_PROTOCOLS = (lib_consts.PROTOCOL_HTTP,
                               lib_consts.PROTOCOL_TERMINATED_HTTPS)


def _unsupported(message):
    return lib_exceptions.UnsupportedOptionError(
        user_fault_string=message, operator_fault_string=message)


def _dump(obj):
    # The secrets' contents stay out of the job: the worker reads them
    # from the certificate manager when it pushes them.
    return provider_secrets.without_secret_data(
        obj.to_dict(recurse=True, render_unsets=False))


def _set(value):
    """The value, or None when it is octavia-lib's Unset or empty."""
    return value or None


def _check_protocol(protocol, supported):
    if not protocol or protocol in supported:
        return
    raise _unsupported(f'protocol {protocol}: not supported by the '
                       f'amphora-sriov provider. Supported: '
                       f'{", ".join(supported)}.')


def _check_listener(listener):
    _check_protocol(_set(listener.protocol), SUPPORTED_LISTENER_PROTOCOLS)


# The L4 engine hashes the source from its first byte on.
_MIN_GRANULARITY_PREFIX = 8


def _prefix_length(mask):
    """The number of leading ones of netmask ``mask`` (v4 or v6).

    None when it is no address or has a one after a zero.
    """
    try:
        address = ipaddress.ip_address(mask)
    except ValueError:
        return None
    width = address.max_prefixlen
    inverted = ~int(address) & ((1 << width) - 1)
    # Only trailing zeros: the inverted mask plus one is a power of two.
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


def _check_persistence(persistence, protocol):
    """What the L4 engine can do with a pool's session persistence.

    Octavia's API refuses cookies on UDP/SCTP pools it creates or updates
    by themselves, but not in a load balancer created with its pools.
    """
    if not persistence:
        return
    # A dict in octavia-lib's Pool, not an object.
    granularity = persistence.get(lib_consts.PERSISTENCE_GRANULARITY)
    if granularity:
        prefix = _prefix_length(granularity)
        if prefix is None or prefix < _MIN_GRANULARITY_PREFIX:
            raise _unsupported(
                f'session_persistence.persistence_granularity '
                f'{granularity}: the amphora-sriov provider hashes the '
                f'client address masked by it, so it must be a netmask of '
                f'at least {_MIN_GRANULARITY_PREFIX} leading ones, such as '
                f'255.255.255.0.')
    kind = persistence.get(lib_consts.TYPE)
    if (protocol in L4_POOL_PROTOCOLS and kind and
            kind != lib_consts.SESSION_PERSISTENCE_SOURCE_IP):
        raise _unsupported(
            f'session_persistence.type {kind}: a {protocol} pool keeps a '
            f'client on its member by its address; only '
            f'{lib_consts.SESSION_PERSISTENCE_SOURCE_IP} is supported.')


def _check_pool(pool, original=None):
    """``original``: an update's pool, whose protocol the change lacks."""
    protocol = _set(pool.protocol) or (original and _set(original.protocol))
    _check_protocol(_set(pool.protocol), SUPPORTED_POOL_PROTOCOLS)
    algorithm = _set(pool.lb_algorithm)
    if algorithm and algorithm not in SUPPORTED_LB_ALGORITHMS:
        raise _unsupported(
            f'lb_algorithm {algorithm}: not supported by the amphora-sriov '
            f'provider; supported: {", ".join(SUPPORTED_LB_ALGORITHMS)}.')
    _check_persistence(_set(pool.session_persistence), protocol)


def _check_member(member, flavor):
    if _set(member.vnic_type) != lib_consts.VNIC_TYPE_DIRECT:
        return
    if not flavor[sriov_flavor.ALLOW_MEMBER_SRIOV]:
        message = ('vnic_type direct: the load balancer flavor does not '
                   'allow SR-IOV members (allow_member_sriov is false).')
        raise _unsupported(message)
    if not _set(member.subnet_id):
        message = ('subnet_id: an SR-IOV member (vnic_type direct) needs a '
                   'subnet_id, the subnet its VF is attached to.')
        raise _unsupported(message)
    if not flavor[sriov_flavor.SRIOV_VIP]:
        # Only then do the workers keep the amphora firewall, which must
        # admit the members' replies on their VFs, up to date.
        message = ('vnic_type direct: SR-IOV members need a load balancer '
                   'flavor with sriov_vip as well as allow_member_sriov.')
        raise _unsupported(message)


def _vip_families(loadbalancer):
    """The IP versions of the load balancer's VIPs, additional ones too."""
    # octavia-lib's LoadBalancer holds the additional VIPs as dicts.
    addresses = [_set(loadbalancer.vip_address)]
    addresses += [extra.get('ip_address')
                  for extra in _set(loadbalancer.additional_vips) or ()]
    return {ipaddress.ip_address(address).version
            for address in addresses if address}


def _check_l4_member_families(loadbalancer, pool, members):
    """Members of a UDP/SCTP pool must share an IP version with a VIP.

    The L4 engine translates the flow's destination to the member and
    cannot change its IP version, as haproxy's proxies can; the amphora
    agent would refuse the whole L4 document, and every change of the load
    balancer after it, for one such member.
    """
    protocol = _set(pool.protocol)
    if protocol not in L4_POOL_PROTOCOLS:
        return
    families = _vip_families(loadbalancer)
    for member in members:
        address = _set(member.address)
        if not address or not families:
            continue
        version = ipaddress.ip_address(address).version
        if version not in families:
            raise _unsupported(
                f'address {address}: a member of a {protocol} pool is '
                f'reached at its own IP version, and this load balancer '
                f'has no IPv{version} VIP.')


def _check_l7policy_listener(listener_id, protocol):
    if protocol not in L7POLICY_LISTENER_PROTOCOLS:
        raise _unsupported(
            f'listener_id {listener_id}: L7 policies need an HTTP listener; '
            f'this one is {protocol}.')


def _check_vip_sg_ids(loadbalancer, flavor):
    if flavor[sriov_flavor.SRIOV_VIP] and _set(loadbalancer.vip_sg_ids):
        message = ('vip_sg_ids: Neutron security groups do not apply to '
                   'SR-IOV VIP ports; use listener allowed_cidrs.')
        raise _unsupported(message)


def _connection():
    try:
        return clients.connection()
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as e:
        message = ('The amphora-sriov provider cannot reach its cloud; '
                   'check [service_auth] and the [neutron], [nova] and '
                   '[glance] sections of octavia.conf')
        raise lib_exceptions.DriverError(
            user_fault_string=message, operator_fault_string=f'{message}: {e}')


def _release_vip_port(loadbalancer):
    try:
        conn = clients.connection()
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as e:
        LOG.error('Could not delete VIP port %s of refused load balancer %s; '
                  'delete it by hand: %s', loadbalancer.vip_port_id,
                  loadbalancer.loadbalancer_id, e)
        return
    vip.delete_vip_port(conn, loadbalancer.loadbalancer_id,
                        loadbalancer.vip_port_id)


def _post(flow_name, loadbalancer_id, flavor, zone, **objects):
    """Post the job for flow_name and return without waiting for it."""
    if flow_name not in jobboard.flow_names():
        message = (f'{flow_name} is not implemented by the amphora-sriov '
                   f'provider yet.')
        raise lib_exceptions.NotImplementedError(
            user_fault_string=message, operator_fault_string=message)
    store = dict(objects, loadbalancer_id=loadbalancer_id,
                 flavor=sriov_flavor.with_defaults(flavor),
                 availability_zone=zone or {})
    try:
        job_id = jobboard.post_job(flow_name, store)
    except Exception as e:
        LOG.exception('Posting %s for load balancer %s failed', flow_name,
                      loadbalancer_id)
        raise lib_exceptions.DriverError(
            user_fault_string='The amphora-sriov provider could not queue '
                              'the request for its workers; try again later.',
            operator_fault_string=f'Posting {flow_name} for load balancer '
                                  f'{loadbalancer_id} failed: {e}')
    LOG.info('Posted %s for load balancer %s as job %s', flow_name,
             loadbalancer_id, job_id)


def _post_for(flow_name, loadbalancer_id, **objects):
    """Post with the flavor and zone of an existing load balancer."""
    flavor, zone = octavia_db.load_balancer_flavor_and_zone(loadbalancer_id)
    _post(flow_name, loadbalancer_id, flavor, zone, **objects)


class AmphoraSriovProviderDriver(provider_base.ProviderDriver):

    # Load balancer
    def create_vip_port(self, loadbalancer_id, project_id, vip_dictionary,
                        additional_vip_dicts):
        return vip.create_vip_port(_connection(), loadbalancer_id,
                                   project_id, vip_dictionary,
                                   additional_vip_dicts)

    def loadbalancer_create(self, loadbalancer):
        try:
            flavor = sriov_flavor.with_defaults(_set(loadbalancer.flavor))
            _check_vip_sg_ids(loadbalancer, flavor)
            for listener in _set(loadbalancer.listeners) or []:
                _check_listener(listener)
                if _set(listener.l7policies):
                    _check_l7policy_listener(listener.listener_id,
                                             listener.protocol)
            for pool in _set(loadbalancer.pools) or []:
                _check_pool(pool)
                for member in _set(pool.members) or []:
                    _check_member(member, flavor)
                _check_l4_member_families(loadbalancer, pool,
                                          _set(pool.members) or [])
            _post('loadbalancer.create', loadbalancer.loadbalancer_id,
                  flavor, _set(loadbalancer.availability_zone),
                  loadbalancer=_dump(loadbalancer))
        except Exception:
            # octavia-api rolls the load balancer back, but the VIP port
            # made by create_vip_port would stay behind in Neutron.
            if _set(loadbalancer.vip_port_id):
                _release_vip_port(loadbalancer)
            raise

    def loadbalancer_update(self, old_loadbalancer, new_loadbalancer):
        lb_id = old_loadbalancer.loadbalancer_id
        flavor, zone = octavia_db.load_balancer_flavor_and_zone(lb_id)
        _check_vip_sg_ids(new_loadbalancer,
                          sriov_flavor.with_defaults(flavor))
        _post('loadbalancer.update', lb_id, flavor, zone,
              loadbalancer=_dump(new_loadbalancer),
              original_loadbalancer=_dump(old_loadbalancer))

    def loadbalancer_delete(self, loadbalancer, cascade=False):
        _post_for('loadbalancer.delete', loadbalancer.loadbalancer_id,
                  loadbalancer=_dump(loadbalancer), cascade=bool(cascade))

    def loadbalancer_failover(self, loadbalancer_id):
        _post_for('loadbalancer.failover', loadbalancer_id,
                  loadbalancer=_dump(
                      octavia_db.provider_load_balancer(loadbalancer_id)))

    # Listener
    def listener_create(self, listener):
        _check_listener(listener)
        _post_for('listener.create', listener.loadbalancer_id,
                  listener=_dump(listener))

    def listener_update(self, old_listener, new_listener):
        _check_listener(new_listener)
        _post_for('listener.update', old_listener.loadbalancer_id,
                  listener=_dump(new_listener),
                  original_listener=_dump(old_listener))

    def listener_delete(self, listener):
        _post_for('listener.delete', listener.loadbalancer_id,
                  listener=_dump(listener))

    # Pool
    def pool_create(self, pool):
        _check_pool(pool)
        _post_for('pool.create', pool.loadbalancer_id, pool=_dump(pool))

    def pool_update(self, old_pool, new_pool):
        _check_pool(new_pool, original=old_pool)
        _post_for('pool.update', old_pool.loadbalancer_id,
                  pool=_dump(new_pool), original_pool=_dump(old_pool))

    def pool_delete(self, pool):
        _post_for('pool.delete', pool.loadbalancer_id, pool=_dump(pool))

    # Member
    def _member_job(self, flow_name, parent_pool_id, checked, **objects):
        lb_id = octavia_db.pool_load_balancer_id(parent_pool_id)
        flavor, zone = octavia_db.load_balancer_flavor_and_zone(lb_id)
        full_flavor = sriov_flavor.with_defaults(flavor)
        for member in checked:
            _check_member(member, full_flavor)
        if any(_set(member.address) for member in checked):
            # An update cannot change the address; a create or batch can.
            loadbalancer = octavia_db.provider_load_balancer(lb_id)
            for pool in _set(loadbalancer.pools) or []:
                if pool.pool_id == parent_pool_id:
                    _check_l4_member_families(loadbalancer, pool, checked)
        _post(flow_name, lb_id, flavor, zone, **objects)

    def member_create(self, member):
        self._member_job('member.create', member.pool_id, [member],
                         member=_dump(member))

    def member_update(self, old_member, new_member):
        self._member_job('member.update', old_member.pool_id, [new_member],
                         member=_dump(new_member),
                         original_member=_dump(old_member))

    def member_delete(self, member):
        self._member_job('member.delete', member.pool_id, [],
                         member=_dump(member))

    def member_batch_update(self, pool_id, members):
        self._member_job('member.batch_update', pool_id, members,
                         pool_id=pool_id,
                         members=[_dump(member) for member in members])

    # Health monitor
    def health_monitor_create(self, healthmonitor):
        _post_for('health_monitor.create',
                  octavia_db.pool_load_balancer_id(healthmonitor.pool_id),
                  health_monitor=_dump(healthmonitor))

    def health_monitor_update(self, old_healthmonitor, new_healthmonitor):
        _post_for('health_monitor.update',
                  octavia_db.pool_load_balancer_id(old_healthmonitor.pool_id),
                  health_monitor=_dump(new_healthmonitor),
                  original_health_monitor=_dump(old_healthmonitor))

    def health_monitor_delete(self, healthmonitor):
        _post_for('health_monitor.delete',
                  octavia_db.pool_load_balancer_id(healthmonitor.pool_id),
                  health_monitor=_dump(healthmonitor))

    # L7 policy
    def l7policy_create(self, l7policy):
        lb_id, protocol = octavia_db.listener_load_balancer_id_and_protocol(
            l7policy.listener_id)
        _check_l7policy_listener(l7policy.listener_id, protocol)
        _post_for('l7policy.create', lb_id, l7policy=_dump(l7policy))

    def l7policy_update(self, old_l7policy, new_l7policy):
        lb_id, _protocol = (
            octavia_db.listener_load_balancer_id_and_protocol(
                old_l7policy.listener_id))
        _post_for('l7policy.update', lb_id, l7policy=_dump(new_l7policy),
                  original_l7policy=_dump(old_l7policy))

    def l7policy_delete(self, l7policy):
        lb_id, _protocol = (
            octavia_db.listener_load_balancer_id_and_protocol(
                l7policy.listener_id))
        _post_for('l7policy.delete', lb_id, l7policy=_dump(l7policy))

    # L7 rule
    def l7rule_create(self, l7rule):
        _post_for('l7rule.create',
                  octavia_db.l7policy_load_balancer_id(l7rule.l7policy_id),
                  l7rule=_dump(l7rule))

    def l7rule_update(self, old_l7rule, new_l7rule):
        _post_for('l7rule.update',
                  octavia_db.l7policy_load_balancer_id(old_l7rule.l7policy_id),
                  l7rule=_dump(new_l7rule),
                  original_l7rule=_dump(old_l7rule))

    def l7rule_delete(self, l7rule):
        _post_for('l7rule.delete',
                  octavia_db.l7policy_load_balancer_id(l7rule.l7policy_id),
                  l7rule=_dump(l7rule))

    # Flavor
    def get_supported_flavor_metadata(self):
        return sriov_flavor.supported_metadata()

    def validate_flavor(self, flavor_metadata):
        sriov_flavor.validate(flavor_metadata)

    # Availability zone
    def get_supported_availability_zone_metadata(self):
        return availability_zone.supported_metadata()

    def validate_availability_zone(self, availability_zone_metadata):
        availability_zone.validate(availability_zone_metadata)
