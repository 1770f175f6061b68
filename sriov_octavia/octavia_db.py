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
"""Lookups in Octavia's database, and the failover claim on a load balancer.

The driver runs inside octavia-api, which hands it one object per call: a
member knows its pool but not its load balancer, and nothing but the load
balancer carries the flavor. These lookups fill the gap from the same
database octavia-api uses, in a short transaction of their own. The parents
they read (load balancer, listener, pool, L7 policy) are committed before a
child can be created, so they are visible even while octavia-api still
holds the child's transaction open.

``claim_for_failover`` is the one write: what octavia-api does before it
asks a provider to fail over, done by this provider's own callers (the
health loop, the operator's command) so that a failover they start is
exclusive in the same way.
"""

from octavia.api.drivers import utils as driver_utils
from octavia.common import constants as consts
from octavia.db import api as db_api
from octavia.db import models
from octavia.db import repositories
from octavia_lib.api.drivers import exceptions as lib_exceptions


def _not_found(obj_id, kind):
    message = f'{kind} {obj_id} not found'
    return lib_exceptions.DriverError(user_fault_string=message,
                                      operator_fault_string=message)


def _one(query, kind, obj_id):
    row = query.one_or_none()
    if row is None:
        raise _not_found(obj_id, kind)
    return row


def _row(what, object_id, columns, *criteria):
    """The one row of ``columns`` matching ``criteria``."""
    session = db_api.get_session()
    with session.begin():
        return tuple(_one(session.query(*columns).filter(*criteria), what,
                          object_id))


def pool_load_balancer_id(pool_id):
    return _row('pool', pool_id, (models.Pool.load_balancer_id,),
                models.Pool.id == pool_id)[0]


def listener_load_balancer_id_and_protocol(listener_id):
    return _row('listener', listener_id,
                (models.Listener.load_balancer_id, models.Listener.protocol),
                models.Listener.id == listener_id)


def l7policy_load_balancer_id(l7policy_id):
    return _row('L7 policy', l7policy_id,
                (models.Listener.load_balancer_id,),
                models.L7Policy.id == l7policy_id,
                models.L7Policy.listener_id == models.Listener.id)[0]


def load_balancer_flavor_and_zone(loadbalancer_id):
    """Return (flavor metadata, availability zone metadata), {} for none."""
    session = db_api.get_session()
    with session.begin():
        query = session.query(models.LoadBalancer.flavor_id,
                              models.LoadBalancer.availability_zone).filter(
            models.LoadBalancer.id == loadbalancer_id)
        flavor_id, zone = _one(query, 'load balancer', loadbalancer_id)
        flavor = (repositories.FlavorRepository().get_flavor_metadata_dict(
            session, flavor_id) if flavor_id else {})
        az = (repositories.AvailabilityZoneRepository()
              .get_availability_zone_metadata_dict(session, zone)
              if zone else {})
    return flavor, az


def provider_load_balancer(loadbalancer_id):
    """The load balancer as octavia-lib's provider object, without secrets.

    for_delete=True makes Octavia leave TLS secrets out (they must not
    travel through the jobboard).
    """
    session = db_api.get_session()
    with session.begin():
        db_lb = repositories.LoadBalancerRepository().get(
            session, id=loadbalancer_id)
        if db_lb is None:
            raise _not_found(loadbalancer_id, 'load balancer')
        return driver_utils.db_loadbalancer_to_provider_loadbalancer(
            db_lb, for_delete=True)


def claim_for_failover(loadbalancer_id):
    """ACTIVE or ERROR -> PENDING_UPDATE, as octavia-api does for failover.

    Returns the status it had (ACTIVE or ERROR) when this caller changed it
    and so owns the failover; None when the load balancer is gone or busy
    (PENDING_*, DELETED), including when another caller claimed it first.
    Conditional UPDATEs: Octavia's repository locks with SELECT ... FOR
    UPDATE, which SQLite ignores.
    """
    session = db_api.get_session()
    with session.begin():
        for status in (consts.ACTIVE, consts.ERROR):
            changed = session.query(models.LoadBalancer).filter(
                models.LoadBalancer.id == loadbalancer_id,
                models.LoadBalancer.provisioning_status == status).update(
                {models.LoadBalancer.provisioning_status:
                 consts.PENDING_UPDATE}, synchronize_session=False)
            if changed:
                return status
    return None


def release_failover_claim(loadbalancer_id, provisioning_status):
    """Undo ``claim_for_failover`` when no job could be posted."""
    session = db_api.get_session()
    with session.begin():
        session.query(models.LoadBalancer).filter(
            models.LoadBalancer.id == loadbalancer_id,
            models.LoadBalancer.provisioning_status ==
            consts.PENDING_UPDATE).update(
            {models.LoadBalancer.provisioning_status: provisioning_status},
            synchronize_session=False)


def provider_load_balancers(provider):
    """The live load balancers of ``provider``, one query per table.

    ``[{"id", "provisioning_status", "flavor": flavor metadata}]``, without
    the DELETED ones Octavia keeps for a while.
    """
    session = db_api.get_session()
    with session.begin():
        rows = session.query(
            models.LoadBalancer.id, models.LoadBalancer.provisioning_status,
            models.LoadBalancer.flavor_id).filter(
            models.LoadBalancer.provider == provider,
            models.LoadBalancer.provisioning_status != consts.DELETED).all()
        flavors = {flavor_id: repositories.FlavorRepository()
                   .get_flavor_metadata_dict(session, flavor_id)
                   for flavor_id in {row[2] for row in rows if row[2]}}
    return [{'id': lb_id, 'provisioning_status': status,
             'flavor': flavors.get(flavor_id, {})}
            for lb_id, status, flavor_id in rows]


def load_balancer_object_ids(loadbalancer_id):
    """``{"listeners": [ids], "pools": [ids], "members": [ids]}``."""
    session = db_api.get_session()
    with session.begin():
        listeners = session.query(models.Listener.id).filter(
            models.Listener.load_balancer_id == loadbalancer_id).all()
        pools = session.query(models.Pool.id).filter(
            models.Pool.load_balancer_id == loadbalancer_id).all()
        members = session.query(models.Member.id).filter(
            models.Member.pool_id == models.Pool.id,
            models.Pool.load_balancer_id == loadbalancer_id).all()
    return {'listeners': sorted(row[0] for row in listeners),
            'pools': sorted(row[0] for row in pools),
            'members': sorted(row[0] for row in members)}


def existing_load_balancer_ids(loadbalancer_ids):
    """Those of ``loadbalancer_ids`` Octavia still has, as a set.

    A load balancer that is DELETED (Octavia keeps the row until its
    housekeeping purges it) or has no row is not had. One read, for the
    worker's housekeeping, which must never touch what belongs to a load
    balancer Octavia still has.
    """
    wanted = set(loadbalancer_ids)
    if not wanted:
        return set()
    session = db_api.get_session()
    with session.begin():
        rows = session.query(models.LoadBalancer.id).filter(
            models.LoadBalancer.id.in_(sorted(wanted)),
            models.LoadBalancer.provisioning_status !=
            consts.DELETED).all()
    return {row[0] for row in rows}
