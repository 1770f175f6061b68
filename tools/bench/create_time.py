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
"""ACTIVE_STANDBY create time: the two amphorae in turn and side by side.

On a testbed of this script's own, with the compute emulator answering
every Compute/Image API request only after ``--latency-ms`` (a cloud's API
latency), the load balancer create flow runs ``--runs`` times in each
shape, the shapes taking turns, in this process with taskflow's parallel
engine as the worker runs it, against the testbed's real Neutron, compute
emulator and amphora agents (the status reports go nowhere):

- ``sequential``: the flow before it was shaped by the topology, one linear
  flow whose tasks work on both amphorae in turn (built here from the same
  tasks, the only place that shape still exists);
- ``parallel``: ``flows.loadbalancer.create_flow``, each amphora's boot and
  plug in a sub-flow of an unordered flow.

Each load balancer is deleted (untimed) before the next create::

    create_time.py [--runs 5] [--latency-ms 200] [--normal-vip]
                   [--port-base 16000]

Prints::

    value create_seconds_sequential = <median> s
    value create_seconds_parallel = <median> s
    ratio create_seconds_sequential_over_parallel = <number>
"""

import argparse
import contextlib
import sys
import time
from unittest import mock
import uuid

import futurist
from oslo_config import cfg
from taskflow import engines
from taskflow.patterns import linear_flow

import _common
import _lb_testbed

from flows import loadbalancer as lb_flows
from flows.tasks import amphora
from flows.tasks import compute
from flows.tasks import identity
from flows.tasks import network
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import vip as vip_port
from sriov_octavia_testbed import seed

PREFIX = 'tct'
TOPOLOGY = sriov_flavor.TOPOLOGY_ACTIVE_STANDBY
SHAPES = ('sequential', 'parallel')


def sequential_create_flow(topology, sriov_vip):
    """The create flow as one line: each task on every amphora in turn.

    ``flows.loadbalancer.create_flow`` with its side-by-side sub-flows
    replaced by the same tasks working on the list of amphorae.
    """
    roles = compute.topology_roles(topology)
    in_turn = {
        'boot-amphorae': (identity.IssueAmphoraIdentities(roles),
                          compute.BootAmphorae(roles),
                          compute.WaitForAmphorae(),
                          amphora.WaitForAgents()),
        'plug-amphorae': (network.CreateVrrpPorts(roles),
                          compute.AttachPorts(),
                          amphora.PlugVip(len(roles) == 1)),
        # The amphorae and their ports are in one list each already.
        'join-amphorae': (),
    }
    flow = linear_flow.Flow('loadbalancer.create')
    for node in lb_flows.create_flow(topology=topology, sriov_vip=sriov_vip):
        flow.add(*in_turn.get(node.name, (node,)))
    return flow


FACTORIES = {'sequential': sequential_create_flow,
             'parallel': lb_flows.create_flow}


@contextlib.contextmanager
def worker_configuration(tb):
    """The global configuration the flows read: the testbed worker's."""
    conf = cfg.CONF
    sriov_conf.register_opts(conf)
    for group in ('controller_worker', 'haproxy_amphora', 'certificates',
                  'task_flow'):
        conf.import_group(group, 'octavia.common.config')
    conf([], project='octavia', default_config_files=[tb.octavia_conf])
    try:
        yield conf
    finally:
        conf.reset()


def _store(conn, sriov_vip):
    """A create job's store, the VIP port made by the driver's code."""
    lb_id = str(uuid.uuid4())
    subnet = conn.network.find_subnet('vip-subnet', ignore_missing=False)
    vip, _additional = vip_port.create_vip_port(
        conn, lb_id, subnet.project_id, {vip_port.VIP_SUBNET_ID: subnet.id},
        [])
    compute_flavor = conn.compute.find_flavor(
        seed.SRIOV_FLAVOR if sriov_vip else seed.PLAIN_FLAVOR,
        ignore_missing=False)
    flavor = sriov_flavor.with_defaults({
        sriov_flavor.COMPUTE_FLAVOR: compute_flavor.id,
        sriov_flavor.SRIOV_VIP: sriov_vip,
        sriov_flavor.LOADBALANCER_TOPOLOGY: TOPOLOGY})
    loadbalancer = dict(vip, loadbalancer_id=lb_id, name=f'{PREFIX}-lb',
                        admin_state_up=True, additional_vips=[],
                        listeners=[], pools=[])
    return {'loadbalancer': loadbalancer, 'loadbalancer_id': lb_id,
            'flavor': flavor, 'availability_zone': {}}


def _run(flow, store, executor):
    engines.run(flow, store=store, engine='parallel', executor=executor)


def timed_create(conn, shape, sriov_vip, executor):
    """Seconds one create flow of ``shape`` takes; deletes the LB after."""
    store = _store(conn, sriov_vip)
    flow = FACTORIES[shape](topology=TOPOLOGY, sriov_vip=sriov_vip)
    began = time.monotonic()
    try:
        _run(flow, store, executor)
        return time.monotonic() - began
    finally:
        _run(lb_flows.delete_flow(topology=TOPOLOGY, sriov_vip=sriov_vip),
             dict(store, cascade=False), executor)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=5,
                        help='creates per shape')
    parser.add_argument('--normal-vip', action='store_true',
                        help='sriov_vip false (default: true)')
    _lb_testbed.add_testbed_arguments(
        parser, 16000, 'one create per shape: does the script work')
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
    sriov_vip = not args.normal_vip
    seconds = {shape: [] for shape in SHAPES}

    with _lb_testbed.running_testbed(args.port_base, PREFIX,
                                     args.state_dir) as tb, \
            worker_configuration(tb), \
            mock.patch('sriov_octavia.octavia_status.StatusReporter'), \
            futurist.ThreadPoolExecutor(max_workers=8) as executor:
        conn = tb.connect()
        _common.print_note(
            f'{args.runs} {TOPOLOGY} creates per shape, sriov_vip '
            f'{sriov_vip}, {args.latency_ms:g} ms per Compute/Image API '
            f'request')
        # The flows' connection finds its endpoints before the latency.
        worker_conn = clients.connection()
        list(worker_conn.image.images(tag='none'))
        list(worker_conn.compute.flavors())
        _lb_testbed.nova_faults(tb, api_latency_ms=args.latency_ms)
        try:
            # Not timed: the first create of a fresh testbed also pays for
            # connections, discovery and caches the others then share.
            timed_create(conn, 'parallel', sriov_vip, executor)
            for _run_index in range(args.runs):
                for shape in SHAPES:
                    seconds[shape].append(
                        timed_create(conn, shape, sriov_vip, executor))
        finally:
            _lb_testbed.nova_faults(tb)
            conn.close()
    medians = {shape: _common.median(values)
               for shape, values in seconds.items()}
    for shape in SHAPES:
        _common.print_note(f'{shape}: ' + ', '.join(
            f'{value:.2f}' for value in seconds[shape]))
        _common.print_value(f'create_seconds_{shape}', medians[shape], 's')
    _common.print_ratio('create_seconds_sequential_over_parallel',
                        medians['sequential'] / medians['parallel'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
