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
"""Tasks that hand objects back to Octavia: ACTIVE, DELETED or ERROR.

Octavia's API sets the object, its load balancer and the parents in between
to PENDING_* before calling the driver; nothing else may change them until a
flow reports the outcome. Every object flow therefore starts with a task
that, on revert, marks the object ERROR and its parents ACTIVE (the load
balancer stays usable), and ends with a task marking the object ACTIVE or
DELETED.
"""

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging
from taskflow import task
from taskflow.types import failure

from sriov_octavia import octavia_status as status

LOG = logging.getLogger(__name__)

PARENTS = 'parents'
MEMBER_BATCH = 'member_batch'


def _report(loadbalancer_id, changes):
    status.StatusReporter().update_status(
        status.provisioning_update(loadbalancer_id, changes))


class _ObjectTask(task.Task):
    """A task on the object stored under ``object_type`` in the store."""

    def __init__(self, object_type, action, rebind=None, **kwargs):
        rebind = dict(rebind or {}, provider_object=object_type)
        super(_ObjectTask, self).__init__(
            name='%s-%s' % (object_type, action), rebind=rebind, **kwargs)
        self.object_type = object_type

    def _object_id(self, provider_object):
        return status.object_id(self.object_type, provider_object)


class ResolveParents(_ObjectTask):
    """Find the parents to hand back; on revert mark the object ERROR.

    Provides ``parents``: ``[[object_type, object_id], ...]``, read from
    Octavia through the driver-agent, as the API locked them.

    :param with_original: the store holds ``original_<object_type>`` (an
        update); Octavia passes only the changed fields in the new object,
        the parent references are in the original.
    """

    def __init__(self, object_type, with_original=False):
        rebind = ({'original_object': 'original_' + object_type}
                  if with_original else None)
        super(ResolveParents, self).__init__(object_type, 'resolve-parents',
                                             rebind=rebind, provides=PARENTS)

    def execute(self, provider_object, loadbalancer_id,
                original_object=None):
        loadbalancer = status.StatusReporter().get_loadbalancer(
            loadbalancer_id)
        merged = dict(original_object or {}, **provider_object)
        return [list(parent) for parent in status.locked_parents(
            self.object_type, merged, loadbalancer)]

    def revert(self, provider_object, loadbalancer_id, result,
               original_object=None, **kwargs):
        # When this task itself failed the parents are unknown; the load
        # balancer is still handed back.
        parents = [] if isinstance(result, failure.Failure) else result
        obj_id = self._object_id(provider_object)
        LOG.warning('%s %s failed: marking it ERROR and load balancer %s '
                    'ACTIVE.', self.object_type, obj_id, loadbalancer_id)
        _report(loadbalancer_id,
                [(self.object_type, obj_id, lib_consts.ERROR)] +
                [(kind, parent_id, lib_consts.ACTIVE)
                 for kind, parent_id in parents])


class _MarkObject(_ObjectTask):
    provisioning_status = None

    def execute(self, provider_object, loadbalancer_id, parents):
        _report(loadbalancer_id,
                [(self.object_type, self._object_id(provider_object),
                  self.provisioning_status)] +
                [(kind, parent_id, lib_consts.ACTIVE)
                 for kind, parent_id in parents])


class MarkActive(_MarkObject):
    """Mark the object, its parents and load balancer ACTIVE."""

    provisioning_status = lib_consts.ACTIVE

    def __init__(self, object_type):
        super(MarkActive, self).__init__(object_type, 'mark-active')


class MarkDeleted(_MarkObject):
    """Mark the object DELETED, its parents and load balancer ACTIVE."""

    provisioning_status = lib_consts.DELETED

    def __init__(self, object_type):
        super(MarkDeleted, self).__init__(object_type, 'mark-deleted')


class ResolveMemberBatch(task.Task):
    """Split a member batch update; on revert mark its members ERROR.

    ``members`` is the pool's desired member list; the pool's members in
    Octavia that are not in it are being deleted. Provides
    ``member_batch``: ``{"kept": [ids], "deleted": [ids], "parents":
    [[object_type, object_id], ...]}``.
    """

    default_provides = MEMBER_BATCH

    def execute(self, members, pool_id, loadbalancer_id):
        loadbalancer = status.StatusReporter().get_loadbalancer(
            loadbalancer_id)
        kept = [status.object_id('member', member) for member in members]
        deleted = [member_id for member_id
                   in status.pool_member_ids(pool_id, loadbalancer)
                   if member_id not in kept]
        parents = status.locked_parents('member', {'pool_id': pool_id},
                                        loadbalancer)
        return {'kept': kept, 'deleted': deleted,
                'parents': [list(parent) for parent in parents]}

    def revert(self, members, pool_id, loadbalancer_id, result, **kwargs):
        if isinstance(result, failure.Failure):
            failed = [status.object_id('member', m) for m in members]
            parents = [['pool', pool_id]]
        else:
            failed = result['kept'] + result['deleted']
            parents = result['parents']
        LOG.warning('Member batch update of pool %s failed: marking members '
                    '%s ERROR and load balancer %s ACTIVE.',
                    pool_id, ', '.join(failed), loadbalancer_id)
        _report(loadbalancer_id,
                [('member', member_id, lib_consts.ERROR)
                 for member_id in failed] +
                [(kind, parent_id, lib_consts.ACTIVE)
                 for kind, parent_id in parents])


class MarkMemberBatchDone(task.Task):
    """Kept members ACTIVE, removed ones DELETED, parents ACTIVE."""

    def execute(self, member_batch, loadbalancer_id):
        _report(loadbalancer_id,
                [('member', member_id, lib_consts.ACTIVE)
                 for member_id in member_batch['kept']] +
                [('member', member_id, lib_consts.DELETED)
                 for member_id in member_batch['deleted']] +
                [(kind, parent_id, lib_consts.ACTIVE)
                 for kind, parent_id in member_batch['parents']])
