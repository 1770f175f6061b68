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
"""What the load balancer benchmarks share: a testbed and LBs on it.

The benchmarks start a testbed instance of their own (real octavia-api,
octavia-driver-agent with the worker, Neutron, redis, the compute emulator
with amphora namespaces), create Octavia flavors for the shapes they
compare and create and delete load balancers through Octavia's API, as a
user does.
"""

import configparser
import contextlib
import json
import os
import shutil
import tempfile
import time

from openstack import exceptions as os_exceptions
import requests

from sriov_octavia_testbed import fixture
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed import seed

PROVIDER = 'amphora-sriov'
# Seconds between two looks at Octavia while waiting for a status.
POLL_INTERVAL = 0.25


@contextlib.contextmanager
def running_testbed(port_base, prefix, state_dir=None):
    """A fresh testbed instance; taken down (state dir removed) at exit."""
    own_dir = state_dir is None
    state_dir = state_dir or tempfile.mkdtemp(prefix=f'bench-{prefix}-')
    try:
        with fixture.running(state_dir, port_base=port_base,
                             prefix=prefix) as tb:
            yield tb
    finally:
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def set_worker_option(tb, key, value):
    """Set ``[sriov_worker] key`` in octavia.conf; restart the worker.

    The worker runs inside octavia-driver-agent, which is restarted to
    read it; a standalone worker started afterwards reads it too.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tb.octavia_conf)
    parser.set('sriov_worker', key, str(value))
    with open(tb.octavia_conf, 'w') as conf_file:
        parser.write(conf_file)
    lifecycle.restart(tb, 'octavia-driver-agent')


def nova_faults(tb, **settings):
    """Set compute emulator faults (``api_latency_ms`` ...); none: clear."""
    url = tb.url('nova') + '/testbed/faults'
    if settings:
        requests.post(url, json=settings, timeout=30).raise_for_status()
    else:
        requests.delete(url, timeout=30).raise_for_status()


def octavia_flavor(conn, name, topology, sriov_vip):
    """An enabled Octavia flavor of this provider; returns its id.

    SR-IOV load balancers boot on the SR-IOV compute flavor, normal ones on
    the plain one, as an operator would set them up.
    """
    compute_flavor = conn.compute.find_flavor(
        seed.SRIOV_FLAVOR if sriov_vip else seed.PLAIN_FLAVOR,
        ignore_missing=False)
    profile = conn.load_balancer.create_flavor_profile(
        name=f'{name}-profile', provider_name=PROVIDER,
        flavor_data=json.dumps({'compute_flavor': compute_flavor.id,
                                'sriov_vip': sriov_vip,
                                'loadbalancer_topology': topology}))
    flavor = conn.load_balancer.create_flavor(
        name=name, flavor_profile_id=profile.id, is_enabled=True)
    return flavor.id


def vip_subnet_id(conn):
    return conn.network.find_subnet('vip-subnet', ignore_missing=False).id


def listeners(count, cidrs_each):
    """Listener bodies for a single-call create: TCP 80, 81, ...

    Each allows ``cidrs_each`` documentation /28s (none: any source).
    """
    bodies = []
    for index in range(count):
        body = {'name': f'listener-{index}', 'protocol': 'TCP',
                'protocol_port': 80 + index}
        if cidrs_each:
            body['allowed_cidrs'] = [f'198.51.100.{16 * cidr}/28'
                                     for cidr in range(cidrs_each)]
        bodies.append(body)
    return bodies


def create_load_balancer(conn, name, flavor_id, subnet_id,
                         with_listeners=()):
    """Create a load balancer, with its listeners in the same call."""
    attrs = {'listeners': list(with_listeners)} if with_listeners else {}
    return conn.load_balancer.create_load_balancer(
        name=name, flavor_id=flavor_id, vip_subnet_id=subnet_id,
        **attrs).id


def _wait(lb_ids, done_at, timeout, what):
    """Poll until ``done_at(lb_id)`` says each load balancer is done.

    ``done_at`` returns None while it is not, else what to record.
    """
    pending = set(lb_ids)
    done = {}
    deadline = time.monotonic() + timeout
    while pending:
        for lb_id in sorted(pending):
            result = done_at(lb_id)
            if result is not None:
                done[lb_id] = result
                pending.discard(lb_id)
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f'load balancers {sorted(pending)} '
                                   f'{what} after {timeout} s')
            time.sleep(POLL_INTERVAL)
    return done


def wait_for_status(conn, lb_ids, timeout):
    """Wait until every load balancer is ACTIVE or ERROR.

    Returns ``{lb_id: (status, monotonic time it was first seen)}``.
    """
    def settled(lb_id):
        status = conn.load_balancer.get_load_balancer(
            lb_id).provisioning_status
        if status in ('ACTIVE', 'ERROR'):
            return status, time.monotonic()
        return None

    return _wait(lb_ids, settled, timeout, 'still pending')


def delete_load_balancers(conn, lb_ids, timeout):
    """Delete the load balancers and wait until Octavia has none of them."""
    for lb_id in lb_ids:
        conn.load_balancer.delete_load_balancer(lb_id, cascade=True)

    def deleted(lb_id):
        try:
            lb = conn.load_balancer.get_load_balancer(lb_id)
        except os_exceptions.NotFoundException:
            return True
        return True if lb.provisioning_status == 'DELETED' else None

    _wait(lb_ids, deleted, timeout, 'not deleted')


def add_testbed_arguments(parser, port_base, quick_help, latency_ms=200.0,
                          latency_help='added to every Compute/Image API '
                                       'request'):
    """The options every load balancer benchmark takes for its testbed."""
    parser.add_argument('--latency-ms', type=float, default=latency_ms,
                        help=latency_help)
    parser.add_argument('--port-base', type=int, default=port_base)
    parser.add_argument('--state-dir',
                        help='testbed state directory (default: a new '
                             'temporary one, removed at the end)')
    parser.add_argument('--quick', action='store_true', help=quick_help)


def log_path(tb, service):
    return os.path.join(tb.logs_dir, f'{service}.log')
