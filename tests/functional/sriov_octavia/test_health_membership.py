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
"""The health group on a real Redis: every load balancer checked once."""

import os
import signal
import subprocess
import sys

from oslo_config import cfg
from oslo_utils import uuidutils
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import membership
from tests.functional.sriov_octavia import worker_fixtures

REDIS_PORT = 62391
LOADBALANCERS = [uuidutils.generate_uuid() for _n in range(300)]


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    yield from worker_fixtures.private_redis(tmp_path_factory, REDIS_PORT)


@pytest.fixture
def conf(redis_server):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf.set_override('jobboard_backend_hosts', ['127.0.0.1'],
                      group='task_flow')
    conf.set_override('jobboard_backend_port', REDIS_PORT, group='task_flow')
    conf.set_override('jobboard_name', uuidutils.generate_uuid()[:8],
                      group='sriov_worker')
    # Memberships expire after 5 s.
    conf.set_override('health_interval', 1, group='sriov_worker')
    conf([], project='octavia')
    return conf


@pytest.fixture
def groups(conf):
    made = []

    def join(name):
        group = membership.HealthGroup(name, conf)
        group.members()
        made.append(group)
        return group

    yield join
    for group in made:
        group.leave()


def shares(groups_):
    members = groups_[0].members()
    return [group.owned(LOADBALANCERS, members) for group in groups_]


def assert_partition(owned):
    assert set().union(*owned) == set(LOADBALANCERS)
    assert sum(len(share) for share in owned) == len(LOADBALANCERS)


def test_members_share_every_load_balancer_once(groups):
    workers = [groups(f'worker-{n}') for n in range(3)]
    owned = shares(workers)
    assert_partition(owned)
    # Consistent hashing: each takes a share, none takes everything.
    assert all(30 < len(share) < 200 for share in owned), [
        len(share) for share in owned]


def test_a_member_that_leaves_hands_its_share_to_the_others(groups):
    workers = [groups(f'worker-{n}') for n in range(3)]
    before = shares(workers)
    workers[2].leave()
    after = shares(workers[:2])
    assert_partition(after)
    # Only the leaver's load balancers moved.
    assert before[0] <= after[0] and before[1] <= after[1]


def test_a_killed_member_drops_out_when_its_membership_expires(conf, groups):
    survivor = groups('survivor')
    code = (
        'import sys, time\n'
        'from oslo_config import cfg\n'
        'from sriov_octavia import conf as sriov_conf\n'
        'from sriov_octavia.worker import membership\n'
        'conf = cfg.ConfigOpts(); sriov_conf.register_opts(conf)\n'
        f'conf.set_override("jobboard_backend_hosts", ["127.0.0.1"], '
        f'group="task_flow")\n'
        f'conf.set_override("jobboard_backend_port", {REDIS_PORT}, '
        f'group="task_flow")\n'
        f'conf.set_override("jobboard_name", '
        f'"{conf.sriov_worker.jobboard_name}", group="sriov_worker")\n'
        'conf.set_override("health_interval", 1, group="sriov_worker")\n'
        'conf([], project="octavia")\n'
        'membership.HealthGroup("doomed", conf).members()\n'
        'print("joined", flush=True)\n'
        'time.sleep(600)\n')
    doomed = subprocess.Popen([sys.executable, '-c', code],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert doomed.stdout.readline().strip() == 'joined'
        assert b'doomed' in survivor.members()
        assert survivor.owned(LOADBALANCERS) != set(LOADBALANCERS)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        worker_fixtures._wait_until(
            lambda: b'doomed' not in survivor.members(),
            'the killed member to drop out', timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
    assert survivor.owned(LOADBALANCERS) == set(LOADBALANCERS)


def test_overdue_counts_add_up_over_the_group(groups):
    first, second = groups('first'), groups('second')
    assert first.fleet_overdue(2) == 2
    assert second.fleet_overdue(3) == 5
    assert first.fleet_overdue(0) == 3
