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
"""Status and statistics reports to Octavia through octavia-lib.

Provider drivers may only change Octavia's records through the sockets of
octavia-driver-agent; octavia-lib's DriverLibrary speaks that protocol. This
module builds the nested status dictionary it expects and opens the library
with the socket paths of ``[sriov_worker]``.
"""

from octavia_lib.api.drivers import driver_lib
from octavia_lib.common import constants as lib_consts

from sriov_octavia import conf as sriov_conf
from sriov_octavia import provider_secrets

# Object names as they appear in job stores (see CONTRACTS.md) -> the key of
# their list in a status update and the key of their id in a provider dict.
STATUS_KEYS = {
    'loadbalancer': lib_consts.LOADBALANCERS,
    'listener': lib_consts.LISTENERS,
    'pool': lib_consts.POOLS,
    'member': lib_consts.MEMBERS,
    'health_monitor': lib_consts.HEALTHMONITORS,
    'l7policy': lib_consts.L7POLICIES,
    'l7rule': lib_consts.L7RULES,
}
ID_KEYS = {
    'loadbalancer': lib_consts.LOADBALANCER_ID,
    'listener': lib_consts.LISTENER_ID,
    'pool': lib_consts.POOL_ID,
    'member': lib_consts.MEMBER_ID,
    'health_monitor': lib_consts.HEALTHMONITOR_ID,
    'l7policy': lib_consts.L7POLICY_ID,
    'l7rule': lib_consts.L7RULE_ID,
}


def object_id(object_type, provider_dict):
    """The id of a provider object given as ``to_dict()`` output."""
    return provider_dict[ID_KEYS[object_type]]


def provisioning_update(loadbalancer_id, changes=(),
                        loadbalancer_status=lib_consts.ACTIVE):
    """Build the argument of ``DriverLibrary.update_loadbalancer_status``.

    :param changes: iterable of ``(object_type, object_id,
        provisioning_status)``; object_type is a key of ``STATUS_KEYS``.
    :param loadbalancer_status: provisioning status of the parent load
        balancer unless ``changes`` name it, ACTIVE by default because an
        operation on a child (even a failed one) must hand the load balancer
        back to the user.
    """
    status = {}
    for object_type, obj_id, provisioning_status in changes:
        status.setdefault(STATUS_KEYS[object_type], []).append(
            {lib_consts.ID: obj_id,
             lib_consts.PROVISIONING_STATUS: provisioning_status})
    lbs = status.setdefault(lib_consts.LOADBALANCERS, [])
    if not any(lb[lib_consts.ID] == loadbalancer_id for lb in lbs):
        lbs.append({lib_consts.ID: loadbalancer_id,
                    lib_consts.PROVISIONING_STATUS: loadbalancer_status})
    return status


def _pool_listeners(pool_id, loadbalancer):
    # Octavia's API locks every listener that uses the pool: as default pool
    # or through an enabled L7 policy with rules that redirects to it.
    ids = []
    for listener in loadbalancer.get('listeners') or []:
        uses = listener.get('default_pool_id') == pool_id or any(
            policy.get('redirect_pool_id') == pool_id
            and policy.get('admin_state_up', True) and policy.get('rules')
            for policy in listener.get('l7policies') or [])
        if uses:
            ids.append(listener[lib_consts.LISTENER_ID])
    return ids


def locked_parents(object_type, provider_object, loadbalancer):
    """The parents Octavia's API set PENDING_UPDATE for this operation.

    Besides the load balancer, an operation on a child locks the objects
    above it; the worker must hand them back as ACTIVE with the child.

    :param provider_object: the object's provider dict (``to_dict``).
    :param loadbalancer: the load balancer's provider dict as the
        driver-agent returns it now (listeners with their L7 policies).
    :returns: list of ``(object_type, object_id)``.
    """
    parents = []
    if object_type == 'pool':
        listener_ids = _pool_listeners(provider_object[lib_consts.POOL_ID],
                                       loadbalancer)
        if (provider_object.get(lib_consts.LISTENER_ID) and
                provider_object[lib_consts.LISTENER_ID] not in listener_ids):
            listener_ids.append(provider_object[lib_consts.LISTENER_ID])
        parents.extend(('listener', i) for i in listener_ids)
    elif object_type in ('member', 'health_monitor'):
        pool_id = provider_object[lib_consts.POOL_ID]
        parents.append(('pool', pool_id))
        parents.extend(('listener', i)
                       for i in _pool_listeners(pool_id, loadbalancer))
    elif object_type == 'l7policy':
        parents.append(('listener', provider_object[lib_consts.LISTENER_ID]))
    elif object_type == 'l7rule':
        policy_id = provider_object[lib_consts.L7POLICY_ID]
        parents.append(('l7policy', policy_id))
        for listener in loadbalancer.get('listeners') or []:
            if any(policy.get(lib_consts.L7POLICY_ID) == policy_id
                   for policy in listener.get('l7policies') or []):
                parents.append(('listener', listener[lib_consts.LISTENER_ID]))
    return parents


def pool_member_ids(pool_id, loadbalancer):
    """Ids of the members the pool has in Octavia now."""
    for pool in loadbalancer.get('pools') or []:
        if pool.get(lib_consts.POOL_ID) == pool_id:
            return [m[lib_consts.MEMBER_ID]
                    for m in pool.get('members') or []]
    return []


class StatusReporter(object):
    """Reports to octavia-driver-agent over its unix sockets."""

    def __init__(self, conf=sriov_conf.CONF):
        self._conf = conf

    def _library(self):
        # DriverLibrary waits for the sockets to exist when it is created;
        # creating it per report lets a worker start before the driver-agent
        # and survive the driver-agent's restarts.
        group = self._conf.sriov_worker
        return driver_lib.DriverLibrary(
            status_socket=group.status_socket_path,
            stats_socket=group.stats_socket_path,
            get_socket=group.get_socket_path)

    def update_status(self, status):
        """Send a status dict; raises octavia-lib's UpdateStatusError."""
        self._library().update_loadbalancer_status(status)

    def update_listener_statistics(self, statistics):
        """Send listener statistics ``{"listeners": [{"id": ..., ...}]}``."""
        self._library().update_listener_statistics(statistics)

    def get_loadbalancer(self, loadbalancer_id):
        """The load balancer as Octavia has it now, as a provider dict.

        Listeners, their L7 policies, pools and members are nested in it;
        the TLS secrets' contents that the driver-agent adds are not
        (``provider_secrets``).
        :raises LookupError: Octavia does not know the load balancer.
        """
        loadbalancer = self._library().get_loadbalancer(loadbalancer_id)
        if loadbalancer is None:
            message = 'Octavia has no load balancer %s' % loadbalancer_id
            raise LookupError(message)
        return provider_secrets.without_secret_data(
            loadbalancer.to_dict(recurse=True))
