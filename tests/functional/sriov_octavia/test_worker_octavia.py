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
"""The worker inside the real octavia-driver-agent, seen through the real
Octavia API.

The testbed runs octavia-api with this provider and octavia-driver-agent
with the amphora-sriov provider agent (our worker) on a real redis-server.
Load balancer flows do not exist yet, so the test puts an ACTIVE load
balancer into Octavia's database; everything after that goes through the
API as a user would do it: each call leaves the object PENDING, the worker
runs the job, and the status the API shows comes back through the
driver-agent's status socket.
"""

import time

from octavia.common import constants
from octavia.db import repositories
from oslo_utils import uuidutils
import pytest
import sqlalchemy
from sqlalchemy import orm

pytestmark = pytest.mark.services

PROJECT = 'b' * 32


@pytest.fixture(scope='module')
def testbed(testbed_factory):
    # Only what listener/pool/member operations need.
    return testbed_factory(port_base=59000, prefix='twk', seed=False,
                           skip=('neutron', 'nova'))


@pytest.fixture(scope='module')
def cloud(testbed):
    conn = testbed.connect()
    yield conn
    conn.close()


@pytest.fixture
def loadbalancer_id(testbed):
    """An ACTIVE load balancer of this provider, straight in Octavia's DB."""
    lb_id = uuidutils.generate_uuid()
    engine = sqlalchemy.create_engine(
        'sqlite:///' + testbed.path('octavia', 'octavia.sqlite'))
    try:
        with orm.Session(engine) as session, session.begin():
            repositories.Repositories().create_load_balancer_and_vip(
                session,
                {'id': lb_id, 'name': 'twk-lb', 'project_id': PROJECT,
                 'provider': 'amphora-sriov', 'enabled': True,
                 'provisioning_status': constants.ACTIVE,
                 'operating_status': constants.ONLINE,
                 'topology': constants.TOPOLOGY_SINGLE},
                {'ip_address': '203.0.113.20',
                 'port_id': uuidutils.generate_uuid(),
                 'subnet_id': uuidutils.generate_uuid(),
                 'network_id': uuidutils.generate_uuid()}, [])
    finally:
        engine.dispose()
    return lb_id


def _wait_for(read, expected, what, timeout=120):
    # Bounded so that a broken worker fails the test; no time is asserted.
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    assert value == expected, '%s: %r' % (what, value)


def _status(getter, obj_id):
    return getter(obj_id).provisioning_status


def test_listener_pool_member_lifecycle_through_the_api(cloud,
                                                        loadbalancer_id):
    lb = cloud.load_balancer

    def lb_is_back(after):
        # The driver-agent writes the load balancer's status last, in a
        # transaction of its own: until then the API refuses changes.
        _wait_for(lambda: _status(lb.get_load_balancer, loadbalancer_id),
                  'ACTIVE', 'load balancer after ' + after)

    listener = lb.create_listener(loadbalancer_id=loadbalancer_id,
                                  protocol='TCP', protocol_port=80,
                                  project_id=PROJECT)
    _wait_for(lambda: _status(lb.get_listener, listener.id), 'ACTIVE',
              'listener')
    lb_is_back('listener create')

    pool = lb.create_pool(listener_id=listener.id, protocol='TCP',
                          lb_algorithm='ROUND_ROBIN', project_id=PROJECT)
    _wait_for(lambda: _status(lb.get_pool, pool.id), 'ACTIVE', 'pool')
    _wait_for(lambda: _status(lb.get_listener, listener.id), 'ACTIVE',
              'listener after pool create')
    lb_is_back('pool create')

    member = lb.create_member(pool.id, address='203.0.113.30',
                              protocol_port=8080, project_id=PROJECT)
    _wait_for(lambda: _status(lambda i: lb.get_member(i, pool.id),
                              member.id), 'ACTIVE', 'member')
    # The API locked the pool and its listener for the member: both back.
    _wait_for(lambda: _status(lb.get_pool, pool.id), 'ACTIVE',
              'pool after member create')
    _wait_for(lambda: _status(lb.get_listener, listener.id), 'ACTIVE',
              'listener after member create')
    lb_is_back('member create')

    lb.update_member(member.id, pool.id, weight=5)
    _wait_for(lambda: lb.get_member(member.id, pool.id).weight, 5,
              'member weight')
    _wait_for(lambda: _status(lambda i: lb.get_member(i, pool.id),
                              member.id), 'ACTIVE', 'member after update')
    lb_is_back('member update')

    lb.delete_member(member.id, pool.id)
    _wait_for(lambda: [m.id for m in lb.members(pool.id)], [],
              'members after delete')
    lb_is_back('member delete')
