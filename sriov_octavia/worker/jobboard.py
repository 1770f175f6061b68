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
"""The jobboard between the provider driver and the workers.

The driver posts one job per operation and returns at once; any worker may
claim it. A job holds no flow object: the flow's factory (an importable
function) and the store are saved in the flow persistence, so the worker
that claims the job, or the one that takes it over after a crash, rebuilds
the same flow and continues from the persisted task states.
"""

import contextlib
from importlib import metadata as importlib_metadata

from oslo_log import log as logging
from oslo_utils import netutils
from oslo_utils import uuidutils
from stevedore import driver as stevedore_driver
from taskflow import engines
from taskflow.jobs import backends as job_backends
from taskflow.jobs.backends import impl_redis
from taskflow.jobs import base
from taskflow.persistence import models

from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import octavia_status as status
from sriov_octavia.worker import persistence

LOG = logging.getLogger(__name__)

REDIS = 'redis_taskflow_driver'
ZOOKEEPER = 'zookeeper_taskflow_driver'
ETCD = 'etcd_taskflow_driver'
# Entry points naming the flow factories (setup.cfg).
FLOWS_NAMESPACE = 'sriov_octavia.flows'


# Most urgent first, as taskflow's JobPriority lists them.
_PRIORITY_RANK = {priority: rank for rank, priority in enumerate(
    (base.JobPriority.VERY_HIGH, base.JobPriority.HIGH,
     base.JobPriority.NORMAL, base.JobPriority.LOW,
     base.JobPriority.VERY_LOW))}


class ExpiringRedisJobBoard(impl_redis.RedisJobBoard):
    """A Redis jobboard whose claims expire unless their owner renews them.

    taskflow's Redis claims live forever unless ``claim`` is given an
    expiry, and its conductors never give one: the job of a worker that
    died would stay claimed for good.
    """

    def _fetch_jobs(self):
        # taskflow lists the newest job of a priority first: under a steady
        # stream of posts the oldest jobs would wait the longest. Oldest
        # first instead.
        return sorted(
            super(ExpiringRedisJobBoard, self)._fetch_jobs(),
            key=lambda job: (_PRIORITY_RANK[job.priority], job.sequence))

    def __init__(self, name, conf, claim_expiry, persistence=None):
        super(ExpiringRedisJobBoard, self).__init__(
            name, conf, persistence=persistence)
        self.claim_expiry = claim_expiry

    def claim(self, job, who, expiry=None):
        if expiry is None:
            expiry = self.claim_expiry
        super(ExpiringRedisJobBoard, self).claim(job, who, expiry=expiry)


def claim_expiry(conf):
    """Seconds a claim lives unless renewed.

    None when the backend ties claims to the owner's session instead
    (ZooKeeper's ephemeral nodes).
    """
    if conf.task_flow.jobboard_backend_driver == ZOOKEEPER:
        return None
    return conf.task_flow.jobboard_expiration_time


def _redis_board(conf, persistence):
    group, name = conf.task_flow, conf.sriov_worker.jobboard_name
    hosts = group.jobboard_backend_hosts
    board_conf = {
        'host': hosts[0],
        'port': group.jobboard_backend_port,
        'db': group.jobboard_redis_backend_db,
        'namespace': name,
    }
    if group.jobboard_backend_username:
        board_conf['username'] = group.jobboard_backend_username
    if group.jobboard_backend_password:
        board_conf['password'] = group.jobboard_backend_password
    if group.jobboard_redis_sentinel:
        board_conf['sentinel'] = group.jobboard_redis_sentinel
        board_conf['sentinel_fallbacks'] = [
            '%s:%d' % (netutils.escape_ipv6(host),
                       group.jobboard_backend_port)
            for host in hosts[1:]]
    return ExpiringRedisJobBoard(name, board_conf,
                                 group.jobboard_expiration_time,
                                 persistence=persistence)


def _zookeeper_board(conf, persistence):
    group, name = conf.task_flow, conf.sriov_worker.jobboard_name
    board_conf = {
        'board': 'zookeeper',
        'hosts': ','.join('%s:%d' % (netutils.escape_ipv6(host),
                                     group.jobboard_backend_port)
                          for host in group.jobboard_backend_hosts),
        'path': '/' + name,
    }
    return job_backends.fetch(name, board_conf,
                              persistence=persistence)


def _etcd_board(conf, persistence):
    group, name = conf.task_flow, conf.sriov_worker.jobboard_name
    board_conf = {
        'board': 'etcd',
        'host': group.jobboard_backend_hosts[0],
        'port': group.jobboard_backend_port,
        'path': name,
        # The etcd board puts every claim on a lease of this many seconds.
        'ttl': group.jobboard_expiration_time,
    }
    return job_backends.fetch(name, board_conf,
                              persistence=persistence)


_BOARDS = {
    REDIS: _redis_board,
    ZOOKEEPER: _zookeeper_board,
    ETCD: _etcd_board,
}


@contextlib.contextmanager
def open_board(conf, persistence_backend):
    """The configured jobboard, connected; closed on exit."""
    board = _BOARDS[conf.task_flow.jobboard_backend_driver](
        conf, persistence_backend)
    board.connect()
    try:
        yield board
    finally:
        board.close()


def jobs_on_board(board):
    """How many jobs the backend holds now, claimed or not.

    Not ``board.job_count``: the ZooKeeper and etcd boards count a local
    cache that a new connection fills in the background, so it reads 0 at
    first.
    """
    return sum(1 for _job in board.iterjobs(ensure_fresh=True))


def job_name(flow_name, store):
    """``"<flow name> <object id>"``: what operators see in the jobboard.

    The object is the one the flow name starts with; a member batch is named
    after its pool and anything else missing falls back to the load balancer.
    """
    object_type = flow_name.split('.', 1)[0]
    if object_type in store and object_type in status.ID_KEYS:
        obj_id = status.object_id(object_type, store[object_type])
    else:
        obj_id = store.get('pool_id') or store['loadbalancer_id']
    return '%s %s' % (flow_name, obj_id)


def post_factory_job(flow_factory, name, store, conf=sriov_conf.CONF,
                     factory_args=None, factory_kwargs=None):
    """Post a job running ``flow_factory(*factory_args, **factory_kwargs)``.

    :param flow_factory: a module-level function returning a taskflow flow;
        it is saved by its import path, so every worker must be able to
        import it.
    :param name: the job name.
    :param store: JSON-serialisable dict the flow's tasks take inputs from.
    :returns: the job's uuid.
    """
    with persistence.backend(conf) as backend:
        book = models.LogBook(name)
        flow_detail = models.FlowDetail(name, uuidutils.generate_uuid())
        # The store lives with the flow state rather than in the jobboard:
        # jobboards keep small postings, the database keeps what resuming
        # needs.
        flow_detail.meta = {'store': store}
        engines.save_factory_details(flow_detail, flow_factory,
                                     factory_args, factory_kwargs)
        book.add(flow_detail)
        with contextlib.closing(backend.get_connection()) as connection:
            connection.save_logbook(book)
        try:
            with open_board(conf, backend) as board:
                job = board.post(name, book=book,
                                 details={'flow_uuid': flow_detail.uuid})
        except Exception:
            # Without a job nobody would ever run or delete this logbook.
            with contextlib.closing(backend.get_connection()) as connection:
                connection.destroy_logbook(book.uuid)
            raise
    LOG.info('Posted job %s (%s).', job.uuid, name)
    return job.uuid


def flow_names():
    """The names of the flows the installed worker code builds.

    Read from the ``sriov_octavia.flows`` entry points without importing
    the flows: octavia-api, which posts the jobs, never loads them.
    """
    return {entry_point.name for entry_point
            in importlib_metadata.entry_points(group=FLOWS_NAMESPACE)}


def build_flow(flow_name, **shape):
    """The flow ``flow_name``, shaped by the flavor facts in ``shape``.

    The factory every job names: taskflow saves it with the job's
    arguments, so the worker that claims or resumes the job rebuilds the
    same flow.
    """
    factory = stevedore_driver.DriverManager(FLOWS_NAMESPACE,
                                             flow_name).driver
    return factory(**shape)


def flow_shape(flavor):
    """What of a flavor decides a flow's shape: its factory's arguments."""
    return {'topology': flavor.get(sriov_flavor.LOADBALANCER_TOPOLOGY),
            'sriov_vip': bool(flavor.get(sriov_flavor.SRIOV_VIP))}


def post_job(flow_name, store, conf=sriov_conf.CONF):
    """Post the flow ``flow_name``, shaped by ``store['flavor']``.

    :returns: the job id, without waiting for a worker.
    :raises ValueError: the flow name is unknown.
    """
    known = flow_names()
    if flow_name not in known:
        message = 'Unknown flow %r; known flows: %s' % (
            flow_name, ', '.join(sorted(known)))
        raise ValueError(message)
    return post_factory_job(build_flow, job_name(flow_name, store), store,
                            conf=conf, factory_args=[flow_name],
                            factory_kwargs=flow_shape(
                                store.get('flavor') or {}))
