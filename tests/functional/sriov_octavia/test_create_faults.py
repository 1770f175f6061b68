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
"""Faults at every step of a load balancer create (and delete).

Whatever step fails, the cloud must hold nothing of the load balancer but
its VIP port (which the load balancer in ERROR keeps until it is deleted),
and the load balancer must end in ERROR. Two complementary ways:

- Realistic faults through the real ``openstack`` CLI, octavia-api and the
  worker inside the real octavia-driver-agent: VFs exhausted when the VRRP
  port is attached, a failing hypervisor at boot, amphora agents cut off,
  Neutron refusing a port over the project's quota. (No valid host and a
  failing attach are in test_loadbalancer_flows.py.)
- Every task of ``flows.loadbalancer.create_flow()`` for both topologies
  (and ``delete_flow()``) in turn, enumerated from the flows themselves so
  that a task added later is covered too: the flow runs in this process
  against the same real Neutron, compute emulator and amphora agents, and
  the task fails right after its real work, so its own revert and every
  earlier one must clean up. The status reports go to a stand-in of the
  driver-agent's sockets. A revert that fails in turn (the cloud
  unreachable during the undo) must not stop the reverts before it.
"""

import configparser
import contextlib
import functools
import uuid

from openstack import exceptions as os_exceptions
from oslo_config import cfg
import pytest
import requests
from taskflow import engines
from taskflow import exceptions as tf_exceptions
from taskflow import task as tf_task

from flows import loadbalancer as lb_flows
from flows.tasks import compute
from flows.tasks import network
from flows.tasks import security_group
from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import vip as vip_port
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed import seed
from tests.functional.sriov_octavia.openstack_cli import cli
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import make_flavor
from tests.functional.sriov_octavia.openstack_cli import wait_for_status
from tests.functional.sriov_octavia.openstack_cli import worker_log
from tests.functional.sriov_octavia import worker_fixtures

PORT_BASE = 31000
PREFIX = 'tfi'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX
# Seconds the worker waits for a cut-off agent before giving up (the
# default, 600, is what a real cloud needs, not a test).
BOOT_TIMEOUT = 60


class InjectedFault(Exception):
    """A task failing because this test asked for it."""


def _tasks(flow):
    """The flow's tasks in order, nested flows included."""
    found = []
    for node, _meta in flow.iter_nodes():
        if hasattr(node, 'iter_nodes'):
            found.extend(_tasks(node))
        else:
            found.append(node)
    return found


def _task(flow_factory, task_name):
    [atom] = [atom for atom in _tasks(flow_factory())
              if atom.name == task_name]
    return atom


def _create_flow(topology=sriov_flavor.TOPOLOGY_ACTIVE_STANDBY,
                 sriov_vip=True):
    """The create flow as the worker builds it for the flavor."""
    return functools.partial(lb_flows.create_flow, topology=topology,
                             sriov_vip=sriov_vip)


def _delete_flow(sriov_vip=True):
    return functools.partial(lb_flows.delete_flow, sriov_vip=sriov_vip)


def _names(flow_factory, tasks=None):
    return [atom.name for atom in tasks or _tasks(flow_factory())]


# Every task of the ACTIVE_STANDBY flow (both amphorae's), and those of
# the SINGLE flow it does not have (the STANDALONE amphora's).
PAIR_TASKS = _names(_create_flow())
SINGLE_TASKS = [name for name in _names(_create_flow(
    sriov_flavor.TOPOLOGY_SINGLE)) if name not in PAIR_TASKS]
CREATE_TASKS = PAIR_TASKS + SINGLE_TASKS
DELETE_TASKS = _names(_delete_flow())
# The tasks of the create flow that undo something of their own.
REVERTING_TASKS = [atom.name for atom in _tasks(_create_flow(
    sriov_vip=False)()) if type(atom).revert is not tf_task.Task.revert]


def _topology(task_name):
    return (sriov_flavor.TOPOLOGY_SINGLE if task_name in SINGLE_TASKS
            else sriov_flavor.TOPOLOGY_ACTIVE_STANDBY)


def _class_name(flow_factory, task_name):
    return type(_task(flow_factory, task_name)).__name__


def _short(name):
    return name.rsplit('.', 1)[-1]


# --- the testbed -----------------------------------------------------------

def _restart_driver_agent(tb):
    lifecycle.restart(tb, 'octavia-driver-agent')


def _octavia_conf(tb):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tb.octavia_conf)
    return parser


@pytest.fixture(scope='module')
def tb(testbed_factory):
    testbed = testbed_factory(port_base=PORT_BASE, prefix=PREFIX)
    parser = _octavia_conf(testbed)
    if not parser.has_option('sriov_amphora', 'boot_timeout'):
        if not parser.has_section('sriov_amphora'):
            parser.add_section('sriov_amphora')
        parser.set('sriov_amphora', 'boot_timeout', str(BOOT_TIMEOUT))
        with open(testbed.octavia_conf, 'w') as conf_file:
            parser.write(conf_file)
        _restart_driver_agent(testbed)
    return testbed


def vf_allocations(tb):
    """Every VF the compute emulator has handed out, per host."""
    hosts = requests.get(tb.url('nova') + '/testbed/pci',
                         timeout=10).json()['hosts']
    return {host: facts['allocations'] for host, facts in hosts.items()}


def leftovers(conn, lb_id):
    """What of the load balancer is still in Nova and Neutron."""
    return {'servers': [s.id for s in amphorae.find_servers(conn, lb_id)],
            'server_groups': [g.id for g in
                              compute.find_server_groups(conn, lb_id)],
            'vrrp_ports': [p.id for p in
                           network.find_vrrp_ports(conn, lb_id)],
            'security_groups': [
                g.id for g in
                security_group.find_security_groups(conn, lb_id)]}


NOTHING = {'servers': [], 'server_groups': [], 'vrrp_ports': [],
           'security_groups': []}


def unique(name):
    return f'{PREFIX}-{name}-{uuid.uuid4().hex[:8]}'


# --- (a) realistic faults through the CLI and the real worker ---------------

@pytest.fixture(scope='module')
def active_standby_flavor(tb, conn):
    return make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')


@pytest.fixture
def no_loadbalancer_left(tb):
    """Delete what a failed test left, so that the next starts clean.

    The quota test counts the project's ports: a load balancer left over
    (or a flow still running) would make it fail for a reason of its own.
    """
    yield
    requests.delete(tb.url('nova') + '/testbed/faults',
                    timeout=10).raise_for_status()
    for lb in cli_json(tb, 'loadbalancer', 'list'):
        if (not lb['name'].startswith(PREFIX + '-')
                or lb['provisioning_status'] in ('DELETED',
                                                 'PENDING_DELETE')):
            continue
        lb = wait_for_status(tb, lb['id'], ('ACTIVE', 'ERROR'))
        cli(tb, 'loadbalancer', 'delete', '--cascade', lb['id'], '--wait')


def create_fails_cleanly(tb, conn, flavor):
    """Create through the CLI; assert ERROR, no leak; delete; return log.

    Returns what the driver-agent logged during the create.
    """
    log_start = len(worker_log(tb))
    vfs_before = vf_allocations(tb)
    lb = cli_json(tb, 'loadbalancer', 'create', '--name', unique('lb'),
                  '--flavor', flavor['id'], '--vip-subnet-id', 'vip-subnet')
    lb = wait_for_status(tb, lb['id'], ('ERROR', 'ACTIVE'))
    log = worker_log(tb)[log_start:]
    assert lb['provisioning_status'] == 'ERROR', log[-3000:]
    assert leftovers(conn, lb['id']) == NOTHING
    assert vf_allocations(tb) == vfs_before
    # The load balancer in ERROR still holds its address...
    assert conn.network.find_port(lb['vip_port_id']) is not None
    # ...until the user deletes it.
    cli(tb, 'loadbalancer', 'delete', lb['id'], '--wait')
    assert conn.network.find_port(lb['vip_port_id']) is None
    assert leftovers(conn, lb['id']) == NOTHING
    return log


def test_vfs_exhausted_at_attach(tb, conn, active_standby_flavor, faults,
                                 no_loadbalancer_left):
    # The amphorae boot (they need no VF), then no host has a VF left for
    # the VRRP ports.
    faults(vf_exhausted=True)
    log = create_fails_cleanly(tb, conn, active_standby_flavor)
    assert 'Nova could not attach VRRP port' in log
    assert 'free VFs' in log


def test_boot_failing_on_the_second_amphora(tb, conn, active_standby_flavor,
                                            faults, no_loadbalancer_left):
    # One amphora goes to ERROR, the other boots: the revert deletes both,
    # and the server group.
    faults(boot='fail_once')
    log = create_fails_cleanly(tb, conn, active_standby_flavor)
    assert 'went to ERROR' in log


def test_agents_unreachable(tb, conn, active_standby_flavor, faults,
                            no_loadbalancer_left):
    faults(agent='unreachable')
    log = create_fails_cleanly(tb, conn, active_standby_flavor)
    assert 'still unreachable' in log
    # Reverted at the first failure: not handed back and run again (the
    # two amphorae wait for their agents side by side: one each).
    assert 1 <= log.count('still unreachable') <= 2, log[-3000:]
    assert 'handed back to the jobboard' not in log


@contextlib.contextmanager
def port_quota(conn, project_id, ports):
    conn.network.update_quota(project_id, ports=ports)
    try:
        yield
    finally:
        conn.network.delete_quota(project_id)


def test_neutron_refuses_the_second_vrrp_port(tb, conn,
                                              active_standby_flavor,
                                              no_loadbalancer_left):
    # The project may have the VIP port and one VRRP port more: Neutron
    # refuses the second VRRP port (409 over quota) after the first one
    # was made. (`openstack quota set` also asks the block-storage service,
    # which the testbed has not: the same Neutron call through the SDK.)
    vip_network = conn.network.find_network('vip-net', ignore_missing=False)
    project_id = vip_network.project_id
    used = len([port for port in conn.network.ports()
                if port.project_id == project_id])
    with port_quota(conn, project_id, used + 2):
        log = create_fails_cleanly(tb, conn, active_standby_flavor)
    assert 'Quota exceeded' in log


# --- (b) every task of the flows, in this process ---------------------------

@pytest.fixture(scope='module')
def driver_agent(tmp_path_factory):
    # Unix socket paths must stay short: a directory of our own.
    sockets = worker_fixtures.DriverAgentSockets(
        tmp_path_factory.mktemp('tfi-sock'))
    yield sockets
    sockets.close()


@pytest.fixture(scope='module')
def worker_conf(tb, driver_agent):
    """The global configuration the flows read, as the testbed's worker.

    Overrides only, all cleared afterwards: other tests in this process
    see the configuration they had.
    """
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    conf.import_group('controller_worker', 'octavia.common.config')
    conf.import_group('haproxy_amphora', 'octavia.common.config')
    conf.import_group('certificates', 'octavia.common.config')
    testbed_conf = _octavia_conf(tb)
    overrides = [
        ('service_auth', 'auth_type'), ('neutron', 'endpoint_override'),
        ('nova', 'endpoint_override'), ('glance', 'endpoint_override'),
        ('controller_worker', 'amp_image_tag'),
        ('controller_worker', 'amp_flavor_id'),
        ('controller_worker', 'amp_boot_network_list'),
        ('controller_worker', 'amp_secgroup_list'),
        ('controller_worker', 'client_ca'),
        ('controller_worker', 'user_data_config_drive'),
        ('haproxy_amphora', 'client_cert'),
        ('haproxy_amphora', 'server_ca'),
        # The amphorae's identities, issued as the testbed's worker does.
        ('certificates', 'ca_certificate'),
        ('certificates', 'ca_private_key'),
        ('certificates', 'cert_generator'),
    ]
    values = {(group, key): testbed_conf.get(group, key)
              for group, key in overrides}
    values.update({
        ('sriov_worker', 'status_socket_path'): driver_agent.status_path,
        ('sriov_worker', 'stats_socket_path'): driver_agent.stats_path,
        ('sriov_worker', 'get_socket_path'): driver_agent.get_path,
        ('sriov_amphora', 'boot_timeout'): BOOT_TIMEOUT,
    })
    for (group, key), value in values.items():
        if key in ('amp_boot_network_list', 'amp_secgroup_list'):
            value = value.split(',')
        elif key == 'user_data_config_drive':
            value = value == 'True'
        conf.set_override(key, value, group=group)
    yield conf
    for group, key in values:
        conf.clear_override(key, group=group)


def _flavor(conn, topology, sriov_vip):
    compute_flavor = conn.compute.find_flavor(
        seed.SRIOV_FLAVOR if sriov_vip else seed.PLAIN_FLAVOR,
        ignore_missing=False)
    return sriov_flavor.with_defaults({
        sriov_flavor.COMPUTE_FLAVOR: compute_flavor.id,
        sriov_flavor.SRIOV_VIP: sriov_vip,
        sriov_flavor.LOADBALANCER_TOPOLOGY: topology})


class LoadBalancer:
    """A load balancer as octavia-api hands it to the driver.

    Its VIP port is made by the driver's own code, as octavia-api has the
    driver make it before the create job is posted.
    """

    def __init__(self, conn, topology, sriov_vip=True):
        self.id = str(uuid.uuid4())
        subnet = conn.network.find_subnet('vip-subnet', ignore_missing=False)
        # The user's project: the one the seeded networks belong to.
        vip, _additional = vip_port.create_vip_port(
            conn, self.id, subnet.project_id,
            {vip_port.VIP_SUBNET_ID: subnet.id}, [])
        self.vip_port_id = vip[vip_port.VIP_PORT_ID]
        self.provider_dict = dict(
            vip, loadbalancer_id=self.id, name=unique('lb'),
            admin_state_up=True, additional_vips=[], listeners=[],
            pools=[])
        self.flavor = _flavor(conn, topology, sriov_vip)
        self.topology, self.sriov_vip = topology, sriov_vip

    def store(self, **extra):
        return dict(extra, loadbalancer=self.provider_dict,
                    loadbalancer_id=self.id, flavor=self.flavor,
                    availability_zone={})


def _run(flow, store):
    engine = engines.load(flow, store=store, engine='serial')
    engine.run()


def _failure_causes(error):
    if isinstance(error, tf_exceptions.WrappedFailure):
        return [failure.exception for failure in error]
    return [error]


def _fail_after(monkeypatch, flow_factory, task_name):
    """Make the task named ``task_name`` raise right after its real work.

    The class's ``execute`` is wrapped (its signature kept, taskflow reads
    the task's arguments from it); other tasks of the class are unchanged.
    """
    cls = type(_task(flow_factory, task_name))
    real = cls.execute

    @functools.wraps(real)
    def execute(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        if self.name == task_name:
            raise InjectedFault(f'{task_name} failed after its work '
                                f'(fault injected)')
        return result

    monkeypatch.setattr(cls, 'execute', execute)


def _run_failing(flow_factory, store):
    with pytest.raises(Exception) as raised:
        _run(flow_factory(), store)
    assert any(isinstance(cause, InjectedFault)
               for cause in _failure_causes(raised.value)), raised.value


def _created(conn, lb):
    """Create the load balancer in full; it must come up ACTIVE."""
    _run(_create_flow(lb.topology, lb.sriov_vip)(), lb.store())
    assert leftovers(conn, lb.id) != NOTHING


def _delete(conn, lb, driver_agent):
    """Delete the load balancer as a user deleting it in ERROR would."""
    _run(_delete_flow(lb.sriov_vip)(), lb.store(cascade=False))
    assert driver_agent.provisioning('loadbalancers', lb.id)[-1] == 'DELETED'
    assert leftovers(conn, lb.id) == NOTHING
    assert conn.network.find_port(lb.vip_port_id) is None


def _normal_path_tasks():
    """The create tasks whose failure a normal (not SR-IOV) LB adds.

    The paths differ in the load balancer's security group: the task
    creating it, the ones putting it on the VRRP ports, and the last task,
    whose failure reverts everything. Elsewhere the revert is the SR-IOV
    path's, which every task covers.
    """
    flow = _create_flow(sriov_vip=False)
    names = _names(flow)
    return [name for name in names
            if _class_name(flow, name) in ('CreateSecurityGroup',
                                           'CreateVrrpPorts')] + names[-1:]


@pytest.mark.parametrize(
    'sriov_vip, task_name',
    [(True, name) for name in CREATE_TASKS] +
    [(False, name) for name in _normal_path_tasks()],
    ids=[f'sriov-{_short(name)}' for name in CREATE_TASKS] +
    [f'normal-{_short(name)}' for name in _normal_path_tasks()])
def test_create_task_failing_reverts_everything(tb, conn, worker_conf,
                                                driver_agent, monkeypatch,
                                                sriov_vip, task_name):
    vfs_before = vf_allocations(tb)
    topology = _topology(task_name)
    lb = LoadBalancer(conn, topology, sriov_vip)
    create_flow = _create_flow(topology, sriov_vip)
    _fail_after(monkeypatch, create_flow, task_name)

    _run_failing(create_flow, lb.store())

    assert leftovers(conn, lb.id) == NOTHING
    assert vf_allocations(tb) == vfs_before
    reported = driver_agent.provisioning('loadbalancers', lb.id)
    assert reported and reported[-1] == 'ERROR', reported
    # The load balancer in ERROR keeps its address until it is deleted.
    assert conn.network.find_port(lb.vip_port_id) is not None
    monkeypatch.undo()
    _delete(conn, lb, driver_agent)


# What may stay behind when a reverting task's undo fails: what it made,
# and what Neutron refuses to delete while that is there (a security group
# in use by the VRRP ports: 409).
_LEFT_WHEN_UNDO_FAILS = {
    'CreateServerGroup': {'server_groups'},
    'BootAmphorae': {'servers'},
    'CreateSecurityGroup': {'security_groups'},
    'CreateVrrpPorts': {'vrrp_ports', 'security_groups'},
}


@pytest.mark.parametrize('task_name', REVERTING_TASKS, ids=_short)
def test_failing_revert_does_not_stop_the_others(tb, conn, worker_conf,
                                                 driver_agent, monkeypatch,
                                                 task_name):
    # Without sriov_vip every reverting task has something to undo (the
    # security group too).
    lb = LoadBalancer(conn, sriov_flavor.TOPOLOGY_ACTIVE_STANDBY,
                      sriov_vip=False)
    create_flow = _create_flow(sriov_vip=False)
    # The flow fails at its very end, so that every task reverts.
    _fail_after(monkeypatch, create_flow, _names(create_flow)[-1])
    # While the task named reverts, the cloud cannot be reached.
    cls = type(_task(create_flow, task_name))
    real_revert = cls.revert
    real_connection = clients.connection
    reverting = {'cut_off': False}

    def connection(*args, **kwargs):
        if reverting['cut_off']:
            raise os_exceptions.SDKException('cloud unreachable (fault '
                                             'injected)')
        return real_connection(*args, **kwargs)

    @functools.wraps(real_revert)
    def revert(self, *args, **kwargs):
        reverting['cut_off'] = self.name == task_name
        try:
            return real_revert(self, *args, **kwargs)
        finally:
            reverting['cut_off'] = False

    monkeypatch.setattr(clients, 'connection', connection)
    monkeypatch.setattr(cls, 'revert', revert)

    _run_failing(create_flow, lb.store())

    # The reverts before it ran: the first task's marks the load balancer
    # ERROR, the others removed what they made.
    reported = driver_agent.provisioning('loadbalancers', lb.id)
    assert reported[-1] == 'ERROR', reported
    kept = _LEFT_WHEN_UNDO_FAILS.get(cls.__name__, set())
    left = {kind: ids for kind, ids in leftovers(conn, lb.id).items()
            if kind not in kept}
    assert left == {kind: [] for kind in left}
    # What the failed undo left carries the load balancer's names and
    # metadata: deleting the load balancer in ERROR removes it.
    monkeypatch.undo()
    _delete(conn, lb, driver_agent)


@pytest.mark.parametrize('task_name', DELETE_TASKS, ids=_short)
def test_delete_task_failing_leaves_error_and_retry_deletes(
        tb, conn, worker_conf, driver_agent, monkeypatch, task_name):
    lb = LoadBalancer(conn, sriov_flavor.TOPOLOGY_SINGLE)
    _created(conn, lb)
    assert driver_agent.provisioning('loadbalancers', lb.id)[-1] == 'ACTIVE'
    _fail_after(monkeypatch, _delete_flow(), task_name)

    _run_failing(_delete_flow(), lb.store(cascade=False))

    # A delete is not undone; the load balancer goes to ERROR and the user
    # deletes it again.
    assert driver_agent.provisioning('loadbalancers', lb.id)[-1] == 'ERROR'
    monkeypatch.undo()
    _delete(conn, lb, driver_agent)
