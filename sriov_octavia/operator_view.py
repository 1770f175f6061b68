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
"""What an operator sees of this provider's amphorae, and their failover.

Octavia's ``openstack loadbalancer amphora`` commands read Octavia's own
amphora table, which this provider leaves empty: its amphorae are Nova
servers found by their metadata (``sriov_octavia.naming``). This module
puts together what Nova, Neutron, Octavia's database and each amphora's
agent know of one, as plain dicts for ``sriov-octavia-manage`` to print:

``id`` (server), ``amphora_id`` (the name its certificate carries),
``loadbalancer_id``, ``loadbalancer_status`` (provisioning status in
Octavia, None when Octavia has no such load balancer), ``role``,
``server_status``, ``compute_host``, ``mgmt_ip``, ``vf_ports`` (the ports
bound to a VF: ``id``, ``name``, ``network_id``, ``mac_address``,
``vnic_type``, ``pci_slot``), ``health`` (``ok`` or why not),
``health_detail``, ``cert_expiry`` (ISO 8601, from the certificate the
agent serves) and ``replaces`` (a failover's new amphora: the server it
replaces).

A role the load balancer's topology has but no server holds is listed
too, with ``id`` None and health ``no server in Nova``.

Failover posts the ``amphora.failover`` job after claiming the load
balancer as octavia-api does, so that it never runs beside another
operation on the same load balancer.
"""

from concurrent import futures
import time

from octavia.common import constants as consts
from octavia.db import api as db_api
from octavia.db import models
from openstack import exceptions as os_exceptions
import sqlalchemy

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae
from sriov_octavia import conf as sriov_conf
from sriov_octavia import failover as failover_lib
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from sriov_octavia import octavia_db

# Its import registers every option this module reads.
CONF = sriov_conf.CONF

PROVIDER = naming.PROVIDER
# The vnic types Nova backs with a VF (``direct-physical`` is a whole PF).
VF_VNIC_TYPES = (sriov_flavor.VNIC_TYPE_DIRECT,
                 sriov_flavor.VNIC_TYPE_MACVTAP)
# Seconds one agent may take to answer a health probe: a listing asks
# every amphora, and a dead one must not hold it up for long.
PROBE_TIMEOUT = 5.0
# Probes of a listing run side by side, each mostly waiting on the network.
_PROBE_THREADS = 8
# Where --wait stops polling: the statuses a failover job ends in.
SETTLED = (consts.ACTIVE, consts.ERROR)

HEALTH_OK = 'ok'
HEALTH_NO_SERVER = 'no server in Nova'
HEALTH_NO_MGMT_IP = 'no management address'
HEALTH_UNREACHABLE = 'agent unreachable'
HEALTH_TLS = 'agent TLS failure'

_ROLE_ORDER = {role: rank for rank, role in enumerate(naming.ALL_ROLES)}


class OperatorError(Exception):
    """What the operator asked for cannot be done; the message says why."""


class NotFound(OperatorError):
    """No amphora or load balancer of this provider has that id."""


class Busy(OperatorError):
    """The load balancer is in a state a failover must not start from."""


def amphora_not_found(ident):
    return NotFound(f'amphora {ident} not found: no server of the '
                    f'{PROVIDER} provider has that server id or amphora id')


def loadbalancer_not_found(lb_id):
    return NotFound(f'load balancer {lb_id} not found: Octavia has no load '
                    f'balancer of the {PROVIDER} provider with that id')


# Octavia's database --------------------------------------------------------

def loadbalancer_rows(ids=(), all_of_provider=False):
    """``{id: row}`` of Octavia's load balancers, as plain dicts.

    :param ids: the load balancers Nova's metadata names (any provider,
        any status: the caller decides what to make of them).
    :param all_of_provider: also every load balancer of this provider that
        is not DELETED, so one without any server shows up.
    """
    lb = models.LoadBalancer
    criteria = []
    if ids:
        criteria.append(lb.id.in_(sorted(set(ids))))
    if all_of_provider:
        criteria.append(sqlalchemy.and_(
            lb.provider == PROVIDER,
            lb.provisioning_status != consts.DELETED))
    if not criteria:
        return {}
    session = db_api.get_session()
    with session.begin():
        rows = session.query(
            lb.id, lb.name, lb.provider, lb.provisioning_status,
            lb.operating_status, lb.topology).filter(
            sqlalchemy.or_(*criteria)).all()
    return {row.id: {'id': row.id, 'name': row.name,
                     'provider': row.provider,
                     'provisioning_status': row.provisioning_status,
                     'operating_status': row.operating_status,
                     'topology': row.topology}
            for row in rows}


def loadbalancer_status(lb_id):
    """The provisioning status in Octavia; None when it has no such row."""
    row = loadbalancer_rows([lb_id]).get(lb_id)
    return row and row['provisioning_status']


def _ours(row):
    return row is not None and row['provider'] == PROVIDER


def _known_loadbalancer(lb_id):
    row = loadbalancer_rows([lb_id]).get(lb_id)
    if not _ours(row) or row['provisioning_status'] == consts.DELETED:
        raise loadbalancer_not_found(lb_id)
    return row


# Nova and Neutron ----------------------------------------------------------

def _provider_servers(conn):
    return [server for server in conn.compute.servers(details=True)
            if (server.metadata or {}).get(naming.META_LOADBALANCER)]


def find_server(conn, ident):
    """The amphora server whose server id or amphora id is ``ident``.

    :raises NotFound: none of this provider's servers.
    """
    try:
        server = conn.compute.get_server(ident)
    except (os_exceptions.NotFoundException,
            os_exceptions.BadRequestException):
        # Not a server id (Nova may refuse what is not a UUID at all).
        server = None
    if server is not None and (server.metadata or {}).get(
            naming.META_LOADBALANCER):
        return server
    # Amphora ids are only in the metadata, which Nova cannot filter on.
    for server in _provider_servers(conn):
        if server.metadata.get(naming.META_AMPHORA_ID) == ident:
            return server
    raise amphora_not_found(ident)


def vf_ports(conn, server_id):
    """The server's ports bound to a VF, with the PCI slot Nova gave each."""
    found = []
    for port in conn.network.ports(device_id=server_id):
        if port.binding_vnic_type not in VF_VNIC_TYPES:
            continue
        found.append({'id': port.id, 'name': port.name,
                      'network_id': port.network_id,
                      'mac_address': port.mac_address,
                      'vnic_type': port.binding_vnic_type,
                      'pci_slot': (port.binding_profile or {}).get(
                          'pci_slot')})
    return sorted(found, key=lambda port: (port['name'] or '', port['id']))


def _management_networks(lb_id, known, conf):
    """``(networks, why none)`` of the load balancer's amphorae.

    ``networks`` is None for a load balancer Octavia no longer has: there
    is no availability zone to read, and the address is taken the way the
    worker's loops take it. An empty list comes with the reason.
    """
    if not known:
        return None, None
    _flavor, zone = octavia_db.load_balancer_flavor_and_zone(lb_id)
    try:
        return amphorae.management_networks(zone, conf), None
    except amphorae.AmphoraLookupError as error:
        return [], str(error)


def _mgmt_ip(conn, server, networks, conf):
    """``(address, why not)``; ``networks`` as _management_networks."""
    networks, why_none = networks
    if networks is None:
        address = amphorae.server_mgmt_ip(conn, server, conf)
        return address, (None if address else
                         'the server has no address on any network')
    if not networks:
        return None, why_none
    try:
        return amphorae.mgmt_ip(conn, server.id, networks[:1]), None
    except amphorae.AmphoraLookupError as error:
        return None, str(error)


def _fault(server):
    fault = getattr(server, 'fault', None) or {}
    return fault.get('message') if isinstance(fault, dict) else None


def _amphora(conn, server, lb_row, networks, conf):
    """The dict of one server, its agent not asked yet."""
    metadata = server.metadata or {}
    address, why = _mgmt_ip(conn, server, networks, conf)
    amphora = {
        'id': server.id,
        'amphora_id': metadata.get(naming.META_AMPHORA_ID),
        'loadbalancer_id': metadata.get(naming.META_LOADBALANCER),
        'loadbalancer_status': lb_row and lb_row['provisioning_status'],
        'role': metadata.get(naming.META_ROLE),
        'server_status': server.status,
        'compute_host': server.compute_host,
        'mgmt_ip': address,
        'vf_ports': vf_ports(conn, server.id),
        'health': None,
        'health_detail': None,
        'cert_expiry': None,
        'replaces': metadata.get(naming.META_REPLACES) or None,
    }
    if server.status != 'ACTIVE':
        amphora['health'] = f'server {server.status} in Nova'
        amphora['health_detail'] = _fault(server)
    elif address is None:
        amphora['health'] = HEALTH_NO_MGMT_IP
        amphora['health_detail'] = why
    return amphora


def _missing_role(lb_id, lb_row, role):
    return {'id': None, 'amphora_id': None, 'loadbalancer_id': lb_id,
            'loadbalancer_status': lb_row['provisioning_status'],
            'role': role, 'server_status': None, 'compute_host': None,
            'mgmt_ip': None, 'vf_ports': [], 'health': HEALTH_NO_SERVER,
            'health_detail': f'no server holds the {role} role of load '
                             f'balancer {lb_id}',
            'cert_expiry': None, 'replaces': None}


# The agents ----------------------------------------------------------------

def _agent(amphora, conf, timeout):
    """One attempt per request, connecting within ``timeout`` seconds."""
    agent = amphorae.agent_for(amphora, conf, retries=0)
    agent.timeout = (timeout, agent.timeout[1])
    return agent


def probe(amphora, conf=CONF, timeout=PROBE_TIMEOUT):
    """Fill in ``health`` and ``cert_expiry`` of a running amphora.

    One mutual TLS connection: the certificate the agent serves, and with
    its answer to ``GET /`` the proof that it accepts ours.
    """
    if amphora['health'] is not None:
        return amphora
    try:
        with _agent(amphora, conf, timeout) as agent:
            served = agent.served_certificate()
    except agent_client.AgentTLSError as error:
        amphora.update(health=HEALTH_TLS, health_detail=str(error))
    except agent_client.AgentUnreachable as error:
        amphora.update(health=HEALTH_UNREACHABLE, health_detail=str(error))
    else:
        amphora.update(health=HEALTH_OK,
                       cert_expiry=served.not_valid_after_utc.isoformat())
    return amphora


def _probe_all(found, conf, timeout):
    waiting = [amphora for amphora in found if amphora['health'] is None]
    if not waiting:
        return
    with futures.ThreadPoolExecutor(
            max_workers=min(_PROBE_THREADS, len(waiting))) as pool:
        # list(): a probe's exception (none is expected) is not lost.
        list(pool.map(lambda amphora: probe(amphora, conf, timeout),
                      waiting))


# What the command asks -----------------------------------------------------

def _sort_key(amphora):
    return (amphora['loadbalancer_id'] or '',
            _ROLE_ORDER.get(amphora['role'], len(_ROLE_ORDER)),
            amphora['id'] or '')


def list_amphorae(conn, loadbalancer_id=None, conf=CONF,
                  timeout=PROBE_TIMEOUT):
    """Every amphora of this provider, or of one load balancer.

    Load balancers come from Nova's metadata and from Octavia's database
    (one whose servers are all gone still shows its roles); a load balancer
    Octavia holds for another provider is left out. Amphorae of a load
    balancer Octavia no longer has are listed with ``loadbalancer_status``
    None: they are leftovers to look into.

    :raises NotFound: ``loadbalancer_id`` is not one of this provider's.
    """
    if loadbalancer_id:
        lb_rows = {loadbalancer_id: _known_loadbalancer(loadbalancer_id)}
        servers = amphorae.find_servers(conn, loadbalancer_id)
    else:
        servers = _provider_servers(conn)
        lb_rows = loadbalancer_rows(
            {server.metadata[naming.META_LOADBALANCER]
             for server in servers}, all_of_provider=True)
    by_lb = {lb_id: [] for lb_id, row in lb_rows.items() if _ours(row)}
    for server in servers:
        lb_id = server.metadata[naming.META_LOADBALANCER]
        row = lb_rows.get(lb_id)
        if row is not None and not _ours(row):
            continue
        by_lb.setdefault(lb_id, []).append(server)

    found = []
    for lb_id, lb_servers in by_lb.items():
        row = lb_rows.get(lb_id)
        known = row is not None and (
            row['provisioning_status'] != consts.DELETED)
        networks = _management_networks(lb_id, known, conf)
        found.extend(_amphora(conn, server, row, networks, conf)
                     for server in lb_servers)
        if known:
            held = {server.metadata.get(naming.META_ROLE)
                    for server in lb_servers}
            found.extend(_missing_role(lb_id, row, role)
                         for role in sriov_flavor.topology_roles(
                             row['topology'])
                         if role not in held)
    _probe_all(found, conf, timeout)
    return sorted(found, key=_sort_key)


def _amphora_of(conn, ident, conf):
    """``(amphora dict, load balancer row or None)``, agent not asked."""
    server = find_server(conn, ident)
    lb_id = server.metadata[naming.META_LOADBALANCER]
    row = loadbalancer_rows([lb_id]).get(lb_id)
    known = _ours(row) and row['provisioning_status'] != consts.DELETED
    networks = _management_networks(lb_id, known, conf)
    return _amphora(conn, server, row, networks, conf), row


def show_amphora(conn, ident, conf=CONF, timeout=PROBE_TIMEOUT):
    """One amphora by server id or amphora id.

    :raises NotFound: no server of this provider has that id.
    """
    amphora, _row = _amphora_of(conn, ident, conf)
    return probe(amphora, conf, timeout)


def amphora_stats(conn, ident, conf=CONF, timeout=PROBE_TIMEOUT):
    """The amphora with its agent's firewall counters and haproxy's view.

    ``firewall``: what the agent's ``security-group/counters`` answers
    (shared counters, per listener accepted/dropped, per interface
    dropped); ``haproxy``: the load balancer's frontends and backends as
    haproxy reports them, None when no haproxy runs for it.

    :raises NotFound: no server of this provider has that id.
    :raises OperatorError: the agent cannot be asked, or failed to answer.
    """
    amphora, _row = _amphora_of(conn, ident, conf)
    if amphora['health'] is not None:
        detail = amphora['health_detail']
        raise OperatorError(f'amphora {amphora["id"]}: {amphora["health"]}'
                            + (f' ({detail})' if detail else ''))
    try:
        with _agent(amphora, conf, timeout) as agent:
            counters = agent.get_counters()
            haproxy = agent.get_loadbalancer_status(
                amphora['loadbalancer_id'])
    except agent_client.AgentError as error:
        raise OperatorError(f'amphora {amphora["id"]}: {error}') from None
    return dict(amphora, health=HEALTH_OK, firewall=counters,
                haproxy=haproxy)


def failover(conn, ident, conf=CONF):
    """Post the amphora's failover as octavia-api would; the job's facts.

    The load balancer is claimed first (ACTIVE or ERROR to PENDING_UPDATE,
    as octavia-api and the health loop claim it: sriov_octavia.failover)
    so that no other operation runs meanwhile; the job's flow sets it
    ACTIVE or ERROR when done. When the job cannot be posted the claim is
    released again.

    Returns ``{"job_id", "id", "amphora_id", "role", "loadbalancer_id"}``.

    :raises NotFound: no such amphora, or Octavia no longer has its load
        balancer.
    :raises Busy: the load balancer is PENDING_* (another operation runs).
    :raises OperatorError: the job could not be posted (jobboard, flow
        persistence or Octavia's database unreachable).
    """
    server = find_server(conn, ident)
    metadata = server.metadata
    lb_id = metadata[naming.META_LOADBALANCER]
    role = metadata.get(naming.META_ROLE)
    if role not in naming.ALL_ROLES:
        raise OperatorError(f'amphora {server.id} has no role in its '
                            f'metadata ({naming.META_ROLE}={role!r}): the '
                            f'failover flow would not know which to '
                            f'replace; fail over load balancer {lb_id} '
                            f'instead')
    row = loadbalancer_rows([lb_id]).get(lb_id)
    if not _ours(row) or row['provisioning_status'] == consts.DELETED:
        raise NotFound(f'load balancer {lb_id} of amphora {server.id} not '
                       f'found: Octavia has no load balancer of the '
                       f'{PROVIDER} provider with that id; the server is a '
                       f'leftover to delete, not to fail over')
    try:
        job_id = failover_lib.start(
            lb_id, {'role': role, 'id': server.id},
            reason='asked for with sriov-octavia-manage', conf=conf)
    except failover_lib.NotClaimed:
        status = loadbalancer_status(lb_id)
        raise Busy(f'load balancer {lb_id} is {status or "gone"}: a '
                   f'failover starts only from ACTIVE or ERROR; try again '
                   f'once the operation in progress has ended') from None
    except Exception as error:
        raise OperatorError(
            f'the failover of amphora {server.id} could not be posted '
            f'(load balancer {lb_id} is {loadbalancer_status(lb_id)} '
            f'again): {error}') from error
    return {'job_id': job_id, 'id': server.id,
            'amphora_id': metadata.get(naming.META_AMPHORA_ID),
            'role': role, 'loadbalancer_id': lb_id}


def wait_for_failover(conn, posted, timeout, interval=2.0,
                      clock=time.monotonic, sleep=time.sleep):
    """Poll until the failover's load balancer is ACTIVE or ERROR.

    Returns ``posted`` with ``provisioning_status`` and
    ``new_ids``: the servers holding the role afterwards.

    :raises OperatorError: still pending after ``timeout`` seconds, or the
        load balancer is gone.
    """
    lb_id = posted['loadbalancer_id']
    deadline = clock() + timeout
    while True:
        status = loadbalancer_status(lb_id)
        if status is None or status == consts.DELETED:
            raise OperatorError(f'load balancer {lb_id} was deleted while '
                                f'its amphora {posted["id"]} was failing '
                                f'over')
        if status in SETTLED:
            break
        if clock() + interval > deadline:
            raise OperatorError(
                f'load balancer {lb_id} is still {status} after {timeout} '
                f's; job {posted["job_id"]} goes on (see the worker\'s log)')
        sleep(interval)
    holders = sorted(server.id for server
                     in amphorae.find_servers(conn, lb_id)
                     if server.metadata.get(naming.META_ROLE) ==
                     posted['role'])
    return dict(posted, provisioning_status=status, new_ids=holders)
