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
"""Provider dicts -> the octavia.common.data_models objects of one LB.

Upstream's haproxy templater reads Octavia's own data models (a graph of
objects linked both ways); the worker has octavia-lib provider dicts (the
load balancer's state after a change, see flows.tasks.firewall). This
module builds the graph the templater walks: listeners with their default
and L7 redirect pools, pools with members, health monitor and session
persistence, L7 policies in position order with their rules.

Provider dicts leave unset fields out and carry None for "not given"; an
absent ``admin_state_up`` means enabled, as in Octavia's API.
"""

from octavia.common import constants as octavia_consts
from octavia.common import data_models
from octavia_lib.common import constants as lib_consts

# Octavia keeps no status in provider dicts; the templater skips objects in
# PENDING_DELETE, which the state after a change no longer holds anyway.
_PROVISIONED = lib_consts.ACTIVE


# Fields Octavia's models take as the provider dicts hold them, by model
# attribute. TLS secrets are refs in Barbican, as Octavia keeps them.
_LISTENER_FIELDS = {
    'protocol': lib_consts.PROTOCOL,
    'protocol_port': lib_consts.PROTOCOL_PORT,
    'connection_limit': lib_consts.CONNECTION_LIMIT,
    'insert_headers': lib_consts.INSERT_HEADERS,
    'timeout_client_data': lib_consts.TIMEOUT_CLIENT_DATA,
    'timeout_member_connect': lib_consts.TIMEOUT_MEMBER_CONNECT,
    'timeout_member_data': lib_consts.TIMEOUT_MEMBER_DATA,
    'timeout_tcp_inspect': lib_consts.TIMEOUT_TCP_INSPECT,
    'allowed_cidrs': lib_consts.ALLOWED_CIDRS,
    'project_id': lib_consts.PROJECT_ID,
    'tls_certificate_id': lib_consts.DEFAULT_TLS_CONTAINER_REF,
    'client_ca_tls_certificate_id': lib_consts.CLIENT_CA_TLS_CONTAINER_REF,
    'client_authentication': lib_consts.CLIENT_AUTHENTICATION,
    'client_crl_container_id': lib_consts.CLIENT_CRL_CONTAINER_REF,
    'tls_ciphers': lib_consts.TLS_CIPHERS,
    'tls_versions': lib_consts.TLS_VERSIONS,
    'alpn_protocols': lib_consts.ALPN_PROTOCOLS,
    'hsts_max_age': lib_consts.HSTS_MAX_AGE,
    'hsts_include_subdomains': lib_consts.HSTS_INCLUDE_SUBDOMAINS,
    'hsts_preload': lib_consts.HSTS_PRELOAD,
}
# A pool's own TLS towards its members: its client certificate, the CA and
# CRL that check the members'.
_POOL_TLS_FIELDS = {
    'tls_certificate_id': lib_consts.TLS_CONTAINER_REF,
    'ca_tls_certificate_id': lib_consts.CA_TLS_CONTAINER_REF,
    'crl_container_id': lib_consts.CRL_CONTAINER_REF,
    'tls_ciphers': lib_consts.TLS_CIPHERS,
    'tls_versions': lib_consts.TLS_VERSIONS,
    'alpn_protocols': lib_consts.ALPN_PROTOCOLS,
    'project_id': lib_consts.PROJECT_ID,
}


def _copied(provider, fields):
    return {attribute: provider.get(key) for attribute, key in fields.items()}


def _enabled(obj):
    return obj.get(lib_consts.ADMIN_STATE_UP) is not False


def health_monitor(monitor):
    """A provider health monitor dict as Octavia's HealthMonitor.

    The API's max_retries is the rise threshold, max_retries_down the
    fall threshold (Octavia's own mapping).
    """
    return data_models.HealthMonitor(
        id=monitor[lib_consts.HEALTHMONITOR_ID],
        pool_id=monitor.get(lib_consts.POOL_ID),
        type=monitor.get(lib_consts.TYPE),
        delay=monitor.get(lib_consts.DELAY),
        timeout=monitor.get(lib_consts.TIMEOUT),
        rise_threshold=monitor.get(lib_consts.MAX_RETRIES),
        fall_threshold=monitor.get(lib_consts.MAX_RETRIES_DOWN),
        http_method=monitor.get(lib_consts.HTTP_METHOD),
        url_path=monitor.get(lib_consts.URL_PATH),
        expected_codes=monitor.get(lib_consts.EXPECTED_CODES),
        http_version=monitor.get(lib_consts.HTTP_VERSION),
        domain_name=monitor.get(lib_consts.DOMAIN_NAME),
        enabled=_enabled(monitor),
        provisioning_status=_PROVISIONED)


def member(provider_member):
    weight = provider_member.get(lib_consts.WEIGHT)
    return data_models.Member(
        id=provider_member[lib_consts.MEMBER_ID],
        pool_id=provider_member.get(lib_consts.POOL_ID),
        ip_address=provider_member.get(lib_consts.ADDRESS),
        protocol_port=provider_member.get(lib_consts.PROTOCOL_PORT),
        weight=1 if weight is None else weight,
        backup=bool(provider_member.get(lib_consts.BACKUP)),
        subnet_id=provider_member.get(lib_consts.SUBNET_ID),
        monitor_address=provider_member.get(lib_consts.MONITOR_ADDRESS),
        monitor_port=provider_member.get(lib_consts.MONITOR_PORT),
        enabled=_enabled(provider_member),
        provisioning_status=_PROVISIONED)


def _session_persistence(pool_id, persistence):
    if not persistence or not persistence.get(lib_consts.TYPE):
        return None
    return data_models.SessionPersistence(
        pool_id=pool_id, type=persistence[lib_consts.TYPE],
        cookie_name=persistence.get(lib_consts.COOKIE_NAME),
        persistence_timeout=persistence.get(
            lib_consts.PERSISTENCE_TIMEOUT),
        persistence_granularity=persistence.get(
            lib_consts.PERSISTENCE_GRANULARITY))


def pool(provider_pool):
    pool_id = provider_pool[lib_consts.POOL_ID]
    monitor = provider_pool.get(lib_consts.HEALTHMONITOR)
    result = data_models.Pool(
        id=pool_id,
        protocol=provider_pool.get(lib_consts.PROTOCOL),
        lb_algorithm=provider_pool.get(lib_consts.LB_ALGORITHM),
        enabled=_enabled(provider_pool),
        members=[member(m) for m in provider_pool.get(lib_consts.MEMBERS)
                 or ()],
        health_monitor=health_monitor(monitor) if monitor else None,
        session_persistence=_session_persistence(
            pool_id, provider_pool.get(lib_consts.SESSION_PERSISTENCE)),
        tls_enabled=bool(provider_pool.get(lib_consts.TLS_ENABLED)),
        provisioning_status=_PROVISIONED,
        **_copied(provider_pool, _POOL_TLS_FIELDS))
    for child in result.members:
        child.pool = result
    if result.health_monitor:
        result.health_monitor.pool = result
    return result


def l7rule(rule):
    return data_models.L7Rule(
        id=rule[lib_consts.L7RULE_ID],
        l7policy_id=rule.get(lib_consts.L7POLICY_ID),
        type=rule.get(lib_consts.TYPE),
        compare_type=rule.get(lib_consts.COMPARE_TYPE),
        key=rule.get(lib_consts.KEY),
        value=rule.get(lib_consts.VALUE),
        invert=bool(rule.get(lib_consts.INVERT)),
        enabled=_enabled(rule),
        provisioning_status=_PROVISIONED)


def l7policy(policy, pools):
    """An L7 policy; ``pools`` maps pool ids to the Pool objects."""
    result = data_models.L7Policy(
        id=policy[lib_consts.L7POLICY_ID],
        listener_id=policy.get(lib_consts.LISTENER_ID),
        action=policy.get(lib_consts.ACTION),
        redirect_pool_id=policy.get(lib_consts.REDIRECT_POOL_ID),
        redirect_pool=pools.get(policy.get(lib_consts.REDIRECT_POOL_ID)),
        redirect_url=policy.get(lib_consts.REDIRECT_URL),
        redirect_prefix=policy.get(lib_consts.REDIRECT_PREFIX),
        redirect_http_code=policy.get(lib_consts.REDIRECT_HTTP_CODE),
        position=policy.get(lib_consts.POSITION),
        enabled=_enabled(policy),
        l7rules=[l7rule(rule) for rule in policy.get(lib_consts.RULES)
                 or ()],
        provisioning_status=_PROVISIONED)
    for rule in result.l7rules:
        rule.l7policy = result
    return result


def _position(policy):
    # Octavia numbers positions from 1; a policy just created may not have
    # one yet and goes last, as the API puts it.
    position = policy.get(lib_consts.POSITION)
    return position if position is not None else float('inf')


def _default_pool_id(provider_listener, provider_pools):
    pool_id = provider_listener.get(lib_consts.DEFAULT_POOL_ID)
    if pool_id:
        return pool_id
    # A pool created with --listener becomes that listener's default pool in
    # the same API transaction, which a job may see before it commits.
    listener_id = provider_listener[lib_consts.LISTENER_ID]
    for provider_pool in provider_pools:
        if provider_pool.get(lib_consts.LISTENER_ID) == listener_id:
            return provider_pool[lib_consts.POOL_ID]
    return None


def listener(provider_listener, pools, provider_pools):
    """A listener with the pools it uses; ``pools`` maps ids to Pools."""
    default_pool = pools.get(_default_pool_id(provider_listener,
                                              provider_pools))
    policies = [l7policy(policy, pools) for policy in sorted(
        provider_listener.get(lib_consts.L7POLICIES) or (), key=_position)]
    used = [default_pool] if default_pool else []
    # The backends the frontend may switch to: Octavia links a redirect
    # pool to the listener while its policy is enabled and has rules.
    for policy in policies:
        if (policy.action == lib_consts.L7POLICY_ACTION_REDIRECT_TO_POOL and
                policy.enabled and policy.l7rules and policy.redirect_pool
                and policy.redirect_pool not in used):
            used.append(policy.redirect_pool)
    result = data_models.Listener(
        id=provider_listener[lib_consts.LISTENER_ID],
        sni_containers=[
            data_models.SNI(listener_id=provider_listener[
                lib_consts.LISTENER_ID], position=position,
                tls_container_id=ref)
            for position, ref in enumerate(provider_listener.get(
                lib_consts.SNI_CONTAINER_REFS) or ())],
        enabled=_enabled(provider_listener),
        **_copied(provider_listener, _LISTENER_FIELDS),
        default_pool=default_pool,
        default_pool_id=default_pool.id if default_pool else None,
        pools=used,
        l7policies=policies,
        provisioning_status=_PROVISIONED)
    for policy in policies:
        policy.listener = result
    return result


def amphora(amphora_dict, vrrp_ip=None):
    """An amphora as the worker's tasks pass it (see flows.tasks.compute)."""
    return data_models.Amphora(
        id=amphora_dict['id'], compute_id=amphora_dict['id'],
        role=amphora_dict.get('role'), lb_network_ip=amphora_dict.get(
            'mgmt_ip'), vrrp_ip=vrrp_ip,
        status=octavia_consts.AMPHORA_ALLOCATED)


def load_balancer(state, topology=octavia_consts.TOPOLOGY_SINGLE,
                  amphorae=()):
    """The whole Octavia data model graph of a load balancer's state.

    :param state: the load balancer's provider dict with ``listeners`` and
        ``pools`` (pools with ``members`` and ``healthmonitor``); the
        listeners' nested ``default_pool`` copies are not read.
    :param topology: Octavia's topology name for the templater.
    :param amphorae: Amphora objects of the load balancer.
    """
    provider_pools = [p for p in state.get(lib_consts.POOLS) or () if p]
    pools = {p[lib_consts.POOL_ID]: pool(p) for p in provider_pools}
    lb_id = state[lib_consts.LOADBALANCER_ID]
    result = data_models.LoadBalancer(
        id=lb_id, project_id=state.get(lib_consts.PROJECT_ID) or '',
        enabled=_enabled(state), topology=topology,
        vip=data_models.Vip(load_balancer_id=lb_id,
                            ip_address=state[lib_consts.VIP_ADDRESS],
                            subnet_id=state.get(lib_consts.VIP_SUBNET_ID)),
        additional_vips=[
            data_models.AdditionalVip(
                load_balancer_id=lb_id,
                ip_address=extra[octavia_consts.IP_ADDRESS],
                subnet_id=extra.get(lib_consts.SUBNET_ID))
            for extra in state.get(lib_consts.ADDITIONAL_VIPS) or ()],
        pools=list(pools.values()),
        amphorae=list(amphorae),
        provisioning_status=_PROVISIONED)
    result.listeners = [listener(provider_listener, pools, provider_pools)
                        for provider_listener
                        in state.get(lib_consts.LISTENERS) or ()
                        if provider_listener]
    for child in result.listeners:
        child.load_balancer = result
        child.load_balancer_id = lb_id
        for used in child.pools:
            used.listeners.append(child)
    for child in result.pools:
        child.load_balancer = result
        child.load_balancer_id = lb_id
    for child in result.amphorae:
        child.load_balancer = result
        child.load_balancer_id = lb_id
    return result
