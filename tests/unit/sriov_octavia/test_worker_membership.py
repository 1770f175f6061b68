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
"""Where the health group lives: the jobboard's backend, unless told."""

from urllib import parse

from oslo_config import cfg
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import membership


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([], project='octavia')
    conf.set_override('jobboard_backend_hosts', ['192.0.2.10', '2001:db8::2'],
                      group='task_flow')
    conf.set_override('jobboard_backend_port', 6379, group='task_flow')
    return conf


def test_redis_url_carries_credentials_db_and_a_namespace(conf):
    conf.set_override('jobboard_backend_username', 'octavia',
                      group='task_flow')
    conf.set_override('jobboard_backend_password', 'p@ss/word',
                      group='task_flow')
    conf.set_override('jobboard_redis_backend_db', 3, group='task_flow')
    url = parse.urlsplit(membership.coordination_url(conf))
    assert (url.scheme, url.hostname, url.port) == ('redis', '192.0.2.10',
                                                    6379)
    assert parse.unquote(url.password) == 'p@ss/word'
    query = dict(parse.parse_qsl(url.query))
    assert query == {'db': '3', 'namespace': 'sriov_octavia_jobboard_health',
                     'membership_timeout': '30'}


def test_zookeeper_url_names_every_host(conf):
    conf.set_override('jobboard_backend_driver', 'zookeeper_taskflow_driver',
                      group='task_flow')
    conf.set_override('jobboard_backend_port', 2181, group='task_flow')
    assert membership.coordination_url(conf).startswith(
        'kazoo://192.0.2.10:2181,[2001:db8::2]:2181?')


def test_etcd_url(conf):
    conf.set_override('jobboard_backend_driver', 'etcd_taskflow_driver',
                      group='task_flow')
    conf.set_override('jobboard_backend_port', 2379, group='task_flow')
    assert membership.coordination_url(conf) == (
        'etcd3+http://192.0.2.10:2379?timeout=30')


def test_an_explicit_url_wins(conf):
    conf.set_override('coordination_url', 'file:///var/lib/octavia/tooz',
                      group='sriov_worker')
    assert membership.coordination_url(conf) == (
        'file:///var/lib/octavia/tooz')
