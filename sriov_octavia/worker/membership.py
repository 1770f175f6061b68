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
"""Which controller process checks which load balancer.

The health loops of all workers join one tooz group on the coordination
backend. Each round a worker checks the load balancers that the consistent
hash ring of the group's live members gives it, so every amphora is
checked by one process, and N workers each do about 1/N of the work. A
worker that stops leaves the group; one that dies drops out when its
membership expires, and its load balancers move to the others (the ring
moves only those).

Each member's tooz capabilities carry how many of its amphorae are overdue
for failover, so that [health_manager] failover_threshold is judged over
the whole fleet, not per worker.
"""

import threading
from urllib import parse

from oslo_log import log as logging
from oslo_utils import netutils
from tooz import coordination
from tooz import hashring

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import jobboard

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

GROUP = b'sriov-octavia-health'
OVERDUE = 'overdue'


def _membership_timeout(conf):
    # Long enough for a busy worker's heartbeat thread, short enough that a
    # dead worker's load balancers are checked again within a few rounds.
    return max(3 * conf.sriov_worker.health_interval, 5)


def coordination_url(conf=CONF):
    """[sriov_worker] coordination_url, else the jobboard's own backend."""
    url = conf.sriov_worker.coordination_url
    if url:
        return url
    group = conf.task_flow
    driver = group.jobboard_backend_driver
    hosts = [f'{netutils.escape_ipv6(host)}:{group.jobboard_backend_port}'
             for host in group.jobboard_backend_hosts]
    namespace = f'{conf.sriov_worker.jobboard_name}_health'
    if driver == jobboard.REDIS:
        credentials = ''
        if group.jobboard_backend_password:
            credentials = '%s:%s@' % (
                parse.quote(group.jobboard_backend_username or '', safe=''),
                parse.quote(group.jobboard_backend_password, safe=''))
        query = parse.urlencode({
            'db': group.jobboard_redis_backend_db,
            'namespace': namespace,
            'membership_timeout': _membership_timeout(conf)})
        return f'redis://{credentials}{hosts[0]}?{query}'
    if driver == jobboard.ZOOKEEPER:
        query = parse.urlencode({'namespace': namespace})
        return f'kazoo://{",".join(hosts)}?{query}'
    if driver == jobboard.ETCD:
        query = parse.urlencode({'timeout': _membership_timeout(conf)})
        return f'etcd3+http://{hosts[0]}?{query}'
    raise ValueError(f'no coordination backend for jobboard driver '
                     f'{driver}: set [sriov_worker] coordination_url')


class HealthGroup(object):
    """This worker's membership of the health group."""

    def __init__(self, member_id, conf=CONF):
        self.member_id = member_id.encode()
        self._url = coordination_url(conf)
        self._coordinator = None
        # The health and certificate loops share the membership.
        self._lock = threading.Lock()

    def _joined(self):
        """The coordinator, once this member has joined the group."""
        with self._lock:
            if self._coordinator is None:
                self._join()
            return self._coordinator

    def _join(self):
        coordinator = coordination.get_coordinator(self._url,
                                                   self.member_id)
        # tooz's own thread renews the membership between rounds.
        coordinator.start(start_heart=True)
        try:
            try:
                coordinator.create_group(GROUP).get()
            except coordination.GroupAlreadyExist:
                pass
            try:
                coordinator.join_group(GROUP, {OVERDUE: 0}).get()
            except coordination.MemberAlreadyExist:
                pass
        except Exception:
            coordinator.stop()
            raise
        self._coordinator = coordinator
        LOG.info('Health checks shared as member %s of %s',
                 self.member_id.decode(), GROUP.decode())

    def leave(self):
        with self._lock:
            if self._coordinator is None:
                return
            try:
                self._coordinator.leave_group(GROUP).get()
            except coordination.ToozError as error:
                LOG.warning('Leaving the health group: %s', error)
            finally:
                self._coordinator.stop()
                self._coordinator = None

    def members(self):
        """The live members, this one included."""
        return self._joined().get_members(GROUP).get() | {self.member_id}

    def owned(self, object_ids, members=None):
        """The ids of ``object_ids`` this member checks.

        :param members: the members, as ``members`` gave them this round.
        """
        members = members or self.members()
        # 256 points a member: shares even within a few per cent.
        ring = hashring.HashRing(members, partitions=256)
        return {object_id for object_id in object_ids
                if ring.get_nodes(object_id.encode()) == {self.member_id}}

    def fleet_overdue(self, overdue):
        """Publish this member's overdue count; the count over the group.

        The other members' counts are as they published them last, at most
        one round old.
        """
        coordinator = self._joined()
        coordinator.update_capabilities(GROUP, {OVERDUE: overdue}).get()
        total = overdue
        for member in self.members() - {self.member_id}:
            try:
                capabilities = coordinator.get_member_capabilities(
                    GROUP, member).get()
            except coordination.MemberNotJoined:
                continue
            total += int((capabilities or {}).get(OVERDUE) or 0)
        return total
