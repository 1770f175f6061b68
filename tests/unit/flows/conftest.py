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
"""Fixtures of the load balancer flow task tests: a fake cloud, options."""

import contextlib
import copy
import re
from unittest import mock

from openstack import exceptions as os_exceptions
from oslo_config import cfg
import pytest
from taskflow import engines
from taskflow import exceptions as tf_exceptions

from flows.tasks import compute
from flows.tasks import member_ports
from sriov_octavia.amphora import client as agent_client
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia.worker import jobboard
from tests.unit.flows import fake_cloud

LB_ID = 'lb-0001'
# What GET /info of an agent answers (the engine's keys).
AGENT_INFO = {'haproxy_version': '2.6.12',
              'haproxy_base_path': '/var/lib/amphora-agent/haproxy',
              'vrrp_check_script': '/var/lib/amphora-agent/vrrp-check'}
# The one listener and pool of the member tests' load balancer.
POOL = {'pool_id': 'p-1', 'protocol': 'TCP', 'members': [],
        'healthmonitor': None}
LISTENER = {'listener_id': 'l-1', 'protocol': 'TCP', 'protocol_port': 80,
            'default_pool_id': 'p-1'}


@pytest.fixture
def cloud(monkeypatch):
    """The fake cloud every ``clients.connection()`` returns."""
    fake = fake_cloud.FakeCloud()
    monkeypatch.setattr(compute, 'POLL_INTERVAL', 0)
    with mock.patch('sriov_octavia.clients.connection', return_value=fake):
        yield fake


@pytest.fixture
def reporter():
    """The StatusReporter the flows report to (a mock)."""
    with mock.patch('sriov_octavia.octavia_status.StatusReporter') as cls:
        yield cls.return_value


@pytest.fixture
def no_engine():
    """No haproxy, L4 or keepalived configuration pushed to the agents."""
    with mock.patch('flows.tasks.engine.push_haproxy'), \
            mock.patch('flows.tasks.engine.push_l4'), \
            mock.patch('flows.tasks.engine.configure_vrrp'):
        yield


@pytest.fixture
def agents(worker_conf):
    """One mock agent per management IP, as AgentClient.from_conf gives."""
    clients = {}

    def new_client(mgmt_ip, *args, **kwargs):
        agent = clients.setdefault(mgmt_ip, mock.MagicMock())
        agent.__enter__.return_value = agent
        agent.plug_vip.return_value = {'name': 'eth1'}
        agent.wait_for_interface.return_value = {'name': 'eth1'}
        agent.get_info.return_value = AGENT_INFO
        # An amphora without UDP or SCTP listeners holds no L4 document.
        agent.get_l4_config.return_value = None
        return agent

    with mock.patch.object(agent_client.AgentClient, 'from_conf',
                           side_effect=new_client):
        yield clients


@pytest.fixture
def worker_conf(controller_ca):
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    for group in ('controller_worker', 'certificates'):
        conf.import_group(group, 'octavia.common.config')
    overrides = (('amp_boot_network_list', [fake_cloud.MGMT_NET],
                  'controller_worker'),
                 ('amp_active_retries', 3, 'controller_worker'),
                 ('amp_active_wait_sec', 1, 'controller_worker'),
                 ('client_ca', controller_ca, 'controller_worker'),
                 ('ca_certificate', controller_ca, 'certificates'),
                 ('ca_private_key', controller_ca + '.key', 'certificates'))
    for name, value, group in overrides:
        conf.set_override(name, value, group=group)
    yield conf
    for name, _, group in overrides:
        conf.clear_override(name, group=group)


def make_flavor(topology=sriov_flavor.TOPOLOGY_SINGLE, sriov_vip=True):
    return {sriov_flavor.LOADBALANCER_TOPOLOGY: topology,
            sriov_flavor.COMPUTE_FLAVOR: fake_cloud.COMPUTE_FLAVOR,
            sriov_flavor.AMP_IMAGE_TAG: fake_cloud.IMAGE_TAG,
            sriov_flavor.SRIOV_VIP: sriov_vip,
            sriov_flavor.ALLOW_MEMBER_SRIOV: False,
            sriov_flavor.SRIOV_VNIC_TYPE: sriov_flavor.VNIC_TYPE_DIRECT}


def make_loadbalancer(additional_vips=()):
    return {'loadbalancer_id': LB_ID, 'vip_address': '203.0.113.5',
            'vip_network_id': fake_cloud.VIP_NET,
            'vip_subnet_id': fake_cloud.VIP_SUBNET,
            'vip_port_id': 'vip-port',
            'additional_vips': list(additional_vips)}


def build_flow(flow_name, flavor=None):
    """The flow as the worker builds it for ``flavor``."""
    return jobboard.build_flow(flow_name, **jobboard.flow_shape(flavor or {}))


def run_flow(flow_name, store):
    """Run the flow shaped by the store's flavor, as the worker does."""
    engines.run(build_flow(flow_name, store.get('flavor')), store=store)


def flow_tasks(flow):
    """The flow's tasks in order, those of nested flows included."""
    found = []
    for node, _meta in flow.iter_nodes():
        found.extend(flow_tasks(node) if hasattr(node, 'iter_nodes')
                     else [node])
    return found


@contextlib.contextmanager
def raises(exc_type, match):
    """``pytest.raises`` for a flow whose amphorae fail side by side.

    Both amphorae of ACTIVE_STANDBY failing at once is reported as one
    WrappedFailure; every failure in it must be ``exc_type``.
    """
    with pytest.raises((exc_type, tf_exceptions.WrappedFailure)) as raised:
        yield raised
    causes = ([failure.exception for failure in raised.value]
              if isinstance(raised.value, tf_exceptions.WrappedFailure)
              else [raised.value])
    for cause in causes:
        assert isinstance(cause, exc_type), causes
        assert re.search(match, str(cause)), causes


def create_lb(reporter, agents, flavor):
    """Run the create flow for ``flavor``; forget what it reported."""
    run_flow('loadbalancer.create', store={
        'loadbalancer': make_loadbalancer(), 'loadbalancer_id': LB_ID,
        'flavor': flavor, 'availability_zone': {}})
    # What the tests look at is what the flows after it did.
    reporter.reset_mock()
    for agent in agents.values():
        agent.reset_mock()
    return flavor


def octavia_lb(members=()):
    """The member tests' load balancer as the driver-agent returns it."""
    return dict(make_loadbalancer(), listeners=[LISTENER],
                pools=[dict(POOL, members=copy.deepcopy(list(members)))])


def create_member_lb(reporter, agents, topology, allow_member_sriov):
    """Create a load balancer whose agents plug member ports as eth2."""
    flavor = make_flavor(topology)
    flavor[sriov_flavor.ALLOW_MEMBER_SRIOV] = allow_member_sriov
    create_lb(reporter, agents, flavor)
    for agent in agents.values():
        agent.plug_network.return_value = {'name': 'eth2'}
    return flavor


def last_update(reporter):
    """What the flows last reported to Octavia."""
    return reporter.update_status.call_args.args[0]


def member_ports_in(cloud, network_id=None):
    """The member ports in ``cloud`` (on ``network_id``), by name."""
    return sorted((port for port in cloud.network.ports_by_id.values()
                   if (port.name or '').startswith('octavia-lb-member-') and
                   network_id in (None, port.network_id)),
                  key=lambda port: port.name)


def attached(cloud):
    """``{port id: server id}`` of every interface Nova holds."""
    return {interface.port_id: server_id
            for server_id, interfaces in cloud.compute.interfaces.items()
            for interface in interfaces}


@contextlib.contextmanager
def failing_attach(cloud, message):
    """Nova refuses to attach interfaces, saying ``message``.

    What runs inside must fail with MemberPortError and leave no member
    port and no interface behind.
    """
    attached_before = attached(cloud)
    cloud.compute.attach_error = os_exceptions.BadRequestException(message)
    with pytest.raises(member_ports.MemberPortError):
        yield
    assert member_ports_in(cloud) == []
    assert attached(cloud) == attached_before


def assert_firewalls_admit(agents, *members):
    """Every agent's firewall was last set to admit ``members``."""
    for agent in agents.values():
        body = agent.set_security_group.call_args.args[0]
        assert body['members'] == list(members)
