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

from unittest import mock

from oslo_config import cfg
import pytest
from taskflow.jobs.backends import impl_redis

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import jobboard


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([], project='octavia')
    return conf


def test_defaults_follow_octavia(conf):
    # Where the jobboard is: Octavia's own [task_flow] options.
    assert conf.task_flow.jobboard_backend_driver == 'redis_taskflow_driver'
    assert conf.task_flow.jobboard_backend_hosts == ['127.0.0.1']
    assert conf.task_flow.jobboard_backend_port == 6379
    # A board of its own beside Octavia's.
    group = conf.sriov_worker
    assert group.jobboard_name == 'sriov_octavia_jobboard'
    assert group.jobboard_name != conf.task_flow.jobboard_backend_namespace
    assert group.status_socket_path == '/var/run/octavia/status.sock'
    assert group.stats_socket_path == '/var/run/octavia/stats.sock'
    assert group.get_socket_path == '/var/run/octavia/get.sock'


def test_unknown_backend_is_rejected(conf):
    with pytest.raises(ValueError):
        conf.set_override('jobboard_backend_driver', 'rabbit',
                          group='task_flow')


def test_job_name_is_flow_and_object():
    assert jobboard.job_name('listener.create', {
        'listener': {'listener_id': 'l-1'},
        'loadbalancer_id': 'lb-1'}) == 'listener.create l-1'
    assert jobboard.job_name('health_monitor.delete', {
        'health_monitor': {'healthmonitor_id': 'hm-1'},
        'loadbalancer_id': 'lb-1'}) == 'health_monitor.delete hm-1'
    assert jobboard.job_name('member.batch_update', {
        'members': [], 'pool_id': 'p-1',
        'loadbalancer_id': 'lb-1'}) == 'member.batch_update p-1'


def test_redis_board_claims_expire(conf):
    conf.set_override('jobboard_expiration_time', 42, group='task_flow')
    conf.set_override('jobboard_backend_hosts', ['192.0.2.1', '192.0.2.2'],
                      group='task_flow')
    conf.set_override('jobboard_redis_sentinel', 'mymaster',
                      group='task_flow')
    board = jobboard._redis_board(conf, None)
    assert board.claim_expiry == 42
    assert board._conf['sentinel'] == 'mymaster'
    assert board._conf['sentinel_fallbacks'] == ['192.0.2.2:6379']
    with mock.patch.object(impl_redis.RedisJobBoard, 'claim') as claim:
        board.claim('job', 'me')
        board.claim('job', 'me', expiry=7)
    assert claim.call_args_list == [mock.call('job', 'me', expiry=42),
                                    mock.call('job', 'me', expiry=7)]
    assert jobboard.claim_expiry(conf) == 42


@pytest.mark.parametrize('driver,expected,expiry', [
    ('zookeeper_taskflow_driver',
     {'board': 'zookeeper', 'hosts': '192.0.2.1:2181,[2001:db8::1]:2181',
      'path': '/sriov_octavia_jobboard'}, None),
    ('etcd_taskflow_driver',
     {'board': 'etcd', 'host': '192.0.2.1', 'port': 2181,
      'path': 'sriov_octavia_jobboard', 'ttl': 30}, 30),
])
def test_other_boards(conf, driver, expected, expiry):
    conf.set_override('jobboard_backend_driver', driver, group='task_flow')
    conf.set_override('jobboard_backend_hosts', ['192.0.2.1', '2001:db8::1'],
                      group='task_flow')
    conf.set_override('jobboard_backend_port', 2181, group='task_flow')
    with mock.patch('taskflow.jobs.backends.fetch') as fetch:
        with jobboard.open_board(conf, 'persistence') as board:
            assert board is fetch.return_value
    fetch.assert_called_once_with('sriov_octavia_jobboard', expected,
                                  persistence='persistence')
    board.connect.assert_called_once_with()
    board.close.assert_called_once_with()
    assert jobboard.claim_expiry(conf) == expiry


def test_unknown_flow_is_refused(conf):
    with pytest.raises(ValueError, match='listener.create'):
        jobboard.post_job('listener.explode', {'loadbalancer_id': 'lb'},
                          conf=conf)
