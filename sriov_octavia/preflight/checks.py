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
"""The individual checks of ``sriov-octavia-status``.

Each check takes the command object (``.conf``; preflight ones also
``.target``) and returns an oslo.upgradecheck Result whose details say what
was found and what to change.
"""

import json
import os
import socket
import ssl

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
from oslo_upgradecheck import upgradecheck
import redis
from redis import sentinel
import sqlalchemy

from sriov_octavia import clients
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import metadata
from sriov_octavia import naming
from sriov_octavia.preflight import placement

PROVIDER = naming.PROVIDER
NIC_SWITCH_AGENT = 'NIC Switch agent'
_TIMEOUT = 5.0
_CLOUD_ERRORS = (os_exceptions.SDKException, ks_exceptions.ClientException)

Code = upgradecheck.Code
Result = upgradecheck.Result


def _text(error):
    # Messages of the libraries end with a period already.
    return str(error).rstrip('.')


def _success(details):
    return Result(Code.SUCCESS, details)


def _warning(details):
    return Result(Code.WARNING, details)


def _failure(details):
    return Result(Code.FAILURE, details)


class Target:
    """What preflight checks: the flavor's settings and the networks.

    Reads the ``preflight`` command line; each value is looked up once and
    kept, because several checks need the same resources.
    """

    def __init__(self, conf):
        self.conf = conf
        self.args = conf.command
        self._profile = None
        # (compute flavor, (extra specs, eligible hosts)) once looked up.
        self.placement = None

    def connection(self):
        return clients.connection(self.conf)

    def profile(self):
        """``(name, provider, flavor_data dict)`` or None when none given.

        :raises LookupError: the flavor or profile does not exist.
        :raises ValueError: its flavor_data is not JSON.
        """
        if self._profile is None and (self.args.flavor
                                      or self.args.flavor_profile):
            lb = self.connection().load_balancer
            profile_id = self.args.flavor_profile
            if self.args.flavor:
                found = lb.find_flavor(self.args.flavor)
                if found is None:
                    raise LookupError(
                        f'no Octavia flavor {self.args.flavor!r}: see '
                        f'"openstack loadbalancer flavor list"')
                profile_id = found.flavor_profile_id
            profile = lb.find_flavor_profile(profile_id)
            if profile is None:
                raise LookupError(
                    f'no Octavia flavor profile {profile_id!r}: see '
                    f'"openstack loadbalancer flavorprofile list"')
            data = profile.flavor_data or '{}'
            try:
                data = json.loads(data) if isinstance(data, str) else data
            except ValueError as e:
                raise ValueError(f'flavor profile {profile.name}: '
                                 f'flavor_data is not JSON: {e}')
            self._profile = (profile.name, profile.provider_name, data)
        return self._profile

    def _profile_value(self, key):
        try:
            profile = self.profile()
        except (LookupError, ValueError) + _CLOUD_ERRORS:
            # The flavor profile check reports why.
            return None
        return profile[2].get(key) if profile else None

    def compute_flavor(self):
        return (self.args.compute_flavor
                or self._profile_value(sriov_flavor.COMPUTE_FLAVOR)
                or self.conf.controller_worker.amp_flavor_id or None)

    def image_tag(self):
        return (self.args.image_tag
                or self._profile_value(sriov_flavor.AMP_IMAGE_TAG)
                or self.conf.controller_worker.amp_image_tag or None)

    def networks(self):
        """``[(role, name or id)]`` of the networks that need VFs."""
        found = []
        if self.args.vip_network:
            found.append(('VIP', self.args.vip_network))
        found += [('member', name) for name in self.args.member_network]
        return found


# Configuration checks ------------------------------------------------------

def _enabled_providers(conf):
    """Names of ``[api_settings] enabled_provider_drivers``."""
    value = conf.api_settings.enabled_provider_drivers
    if isinstance(value, dict):
        return set(value)
    return {item.split(':', 1)[0].strip()
            for item in (value or '').split(',') if item.strip()}


def provider_enabled(cmd):
    if PROVIDER in _enabled_providers(cmd.conf):
        return _success(f'{PROVIDER} is in [api_settings] '
                        'enabled_provider_drivers')
    return _failure(
        f'{PROVIDER} is not in [api_settings] enabled_provider_drivers of '
        f'octavia.conf, so octavia-api refuses flavors and load balancers '
        f'of this provider. Add "{PROVIDER}:<description>" to it and '
        f'restart octavia-api.')


def provider_agent_enabled(cmd):
    if PROVIDER in (cmd.conf.driver_agent.enabled_provider_agents or []):
        return _success(f'{PROVIDER} runs inside octavia-driver-agent')
    return _warning(
        f'{PROVIDER} is not in [driver_agent] enabled_provider_agents: no '
        f'worker runs inside octavia-driver-agent. Add it there, or make '
        f'sure sriov-octavia-worker runs on some controller; without a '
        f'worker every load balancer stays PENDING_CREATE.')


def _read_check(option, path):
    if not path:
        return f'{option} is not set'
    if not os.path.exists(path):
        return f'{option} = {path}: no such file'
    if not os.access(path, os.R_OK):
        return f'{option} = {path}: not readable by this user'
    return None


def certificates(cmd):
    """The files the worker uses to talk mutual TLS with the agents."""
    group = cmd.conf.haproxy_amphora
    problems = []
    for option, path, load in (
            ('[haproxy_amphora] client_cert', group.client_cert,
             lambda ctx, path: ctx.load_cert_chain(path)),
            ('[haproxy_amphora] server_ca', group.server_ca,
             lambda ctx, path: ctx.load_verify_locations(cafile=path))):
        problem = _read_check(option, path)
        if problem is None:
            try:
                load(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), path)
            except (ssl.SSLError, OSError) as e:
                problem = f'{option} = {path}: not a usable PEM file ({e})'
        if problem:
            problems.append(problem)
    if problems:
        return _failure(
            '; '.join(problems) + '. The worker cannot reach any amphora '
            'agent without them: client_cert must hold the controller '
            'certificate followed by its key, server_ca the CA that signed '
            'the agents\' certificates, both readable by the octavia user.')
    return _success(f'{group.client_cert} and {group.server_ca} load')


def _redis_client(group):
    kwargs = {'username': group.jobboard_backend_username,
              'password': group.jobboard_backend_password,
              'db': group.jobboard_redis_backend_db,
              'socket_timeout': _TIMEOUT,
              'socket_connect_timeout': _TIMEOUT}
    if group.jobboard_redis_sentinel:
        sentinels = sentinel.Sentinel(
            [(host, group.jobboard_backend_port)
             for host in group.jobboard_backend_hosts],
            socket_timeout=_TIMEOUT)
        return sentinels.master_for(group.jobboard_redis_sentinel, **kwargs)
    return redis.Redis(host=group.jobboard_backend_hosts[0],
                       port=group.jobboard_backend_port, **kwargs)


def jobboard(cmd):
    group = cmd.conf.task_flow
    hosts = group.jobboard_backend_hosts
    where = f'{",".join(hosts)} port {group.jobboard_backend_port}'
    if not hosts:
        return _failure('[task_flow] jobboard_backend_hosts is empty; '
                        'name the jobboard hosts.')
    try:
        if group.jobboard_backend_driver == 'redis_taskflow_driver':
            client = _redis_client(group)
            try:
                client.ping()
            finally:
                client.close()
        else:
            for host in hosts:
                socket.create_connection(
                    (host, group.jobboard_backend_port), _TIMEOUT).close()
    except (redis.RedisError, OSError) as e:
        return _failure(
            f'{group.jobboard_backend_driver} at {where} does not answer: '
            f'{_text(e)}. The driver cannot post jobs and no worker runs '
            f'them: check that the service runs and listens there, and '
            f'[task_flow] jobboard_backend_hosts, jobboard_backend_port, '
            f'jobboard_backend_password.')
    return _success(f'{group.jobboard_backend_driver} at {where} answers')


def persistence(cmd):
    url = cmd.conf.task_flow.persistence_connection
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text('SELECT 1'))
        finally:
            engine.dispose()
    except Exception as e:
        # Any driver's error: show it, the URL itself may hold a password.
        return _failure(
            f'[task_flow] persistence_connection cannot be opened '
            f'({type(e).__name__}: {str(e).splitlines()[0]}). Workers '
            f'cannot save flow progress: check the URL, that the database '
            f'(or the SQLite file\'s directory) exists and is writable by '
            f'the octavia user.')
    return _success('the flow persistence database opens')


# Cloud checks --------------------------------------------------------------

# Where octavia.conf says how to reach each service.
_ENDPOINTS = {
    'octavia': 'the Keystone catalog, or [api_settings] api_base_uri with '
               'auth_type none',
    'neutron': '[neutron]',
    'nova': '[nova]',
    'glance': '[glance]',
}


def _cloud_failure(what, error, service):
    return _failure(
        f'could not ask the cloud about {what}: {_text(error)}. Check the '
        f'credentials in [service_auth] of octavia.conf, the endpoint '
        f'({_ENDPOINTS[service]}) and that the service answers.')


def flavor_profile(cmd):
    try:
        profile = cmd.target.profile()
    except (LookupError, ValueError) as e:
        return _failure(str(e))
    except _CLOUD_ERRORS as e:
        return _cloud_failure('the Octavia flavor', e, 'octavia')
    if profile is None:
        return _success('no --flavor or --flavor-profile given: the compute '
                        'flavor and image tag come from the command line '
                        'or octavia.conf')
    name, provider, data = profile
    if provider != PROVIDER:
        return _failure(
            f'flavor profile {name} is for provider {provider}, not '
            f'{PROVIDER}: create one with "openstack loadbalancer '
            f'flavorprofile create --provider {PROVIDER} ...".')
    try:
        metadata.check_schema(sriov_flavor.SCHEMA, data, 'flavor metadata')
    except lib_exceptions.UnsupportedOptionError as e:
        return _failure(f'flavor profile {name}: {e.operator_fault_string}')
    sriov = [key for key in (sriov_flavor.SRIOV_VIP,
                             sriov_flavor.ALLOW_MEMBER_SRIOV)
             if data.get(key)]
    if not sriov:
        return _warning(
            f'flavor profile {name} sets neither sriov_vip nor '
            f'allow_member_sriov: its load balancers use no VF. Set '
            f'"sriov_vip": true in its flavor data for an SR-IOV VIP.')
    return _success(f'flavor profile {name} is valid; it enables '
                    f'{" and ".join(sriov)}')


def _find_compute_flavor(conn, name_or_id):
    try:
        return conn.compute.get_flavor(name_or_id)
    except os_exceptions.NotFoundException:
        return conn.compute.find_flavor(name_or_id, ignore_missing=True)


def _placement(cmd):
    """``(flavor, eligible hosts)``; hosts None when the flavor is absent."""
    if cmd.target.placement is not None:
        return cmd.target.placement
    name = cmd.target.compute_flavor()
    if not name:
        return None, None
    conn = cmd.target.connection()
    flavor = _find_compute_flavor(conn, name)
    if flavor is None:
        return None, None
    specs = flavor.extra_specs
    if specs is None:
        specs = conn.compute.fetch_flavor_extra_specs(flavor).extra_specs
    cmd.target.placement = flavor, (specs, placement.eligible_hosts(
        specs, conn.compute.aggregates()))
    return cmd.target.placement


def compute_flavor_placement(cmd):
    name = cmd.target.compute_flavor()
    if not name:
        return _failure(
            'no compute flavor: give one in the flavor profile '
            '("compute_flavor"), in [controller_worker] amp_flavor_id or '
            'with --compute-flavor.')
    try:
        flavor, found = _placement(cmd)
    except _CLOUD_ERRORS as e:
        return _cloud_failure(f'compute flavor {name}', e, 'nova')
    if flavor is None:
        return _failure(
            f'compute flavor {name} does not exist (or is private to a '
            f'project the configured cloud is not in). Create it in the '
            f'Octavia service project with "openstack flavor create", or '
            f'fix compute_flavor.')
    specs, hosts = found
    relevant = placement.relevant_specs(specs)
    if not relevant:
        return _warning(
            f'compute flavor {flavor.name} has no extra specs that host '
            f'aggregates match, so Nova may place amphorae on hosts without '
            f'VFs. Give it the property of your SR-IOV aggregate, e.g. '
            f'"openstack flavor set --property sriov-nic=true '
            f'{flavor.name}".')
    if not hosts:
        wanted = ' '.join(f'--property {key}={value}'
                          for key, value in sorted(relevant.items()))
        return _failure(
            f'compute flavor {flavor.name} asks for {relevant}, which no '
            f'host aggregate with hosts provides, so every amphora boot '
            f'fails with "No valid host". Run "openstack aggregate set '
            f'{wanted} <aggregate>" on the aggregate of your SR-IOV hosts '
            f'and "openstack aggregate add host <aggregate> <host>", or fix '
            f'the flavor\'s properties.')
    return _success(f'compute flavor {flavor.name} places amphorae on '
                    f'{", ".join(hosts)}')


def _sriov_agents(conn):
    """``{physnet: [host of an alive NIC Switch agent, ...]}``."""
    hosts = {}
    for agent in conn.network.agents(agent_type=NIC_SWITCH_AGENT):
        if not agent.is_alive or not agent.is_admin_state_up:
            continue
        mappings = (agent.configuration or {}).get('device_mappings') or {}
        for physnet, devices in mappings.items():
            if devices:
                hosts.setdefault(physnet, []).append(agent.host)
    return hosts


def sriov_capacity(cmd):
    networks = cmd.target.networks()
    if not networks:
        return _warning('no --vip-network or --member-network given, so '
                        'no network was checked for VFs.')
    try:
        conn = cmd.target.connection()
        agents = _sriov_agents(conn)
        _, found = _placement(cmd)
    except _CLOUD_ERRORS as e:
        return _cloud_failure('networks and agents', e, 'neutron')
    # Hosts the compute flavor reaches; the placement check reports a
    # flavor that reaches none, so only a partial miss is reported here.
    eligible = set(found[1]) if found and found[1] else None
    problems = []
    good = []
    for role, name in networks:
        try:
            network = conn.network.find_network(name, ignore_missing=True)
        except _CLOUD_ERRORS as e:
            return _cloud_failure(f'network {name}', e, 'neutron')
        if network is None:
            problems.append(f'{role} network {name} does not exist')
            continue
        physnet = network.provider_physical_network
        if not physnet:
            problems.append(
                f'{role} network {network.name} has no physical network '
                f'(type {network.provider_network_type}): VFs exist only on '
                f'flat or VLAN provider networks; use one')
            continue
        hosts = sorted(set(agents.get(physnet, ())))
        if not hosts:
            problems.append(
                f'{role} network {network.name} is on physical network '
                f'{physnet}, for which no alive "{NIC_SWITCH_AGENT}" '
                f'reports device_mappings, so Neutron cannot bind direct '
                f'ports there: on the SR-IOV hosts map {physnet} to a PF in '
                f'[sriov_nic] physical_device_mappings of the '
                f'neutron-sriov-nic-agent and tag the PF with '
                f'"physical_network": "{physnet}" in Nova\'s [pci] '
                f'device_spec')
            continue
        if eligible is not None and not eligible & set(hosts):
            problems.append(
                f'{role} network {network.name} ({physnet}) has VFs on '
                f'{", ".join(hosts)}, none of which the compute flavor '
                f'places amphorae on ({", ".join(sorted(eligible))}): add '
                f'those hosts to the SR-IOV aggregate')
            continue
        good.append(f'{role} network {network.name} ({physnet}) on '
                    f'{", ".join(hosts)}')
    if problems:
        return _failure('; '.join(problems) + '.')
    return _success('VFs: ' + '; '.join(good))


def amphora_image(cmd):
    tag = cmd.target.image_tag()
    if not tag:
        return _failure('no amphora image tag: set "amp_image_tag" in the '
                        'flavor profile or [controller_worker] '
                        'amp_image_tag, or pass --image-tag.')
    owner = cmd.conf.controller_worker.amp_image_owner_id or None
    try:
        query = {'tag': tag}
        if owner:
            query['owner'] = owner
        images = list(cmd.target.connection().image.images(**query))
    except _CLOUD_ERRORS as e:
        return _cloud_failure(f'images tagged {tag}', e, 'glance')
    if not images:
        return _failure(
            f'no image is tagged {tag!r}'
            f'{f" and owned by {owner}" if owner else ""}, so amphorae '
            f'cannot boot. Build the image with the amphora-sriov-agent '
            f'element, upload it and run "openstack image set --tag {tag} '
            f'<image>".')
    newest = max(images, key=lambda image: image.created_at or '')
    return _success(f'amphorae boot from {newest.name} ({newest.id}), the '
                    f'newest of {len(images)} image(s) tagged {tag}')
