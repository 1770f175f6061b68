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
"""Which orphans the worker removes, and when; what agents' repairs say.

The cloud is a fake holding servers, groups and ports; Octavia's database
is the set of load balancer ids it still has.
"""

import datetime
import logging
import threading
import types
from unittest import mock

from openstack import exceptions as os_exceptions
import pytest

from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import naming
from sriov_octavia import octavia_db
from sriov_octavia.worker import housekeeping

GONE = '0b8c1c43-1f3e-4c5e-9d0a-6f7e8d9c0b1a'
LIVE = '1c9d2d54-2a4f-4d6f-8e1b-7a8f9e0d1c2b'
NETWORK = '2d0e3e65-3b5a-4e7a-9f2c-8b9a0f1e2d3c'
GRACE = 60
NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
OLD = (NOW - datetime.timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%SZ')


def item(item_id, name, created_at=OLD, **extra):
    return types.SimpleNamespace(id=item_id, name=name, created_at=created_at,
                                 **extra)


def server(server_id, lb_id, role='MASTER', status='ACTIVE', **extra):
    metadata = {naming.META_LOADBALANCER: lb_id, naming.META_ROLE: role,
                naming.META_AMPHORA_ID: f'amp-{server_id}'}
    return item(server_id, naming.server_name(lb_id, role), status=status,
                metadata=metadata, task_state=None, **extra)


class FakeCloud:
    """Nova and Neutron as listings, and the deletions asked of them."""

    def __init__(self):
        self.servers, self.groups, self.security_groups = [], [], []
        self.ports = []
        self.deleted = []
        self.refuse = set()
        self.compute = mock.Mock()
        self.compute.servers.side_effect = lambda **kw: list(self.servers)
        self.compute.server_groups.side_effect = lambda: list(self.groups)
        self.network = mock.Mock()
        self.network.ports.side_effect = lambda **kw: list(self.ports)
        self.network.security_groups.side_effect = (
            lambda **kw: list(self.security_groups))
        self.current_project_id = 'service'
        for proxy, method, kind in (
                (self.compute, 'delete_server', housekeeping.SERVER),
                (self.compute, 'delete_server_group',
                 housekeeping.SERVER_GROUP),
                (self.network, 'delete_security_group',
                 housekeeping.SECURITY_GROUP),
                (self.network, 'delete_port', 'port')):
            getattr(proxy, method).side_effect = self._deleter(kind)

    def _deleter(self, kind):
        def delete(resource_id, ignore_missing=False):
            # Another worker or a delete flow may have been quicker.
            assert ignore_missing
            if resource_id in self.refuse:
                raise os_exceptions.ConflictException('in use')
            self.deleted.append((kind, resource_id))
        return delete

    def add_everything(self, lb_id, prefix, role='MASTER'):
        """Every kind of resource the provider makes for ``lb_id``."""
        self.servers.append(server(f'{prefix}-server', lb_id, role))
        self.groups.append(item(f'{prefix}-group',
                                naming.server_group_name(lb_id),
                                created_at=None, member_ids=[]))
        self.security_groups.append(item(
            f'{prefix}-sg', naming.security_group_name(lb_id)))
        self.ports.extend([
            item(f'{prefix}-vrrp', naming.vrrp_port_name(lb_id, role)),
            item(f'{prefix}-vrrp-new',
                 naming.replacement_vrrp_port_name(lb_id, role)),
            item(f'{prefix}-member',
                 naming.member_port_name(lb_id, role, NETWORK))])


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeCloud()
    monkeypatch.setattr(clients, 'connection', lambda *args: fake)
    return fake


@pytest.fixture
def octavia(monkeypatch):
    """The load balancers Octavia has; the ids each lookup asked for."""
    db = types.SimpleNamespace(existing={LIVE}, asked=[])

    def existing(ids):
        db.asked.append(set(ids))
        return set(ids) & db.existing

    monkeypatch.setattr(octavia_db, 'existing_load_balancer_ids', existing)
    return db


@pytest.fixture
def clock():
    return types.SimpleNamespace(monotonic=1000.0, wall=NOW)


@pytest.fixture
def keeper(conf, clock, cloud, octavia):
    conf.config(orphan_grace_period=GRACE, group='sriov_worker')
    return housekeeping.Housekeeper(
        sriov_conf.CONF, clock=lambda: clock.monotonic,
        now=lambda: clock.wall)


def later(clock, seconds):
    clock.monotonic += seconds
    clock.wall += datetime.timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def no_agents(monkeypatch):
    """Amphorae without an address: no agent is asked unless a test says."""
    monkeypatch.setattr(amphorae, 'server_agent', lambda *args: None)


# Orphans ------------------------------------------------------------------

def test_orphans_go_once_seen_orphaned_for_the_grace_period(
        keeper, cloud, clock, caplog):
    cloud.add_everything(GONE, 'gone')
    caplog.set_level(logging.INFO, logger=housekeeping.__name__)

    first = keeper.run_once()
    later(clock, GRACE - 1)
    second = keeper.run_once()
    later(clock, 1)
    third = keeper.run_once()

    assert (first['removed'], second['removed']) == (0, 0)
    assert first['waiting'] == 6
    assert third == {'orphans': 6, 'removed': 6, 'waiting': 0,
                     'firewall_repairs': 0}
    # Servers before the ports plugged into them, ports before the
    # security group on them, the server group last.
    assert cloud.deleted == [
        (housekeeping.SERVER, 'gone-server'), ('port', 'gone-vrrp'),
        ('port', 'gone-vrrp-new'), ('port', 'gone-member'),
        (housekeeping.SECURITY_GROUP, 'gone-sg'),
        (housekeeping.SERVER_GROUP, 'gone-group')]
    logged = [record.getMessage() for record in caplog.records
              if record.getMessage().startswith('Removed orphaned')]
    assert logged[1] == (
        f'Removed orphaned VRRP port gone-vrrp '
        f'({naming.vrrp_port_name(GONE, "MASTER")}) of load balancer '
        f'{GONE}, which Octavia no longer has')
    assert len(logged) == 6
    assert keeper.removed == {housekeeping.SERVER: 1,
                              housekeeping.VRRP_PORT: 2,
                              housekeeping.MEMBER_PORT: 1,
                              housekeeping.SECURITY_GROUP: 1,
                              housekeeping.SERVER_GROUP: 1}


def test_nothing_of_a_load_balancer_octavia_has_is_touched(
        keeper, cloud, clock, octavia):
    cloud.add_everything(LIVE, 'live')
    cloud.add_everything(GONE, 'gone', role='BACKUP')
    for _ in range(3):
        keeper.run_once()
        later(clock, GRACE)
    assert cloud.deleted
    assert not [resource_id for _, resource_id in cloud.deleted
                if resource_id.startswith('live')]
    # One lookup a round, for every load balancer found.
    assert octavia.asked == [{LIVE, GONE}] * 3


def test_a_resource_younger_than_the_grace_period_stays(keeper, cloud,
                                                        clock):
    young = (NOW - datetime.timedelta(seconds=10)).isoformat()
    cloud.ports.append(item('young', naming.vrrp_port_name(GONE, 'MASTER'),
                            created_at=young))
    keeper.run_once()
    later(clock, GRACE - 11)
    # Seen orphaned long enough, but only 59 s old.
    later(clock, 10)
    keeper.run_once()
    assert cloud.deleted == []
    later(clock, 1)
    keeper.run_once()
    assert cloud.deleted == [('port', 'young')]


def test_a_load_balancer_appearing_protects_and_restarts_the_wait(
        keeper, cloud, clock, octavia):
    """A create in flight: its ports exist before Octavia's row."""
    cloud.ports.append(item('early', naming.vrrp_port_name(GONE, 'MASTER')))
    keeper.run_once()
    octavia.existing.add(GONE)
    later(clock, GRACE)
    keeper.run_once()
    octavia.existing.discard(GONE)
    # Orphaned again from here: the grace period starts over.
    keeper.run_once()
    later(clock, GRACE - 1)
    keeper.run_once()
    assert cloud.deleted == []
    later(clock, 1)
    keeper.run_once()
    assert cloud.deleted == [('port', 'early')]


def test_a_server_group_waits_for_its_servers_to_go(keeper, cloud, clock):
    cloud.servers.append(server('orphan', GONE))
    cloud.groups.append(item('group', naming.server_group_name(GONE),
                             created_at=None, member_ids=['orphan']))
    keeper.run_once()
    later(clock, GRACE)
    keeper.run_once()
    assert cloud.deleted == [(housekeeping.SERVER, 'orphan')]
    # Nova has taken the server out of the group.
    cloud.servers.clear()
    cloud.groups[0].member_ids = []
    keeper.run_once()
    assert cloud.deleted[-1] == (housekeeping.SERVER_GROUP, 'group')


def test_a_security_group_in_use_is_tried_again(keeper, cloud, clock):
    cloud.security_groups.append(item('sg', naming.security_group_name(
        GONE)))
    cloud.refuse.add('sg')
    keeper.run_once()
    later(clock, GRACE)
    assert keeper.run_once()['removed'] == 0
    cloud.refuse.clear()
    assert keeper.run_once()['removed'] == 1


def test_what_is_not_ours_is_never_considered(keeper, cloud, clock,
                                              octavia):
    amphora_id = '3e1f4f76-4c6b-4f8b-8a3d-9c0b1a2f3e4d'
    cloud.servers.append(item('plain', f'amphora-{amphora_id}',
                              status='ACTIVE', metadata={},
                              task_state=None))
    cloud.ports.extend([
        # Octavia's own amphora provider: per amphora, and the VIP port.
        item('upstream-vrrp', f'octavia-lb-vrrp-{amphora_id}'),
        item('vip', f'octavia-lb-{GONE}'),
        item('user', 'my-port'),
        item('unnamed', None)])
    cloud.servers.append(server('deleting', GONE))
    cloud.servers[-1].task_state = 'deleting'
    for _ in range(2):
        keeper.run_once()
        later(clock, GRACE)
    assert cloud.deleted == []
    assert octavia.asked == [set(), set()]


def test_each_worker_takes_its_share(conf, cloud, clock, octavia):
    conf.config(orphan_grace_period=0, group='sriov_worker')
    other = '4f2a5a87-5d7c-4a9c-9b4e-0d1c2b3a4f5e'
    cloud.add_everything(GONE, 'gone')
    cloud.add_everything(other, 'other')
    group = mock.Mock()
    group.owned.side_effect = lambda ids: set(ids) & {GONE}
    keeper = housekeeping.Housekeeper(sriov_conf.CONF, group,
                                      clock=lambda: clock.monotonic,
                                      now=lambda: clock.wall)
    keeper.run_once()
    assert octavia.asked == [{GONE}]
    assert {resource_id.split('-')[0]
            for _, resource_id in cloud.deleted} == {'gone'}


def test_the_service_project_filters_neutron_listings(keeper, cloud):
    keeper.run_once()
    cloud.network.ports.assert_called_once_with(project_id='service')
    cloud.network.security_groups.assert_called_once_with(
        project_id='service')


# Firewall repairs the agents report ---------------------------------------

class Agent:
    def __init__(self, counters):
        self.counters = counters

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get_counters(self):
        if isinstance(self.counters, Exception):
            raise self.counters
        return self.counters


def repairs(count):
    return {'interfaces': {}, 'repairs': {
        'count': count, 'failed': 0,
        'last_repair_at': '2026-03-01T11:59:00+00:00',
        'last_difference': 'chain in_eth1: unexpected rule at 1: '
                           '[{"accept":null}]'}}


def test_new_repairs_are_logged_once(keeper, cloud, monkeypatch, caplog):
    cloud.servers.extend([server('one', LIVE), server('two', LIVE, 'BACKUP'),
                          server('old', LIVE, 'BACKUP'),
                          server('down', LIVE, 'BACKUP')])
    answers = {'one': repairs(0), 'two': repairs(2),
               # An agent that counts no repairs, one that does not answer.
               'old': {'interfaces': {}}, 'down': OSError('unreachable')}
    monkeypatch.setattr(amphorae, 'server_agent',
                        lambda conn, srv, conf: Agent(answers[srv.id]))
    caplog.set_level(logging.WARNING, logger=housekeeping.__name__)

    assert keeper.run_once()['firewall_repairs'] == 2
    assert keeper.run_once()['firewall_repairs'] == 0
    answers['one'] = repairs(1)
    assert keeper.run_once()['firewall_repairs'] == 1

    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith(
        f'Amphora amp-two (server two) of load balancer {LIVE}: its agent '
        f'found its firewall changed and repaired it 2 more time(s) (2 '
        f'counted; last at 2026-03-01T11:59:00+00:00: chain in_eth1: ')
    assert 'repaired it 1 more time(s) (1 counted' in messages[1]
    assert keeper.firewall_repairs == 3


def test_orphaned_servers_agents_are_not_asked(keeper, cloud, monkeypatch):
    cloud.servers.append(server('orphan', GONE))
    asked = []
    monkeypatch.setattr(amphorae, 'server_agent',
                        lambda conn, srv, conf: asked.append(srv.id))
    keeper.run_once()
    assert asked == []


# The loop -----------------------------------------------------------------

def test_the_loop_is_off_without_an_interval(conf, monkeypatch):
    conf.config(cleanup_interval=0, group='house_keeping')
    monkeypatch.setattr(housekeeping.Housekeeper, 'run_once',
                        mock.Mock(side_effect=AssertionError))
    housekeeping.run(sriov_conf.CONF, threading.Event())


def test_a_failed_round_does_not_end_the_loop(conf, monkeypatch):
    conf.config(cleanup_interval=1, group='house_keeping')
    stop = threading.Event()
    rounds = []

    def run_once(self):
        rounds.append(1)
        if len(rounds) == 2:
            stop.set()
        raise RuntimeError('Octavia database unreachable')

    monkeypatch.setattr(housekeeping.Housekeeper, 'run_once', run_once)
    monkeypatch.setattr(stop, 'wait', lambda timeout: stop.is_set())
    housekeeping.run(sriov_conf.CONF, stop)
    assert len(rounds) == 2
