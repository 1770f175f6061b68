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
"""The load balancer's whole state once a flow's change is made.

Every change to a listener, pool, member, health monitor, L7 policy or L7
rule computes the load balancer's whole state after the change once
(``lb_state``); flows.tasks.amphora_state pushes it to the amphorae and,
without ``sriov_vip``, flows.tasks.security_group brings the load
balancer's security group in step with it.

The whole state is read from Octavia through the driver-agent, but that
read can miss the change the job is for: octavia-api commits its own
transaction only after the driver has posted the job, and an update's
store holds only the changed fields. The store's change is applied on top
of what Octavia returns (``apply_change``, ``apply_member_batch``).

These tasks only read, so there is nothing to undo.
"""

import copy

from octavia_lib.common import constants as lib_consts
from taskflow import task

from sriov_octavia import octavia_status as status

LB_STATE = 'lb_state'


class StateError(Exception):
    """The object a change names is not in the load balancer's state."""


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


def _find(loadbalancer, objects, id_key, object_id, what):
    for obj in objects:
        if obj.get(id_key) == object_id:
            return obj
    raise StateError(f'load balancer {loadbalancer["loadbalancer_id"]} '
                     f'has no {what} {object_id}')


def _pool(loadbalancer, pool_id):
    return _find(loadbalancer, loadbalancer['pools'], lib_consts.POOL_ID,
                 pool_id, 'pool')


def _listener(loadbalancer, listener_id):
    return _find(loadbalancer, loadbalancer['listeners'],
                 lib_consts.LISTENER_ID, listener_id, 'listener')


def _l7policy(loadbalancer, l7policy_id):
    policies = [policy for listener in loadbalancer['listeners']
                for policy in listener[lib_consts.L7POLICIES]]
    return _find(loadbalancer, policies, lib_consts.L7POLICY_ID,
                 l7policy_id, 'L7 policy')


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


def current_state(loadbalancer_id):
    """The load balancer's provider dict as Octavia has it.

    For flows that change none of its objects (a failover).
    """
    return _copy(_octavia_state(loadbalancer_id))


def _octavia_state(loadbalancer_id):
    return status.StatusReporter().get_loadbalancer(loadbalancer_id)


class ResolveChangedState(task.Task):
    """The state once the store's object is changed; provides ``lb_state``.

    :param object_type: the store key of the object the flow changes.
    :param deleting: the flow deletes the object.
    :param updating: the store also holds ``original_<object_type>``.
    """

    default_provides = LB_STATE

    def __init__(self, object_type, deleting=False, updating=False):
        rebind = {'provider_object': object_type}
        if updating:
            rebind['original_object'] = 'original_' + object_type
        super(ResolveChangedState, self).__init__(
            name=f'{object_type}-resolve-state', rebind=rebind)
        self.object_type = object_type
        self.deleting = deleting

    def execute(self, provider_object, loadbalancer_id,
                original_object=None):
        return apply_change(_octavia_state(loadbalancer_id),
                            self.object_type, provider_object,
                            original_object, self.deleting)


class ResolveMemberBatchState(task.Task):
    """The state once a pool's member list is replaced (``lb_state``)."""

    default_provides = LB_STATE

    def execute(self, members, pool_id, loadbalancer_id):
        return apply_member_batch(_octavia_state(loadbalancer_id), pool_id,
                                  members)


class ResolveCurrentState(task.Task):
    """The state as Octavia has it: a failover changes no object.

    None when the failover replaced nothing (``old_amphora`` empty):
    there is nothing new to push.
    """

    default_provides = LB_STATE

    def execute(self, loadbalancer_id, old_amphora):
        return current_state(loadbalancer_id) if old_amphora else None
