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
"""Status of a load balancer and the objects that come and go with it.

A load balancer created in one call with its listeners, pools, members,
health monitors and L7 policies holds them all in PENDING_CREATE until its
flow reports; a cascade delete holds them in PENDING_DELETE. The first task
of a load balancer flow collects them, reverts to ERROR for all of them,
and the last task reports them ACTIVE or DELETED together with the load
balancer.
"""

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging
from taskflow import task

from sriov_octavia import octavia_status as status

LOG = logging.getLogger(__name__)

LB_OBJECTS = 'lb_objects'

# Where a provider dict (to_dict(recurse=True)) nests its children.
_CHILDREN = {
    'loadbalancer': (('listeners', 'listener'), ('pools', 'pool')),
    'listener': (('default_pool', 'pool'), ('l7policies', 'l7policy')),
    'pool': (('members', 'member'), ('healthmonitor', 'health_monitor')),
    'l7policy': (('rules', 'l7rule'),),
}


def child_objects(loadbalancer):
    """``[[object_type, object_id], ...]`` of everything under it, once."""
    found = []

    def walk(object_type, provider_dict):
        for key, child_type in _CHILDREN.get(object_type, ()):
            children = provider_dict.get(key)
            if isinstance(children, dict):
                children = [children]
            for child in children or ():
                if not child:
                    continue
                entry = [child_type, status.object_id(child_type, child)]
                if entry not in found:
                    found.append(entry)
                walk(child_type, child)

    walk('loadbalancer', loadbalancer)
    return found


def _report(loadbalancer_id, objects, provisioning_status):
    changes = [(kind, obj_id, provisioning_status)
               for kind, obj_id in objects]
    changes.append(('loadbalancer', loadbalancer_id, provisioning_status))
    status.StatusReporter().update_status(
        status.provisioning_update(loadbalancer_id, changes))


class _CollectObjects(task.Task):
    default_provides = LB_OBJECTS

    def revert(self, loadbalancer_id, result, *args, **kwargs):
        objects = result if isinstance(result, list) else []
        LOG.warning('Load balancer %s: the flow failed; marking it%s ERROR.',
                    loadbalancer_id,
                    ' and %d object(s) under it' % len(objects)
                    if objects else '')
        _report(loadbalancer_id, objects, lib_consts.ERROR)


class CollectCreatedObjects(_CollectObjects):
    """The objects created in the same call as the load balancer.

    On revert the load balancer and these objects go to ERROR.
    """

    def execute(self, loadbalancer_id, loadbalancer):
        return child_objects(loadbalancer)


class CollectDeletedObjects(_CollectObjects):
    """The objects a cascade delete removes with the load balancer.

    Read from Octavia (the driver gets only the load balancer itself);
    none without cascade, which Octavia's API allows only for a load
    balancer without children. On revert they and the load balancer go to
    ERROR.
    """

    def execute(self, loadbalancer_id, cascade=False):
        if not cascade:
            return []
        return child_objects(
            status.StatusReporter().get_loadbalancer(loadbalancer_id))


class CollectNoObjects(_CollectObjects):
    """A failover or an update: no object under the load balancer changes.

    Provides none; on revert the load balancer goes to ERROR.
    """

    def execute(self, loadbalancer_id):
        return []


class MarkLoadBalancerActive(task.Task):
    """The load balancer and the objects created with it: ACTIVE."""

    def execute(self, loadbalancer_id, lb_objects):
        _report(loadbalancer_id, lb_objects, lib_consts.ACTIVE)
        LOG.info('Load balancer %s is ACTIVE.', loadbalancer_id)


class MarkLoadBalancerDeleted(task.Task):
    """The load balancer and the objects deleted with it: DELETED."""

    def execute(self, loadbalancer_id, lb_objects):
        _report(loadbalancer_id, lb_objects, lib_consts.DELETED)
        LOG.info('Load balancer %s is DELETED.', loadbalancer_id)
