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
"""Bring a testbed instance up, take it down, tell what runs."""

import os
import shutil
import subprocess
import time

from oslo_log import log as logging

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import inventory
from sriov_octavia_testbed import plumbing
from sriov_octavia_testbed import ports
from sriov_octavia_testbed import schema_cache
from sriov_octavia_testbed import seed
from sriov_octavia_testbed.services import barbican
from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import identity
from sriov_octavia_testbed.services import neutron
from sriov_octavia_testbed.services import neutron_db
from sriov_octavia_testbed.services import nova
from sriov_octavia_testbed.services import octavia
from sriov_octavia_testbed.services import process
from sriov_octavia_testbed.services import redis

LOG = logging.getLogger(__name__)

# The ports this instance added to the kernel's reserved ports (see
# testbed.ports), one line per ``up``.
RESERVED_PORTS = 'reserved-ports'

# Start order (those with needs_cloud start after the seed); "down" stops
# them all at once.
SERVICE_CLASSES = (redis.Redis, identity.Identity, neutron.Neutron,
                   barbican.Barbican, octavia.OctaviaApi,
                   octavia.DriverAgent, nova.Nova)


def services(testbed):
    return [cls(testbed) for cls in SERVICE_CLASSES]


def _run_steps(steps, testbed):
    """Run one-shot commands side by side; fail naming those that failed."""
    running = []
    for name, argv in steps:
        log_file = os.path.join(testbed.logs_dir, f'{name}.log')
        with open(log_file, 'ab') as log:
            running.append((name, log_file, subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)))
    failed = [(name, log_file) for name, log_file, child in running
              if child.wait() != 0]
    if failed:
        raise process.StartError(
            'failed: ' + ', '.join(f'{name} (see {log_file})'
                                   for name, log_file in failed))


def _prepare_databases(testbed, inv):
    """Schemas where missing, then the emulated agents' records.

    Creating a schema imports Neutron's or Octavia's models (seconds each):
    both run at once, and only when the schema cache has no copy yet.
    """
    neutron_api = neutron.Neutron(testbed)
    octavia_api = octavia.OctaviaApi(testbed)
    builds = []
    for package, service in (('neutron', neutron_api),
                             ('octavia', octavia_api)):
        builder = service.schema_module
        if not (os.path.exists(service.db_file)
                or schema_cache.restore(package, builder, service.db_file)):
            builds.append((package, builder, service))
    try:
        _run_steps([(f'{package}-db', service.init_db_argv())
                    for package, _, service in builds], testbed)
    except process.StartError:
        # A half made schema would be taken for a complete one next time.
        for _, _, service in builds:
            if os.path.exists(service.db_file):
                os.unlink(service.db_file)
        raise
    for package, builder, service in builds:
        schema_cache.store(package, builder, service.db_file)
    # On every "up": the heartbeat must be recent for Neutron to bind.
    neutron_db.refresh_agents(neutron_api.db_url, inv)


def _start(group, to_start):
    for service in group:
        if service in to_start:
            service.process.start()
    for service in group:
        service.wait_ready()


def _wanted(testbed, skip):
    """The services to run: installed, not skipped, their needs met."""
    wanted = [service for service in services(testbed)
              if service.available() and service.name not in skip]
    names = {service.name for service in wanted}
    for service in list(wanted):
        missing = set(service.requires) - names
        if missing:
            LOG.info('not starting %s: it needs %s', service.name,
                     ', '.join(sorted(missing)))
            wanted.remove(service)
    return wanted


def _seed(testbed, inv, with_compute):
    """Seed the cloud; return what octavia.conf needs to know of it."""
    fabric = plumbing.Fabric(testbed.state_dir, prefix=testbed.prefix)
    # The operator's PKI: one CA signs the amphorae's certificates (the
    # controller issues them with its key) and the controller's own.
    cloud = {'amp_image_tag': seed.AMPHORA_IMAGE_TAG,
             'agent_client_cert': fabric.agent_client_cert,
             'agent_ca_cert': fabric.ca_cert,
             'agent_ca_key': fabric.ca_key}
    conn = clouds.connect(testbed)
    try:
        subnets = seed.seed_networks(conn, testbed.mgmt_cidr)
        mgmt = subnets[seed.MGMT_SUBNET]
        cloud['amp_boot_network_list'] = [mgmt.network_id]
        cloud['amp_secgroup_list'] = [seed.seed_mgmt_security_group(
            conn, mgmt.gateway_ip, plumbing.AGENT_PORT)]
        try:
            fabric.ensure_mgmt_network({'cidr': mgmt.cidr,
                                        'gateway_ip': mgmt.gateway_ip})
        except plumbing.PlumbingError as e:
            raise process.StartError(f'management network: {e}')
        if with_compute:
            flavors = seed.seed_compute(conn, inv)
            cloud['amp_flavor_id'] = flavors[seed.PLAIN_FLAVOR]
    finally:
        conn.close()
    return cloud


def _reserve_ports(testbed):
    """Keep outgoing connections off the services' ports until ``down``."""
    record = testbed.path(RESERVED_PORTS)
    added = ports.reserve(testbed.ports())
    if added:
        with open(record, 'a') as kept:
            kept.write(ports.render(added) + '\n')


def _release_ports(testbed):
    record = testbed.path(RESERVED_PORTS)
    try:
        with open(record) as kept:
            added = ports.parse(','.join(kept.read().split()))
    except FileNotFoundError:
        return
    ports.release(added)
    os.unlink(record)


def up(testbed, seed_cloud=True, skip=()):
    """Start whatever is not running and seed the cloud; return seconds.

    Everything is looked for before it is made, so "up" on a running
    instance changes nothing. ``seed_cloud``: create the default networks,
    flavors, aggregate and image. ``skip``: names of services not to start
    (e.g. "nova").
    """
    started = time.monotonic()
    for directory in testbed.directories():
        os.makedirs(directory, exist_ok=True)
    testbed.save()
    _reserve_ports(testbed)
    inv = inventory.write_default(testbed.inventory_file)

    wanted = _wanted(testbed, skip)
    # With the identity stand-in, clients log in and get its catalog
    # (Barbican needs nothing less); without it they are given endpoints.
    authenticated = any(isinstance(service, identity.Identity)
                        for service in wanted)
    clouds.write(testbed, authenticated=authenticated)
    to_start = [service for service in wanted if not service.process.pid()]
    for service in to_start:
        if service.port and base.tcp_answers(config.HOST, service.port):
            raise process.StartError(
                f'port {service.port} of {service.name} is taken by a '
                f'process that is not this testbed\'s: choose another '
                f'--port-base')
    for service in to_start:
        service.prepare()
    _prepare_databases(testbed, inv)

    # Octavia's configuration names what the seed creates (management
    # network, compute flavor): the cloud comes first.
    _start([s for s in wanted if not s.needs_cloud], to_start)
    cloud = {'identity': authenticated,
             'key_manager': any(isinstance(service, barbican.Barbican)
                                for service in wanted)}
    if seed_cloud:
        cloud.update(_seed(testbed, inv, with_compute=any(
            isinstance(service, nova.Nova) for service in wanted)))
    if any(service.needs_cloud for service in to_start):
        octavia.write_conf(testbed, cloud)
    _start([s for s in wanted if s.needs_cloud], to_start)
    elapsed = time.monotonic() - started
    LOG.info('testbed %s up in %.1f s', testbed.prefix, elapsed)
    return elapsed


# What ``down`` forgets: the cloud's databases (Barbican's with the key that
# encrypts its secrets) and the emulator's servers.
# The amphorae (namespaces, agents) cannot outlive ``down``, so keeping the
# rows that describe them would bring back a cloud whose load balancers
# have no amphora. Logs and certificates stay for a look afterwards.
CLOUD_STATE = ('neutron', 'octavia', 'barbican', 'nova', 'redis',
               'amphorae', 'nova-emulator.json')


def restart(testbed, name):
    """Restart the running service ``name`` to read its configuration.

    The worker runs inside octavia-driver-agent.
    """
    [service] = [service for service in services(testbed)
                 if service.name == name]
    service.process.stop()
    service.prepare()
    service.process.start()
    service.wait_ready()


def down(testbed, grace=10.0):
    """Stop every service by pid, remove the kernel objects and the cloud.

    Returns the names of the services that were stopped.
    """
    stopped = [proc.name for proc in process.stop_all(
        [service.process for service in services(testbed)], grace=grace)]
    _release_ports(testbed)
    if os.path.isdir(testbed.state_dir):
        plumbing.Fabric(testbed.state_dir, prefix=testbed.prefix).cleanup()
        for name in CLOUD_STATE:
            path = testbed.path(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
    return stopped


def status(testbed):
    """``[(name, pid or None, port or None, state)]`` for every service.

    state is "alive", "dead" or "not installed".
    """
    rows = []
    for service in services(testbed):
        pid = service.process.pid()
        if not service.available():
            state = 'not installed'
        else:
            state = 'alive' if pid else 'dead'
        rows.append((service.name, pid, service.port, state))
    return rows
