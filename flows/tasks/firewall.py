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
"""Keep the amphorae in step with listeners, pools, members and L7 rules.

Every change to a listener, pool, member, health monitor, L7 policy or L7
rule computes the load balancer's whole state after the change once and
pushes it to each amphora (``push_state``): the amphora firewall (with
the flavor's ``sriov_vip`` the VFs have no security groups; the firewall
lets in what the listeners allow and the members' replies) and the
haproxy configuration (flows.tasks.engine).

The whole state is read from Octavia through the driver-agent, but that
read can miss the change the job is for: octavia-api commits its own
transaction only after the driver has posted the job, and an update's
store holds only the changed fields. The store's change is applied on top
of what Octavia returns (``apply_change``, ``apply_member_batch``).

Nothing is undone on revert: the amphora agent takes the whole state with
each push, so the next successful push corrects whatever this one left.
"""

import copy

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging
from taskflow import task

from flows.tasks import amphora as amphora_tasks
from flows.tasks import compute
from flows.tasks import engine
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import clients
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import octavia_status as status

LOG = logging.getLogger(__name__)


class FirewallError(Exception):
    """The load balancer's state or its amphorae cannot be found."""


def _replace(objects, id_key, changed, deleting):
    """``objects`` with ``changed`` merged over its copy, added or removed.

    Fields of the stored copy that ``changed`` does not name are kept: an
    update carries only what changed.
    """
    obj_id = changed[id_key]
    current = next((obj for obj in objects if obj.get(id_key) == obj_id),
                   {})
    others = [obj for obj in objects if obj.get(id_key) != obj_id]
    return others if deleting else others + [dict(current, **changed)]


def _pool(loadbalancer, pool_id):
    for pool in loadbalancer['pools']:
        if pool.get(lib_consts.POOL_ID) == pool_id:
            return pool
    raise FirewallError(f'load balancer {loadbalancer["loadbalancer_id"]} '
                        f'has no pool {pool_id}')


def _listener(loadbalancer, listener_id):
    for listener in loadbalancer['listeners']:
        if listener.get(lib_consts.LISTENER_ID) == listener_id:
            return listener
    raise FirewallError(f'load balancer {loadbalancer["loadbalancer_id"]} '
                        f'has no listener {listener_id}')


def _l7policy(loadbalancer, l7policy_id):
    for listener in loadbalancer['listeners']:
        for policy in listener[lib_consts.L7POLICIES]:
            if policy.get(lib_consts.L7POLICY_ID) == l7policy_id:
                return policy
    raise FirewallError(f'load balancer {loadbalancer["loadbalancer_id"]} '
                        f'has no L7 policy {l7policy_id}')


def _copy(loadbalancer):
    # Unset lists arrive as None; a list cut by a recursion guard holds
    # None entries.
    state = copy.deepcopy(loadbalancer)
    state['listeners'] = [obj for obj in state.get('listeners') or [] if obj]
    for listener in state['listeners']:
        listener[lib_consts.L7POLICIES] = [
            obj for obj in listener.get(lib_consts.L7POLICIES) or [] if obj]
        for policy in listener[lib_consts.L7POLICIES]:
            policy[lib_consts.RULES] = [
                obj for obj in policy.get(lib_consts.RULES) or [] if obj]
    state['pools'] = [obj for obj in state.get('pools') or [] if obj]
    for pool in state['pools']:
        pool['members'] = [obj for obj in pool.get('members') or [] if obj]
    return state


def apply_change(loadbalancer, object_type, provider_object, original=None,
                 deleting=False):
    """The load balancer's provider dict once the change is made.

    :param loadbalancer: the provider dict Octavia returns, with or without
        the change already in it; not modified.
    :param object_type: ``listener``, ``pool``, ``member``,
        ``health_monitor``, ``l7policy`` or ``l7rule``.
    :param provider_object: the object from the job's store (an update's
        new object holds only the changed fields).
    :param original: an update's ``original_<object_type>``.
    :param deleting: the object is being deleted.
    :returns: a copy whose ``listeners`` (with their ``l7policies`` and
        those with their ``rules``) and ``pools`` (with their ``members``
        and ``healthmonitor``) are the state after the change.
    """
    state = _copy(loadbalancer)
    changed = dict(original or {}, **provider_object)
    if object_type == 'listener':
        state['listeners'] = _replace(state['listeners'],
                                      lib_consts.LISTENER_ID, changed,
                                      deleting)
    elif object_type == 'pool':
        state['pools'] = _replace(state['pools'], lib_consts.POOL_ID,
                                  changed, deleting)
    elif object_type == 'member':
        pool = _pool(state, changed[lib_consts.POOL_ID])
        pool['members'] = _replace(pool['members'], lib_consts.MEMBER_ID,
                                   changed, deleting)
    elif object_type == 'health_monitor':
        pool = _pool(state, changed[lib_consts.POOL_ID])
        pool['healthmonitor'] = None if deleting else dict(
            pool.get('healthmonitor') or {}, **changed)
    elif object_type == 'l7policy':
        listener = _listener(state, changed[lib_consts.LISTENER_ID])
        listener[lib_consts.L7POLICIES] = _replace(
            listener[lib_consts.L7POLICIES], lib_consts.L7POLICY_ID,
            changed, deleting)
    elif object_type == 'l7rule':
        policy = _l7policy(state, changed[lib_consts.L7POLICY_ID])
        policy[lib_consts.RULES] = _replace(
            policy[lib_consts.RULES], lib_consts.L7RULE_ID, changed,
            deleting)
    else:
        raise ValueError(f'{object_type} is not part of a load balancer\'s '
                         f'state')
    return state


def apply_member_batch(loadbalancer, pool_id, members):
    """The load balancer's provider dict once a member batch is applied.

    ``members`` is the pool's whole member list after the batch; members
    the pool has now and the list leaves out are being deleted.
    """
    state = _copy(loadbalancer)
    pool = _pool(state, pool_id)
    current = {member[lib_consts.MEMBER_ID]: member
               for member in pool['members']}
    pool['members'] = [
        dict(current.get(member[lib_consts.MEMBER_ID], {}), **member)
        for member in members]
    return state


def _vrrp_ip(conn, loadbalancer, amphora):
    lb_id = loadbalancer['loadbalancer_id']
    for port in network.find_vrrp_ports(conn, lb_id, (amphora['role'],)):
        for fixed_ip in port.fixed_ips:
            if fixed_ip['subnet_id'] == loadbalancer['vip_subnet_id']:
                return fixed_ip['ip_address']
    raise FirewallError(f'amphora {amphora["id"]} ({amphora["role"]}) of '
                        f'load balancer {lb_id} has no VRRP port on the VIP '
                        f'subnet {loadbalancer["vip_subnet_id"]}')


def push_state(loadbalancer, availability_zone, flavor=None):
    """Push the whole state of ``loadbalancer`` to all its amphorae.

    The amphora firewall (with the flavor's ``sriov_vip``) and the haproxy
    configuration.

    :param loadbalancer: the load balancer's provider dict as it is to be
        (``apply_change``).
    :param flavor: the load balancer's flavor metadata; by default the
        ``flavor`` of ``loadbalancer``.
    """
    flavor = sriov_flavor.with_defaults(
        flavor if flavor is not None else loadbalancer.get('flavor'))
    conn = clients.connection()
    lb_id = loadbalancer['loadbalancer_id']
    amphorae = compute.find_amphorae(conn, lb_id, availability_zone)
    if not amphorae:
        raise FirewallError(f'load balancer {lb_id} has no amphorae')
    if flavor[sriov_flavor.SRIOV_VIP]:
        vrrp_ips = [_vrrp_ip(conn, loadbalancer, amphora)
                    for amphora in amphorae]
        # The pools given are all there are: the listeners' nested default
        # pools are Octavia's copies from before the change.
        amphora_tasks.push_firewall(loadbalancer, amphorae, vrrp_ips,
                                    pools=loadbalancer['pools'])
    else:
        security_group.sync_security_group(conn, loadbalancer, flavor)
    engine.push_haproxy(loadbalancer, amphorae)


def current_state(loadbalancer_id):
    """The load balancer's provider dict as Octavia has it, for push_state.

    For flows that change none of its objects (a failover).
    """
    return _copy(status.StatusReporter().get_loadbalancer(loadbalancer_id))


class _PushTask(task.Task):
    def revert(self, loadbalancer_id, *args, **kwargs):
        LOG.warning('%s failed: the firewall or haproxy of load balancer %s '
                    'may hold the failed change on some amphorae until the '
                    'next change of its listeners, pools, members or L7 '
                    'rules pushes the whole state again', self.name,
                    loadbalancer_id)


class PushState(_PushTask):
    """Apply the store's object to the load balancer's state; push it.

    :param object_type: the store key of the object the flow changes.
    :param deleting: the flow deletes the object.
    :param updating: the store also holds ``original_<object_type>``.
    """

    def __init__(self, object_type, deleting=False, updating=False):
        rebind = {'provider_object': object_type}
        if updating:
            rebind['original_object'] = 'original_' + object_type
        super(PushState, self).__init__(
            name=f'{object_type}-push-state', rebind=rebind)
        self.object_type = object_type
        self.deleting = deleting

    def execute(self, provider_object, loadbalancer_id, flavor,
                availability_zone, original_object=None):
        loadbalancer = status.StatusReporter().get_loadbalancer(
            loadbalancer_id)
        push_state(apply_change(loadbalancer, self.object_type,
                                provider_object, original_object,
                                self.deleting),
                   availability_zone, flavor)


class PushMemberBatchState(_PushTask):
    """Apply a pool's new member list to the state; push it."""

    def __init__(self):
        super(PushMemberBatchState, self).__init__(
            name='member-batch-push-state')

    def execute(self, members, pool_id, loadbalancer_id, flavor,
                availability_zone):
        loadbalancer = status.StatusReporter().get_loadbalancer(
            loadbalancer_id)
        push_state(apply_member_batch(loadbalancer, pool_id, members),
                   availability_zone, flavor)
