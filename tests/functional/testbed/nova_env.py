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
"""Helpers for the compute emulator's functional tests (test_nova_*.py).

The Neutron they bind ports in is the real one, started through the
testbed's own lifecycle (``testbed.fixture.running``) with an inventory
small enough to run out of VFs.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

import requests

from sriov_octavia_testbed import fixture

PORT_BASE = 24000
PREFIX = 'tnv'
PROJECT = 'tnv-project'
SRIOV_PHYSNET = 'sriovnet'
MGMT_PHYSNET = 'physnet1'
# Two VFs per SR-IOV host, one host without SR-IOV.
INVENTORY = {'hosts': {
    'compute-1': {'pci_devices': [
        {'pf': 'ens1f0', 'physical_network': SRIOV_PHYSNET, 'vf_count': 2,
         'vendor_id': '8086', 'product_id': '154c'}]},
    'compute-2': {'pci_devices': [
        {'pf': 'ens1f0', 'physical_network': SRIOV_PHYSNET, 'vf_count': 2,
         'vendor_id': '8086', 'product_id': '154c'}]},
    'compute-3': {'pci_devices': []},
}}
VFS_PER_HOST = 2
SRIOV_HOSTS = ('compute-1', 'compute-2')
# Services the emulator does not need.
NOT_NEEDED = ('redis', 'identity', 'octavia-api', 'octavia-driver-agent')


@contextlib.contextmanager
def neutron_testbed(state_dir, start_nova):
    """A testbed instance running Neutron (and the emulator if asked)."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, 'inventory.json'), 'w') as f:
        json.dump(INVENTORY, f)
    skip = NOT_NEEDED + (() if start_nova else ('nova',))
    with fixture.running(state_dir, port_base=PORT_BASE, prefix=PREFIX,
                         seed=False, skip=skip) as testbed:
        yield testbed


class Emulator:
    """``python -m sriov_octavia_testbed.nova`` run by a test: API only."""

    def __init__(self, testbed):
        self.testbed = testbed
        self.url = testbed.url('nova')
        self.state_dir = testbed.path('nova-api-only')
        self.log_file = testbed.path('logs', 'nova-api-only.log')
        self.process = None

    def argv(self):
        return [sys.executable, '-m', 'sriov_octavia_testbed.nova',
                '--state-dir', self.state_dir,
                '--port', str(self.testbed.port('nova')),
                '--neutron-url', self.testbed.url('neutron'),
                '--inventory', self.testbed.inventory_file,
                '--prefix', self.testbed.prefix, '--nokernel-plumbing',
                '--log-file', self.log_file]

    def start(self, timeout=30):
        self.process = subprocess.Popen(self.argv(),
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f'the emulator exited, see {self.log_file}')
            try:
                requests.get(self.url + '/', timeout=1)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self):
        self.stop()
        self.start()


def admin(testbed, method, path, body=None):
    """Call the emulator's /testbed admin API; returns the response."""
    return requests.request(method, testbed.url('nova') + '/testbed' + path,
                            json=body, timeout=30)


def set_faults(testbed, **faults):
    response = admin(testbed, 'POST', '/faults', faults)
    response.raise_for_status()
    return response.json()['faults']


def clear_faults(testbed):
    admin(testbed, 'DELETE', '/faults').raise_for_status()


def free_vfs(testbed, host, physnet=SRIOV_PHYSNET):
    pci = admin(testbed, 'GET', '/pci').json()['hosts'][host]
    return pci['physical_networks'].get(physnet, {'free': 0})['free']


def wait_until(predicate, timeout=60, interval=0.2, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(interval)


def wait_active(conn, server):
    return conn.compute.wait_for_server(server, interval=0.3, wait=120)


def wait_error(conn, server):
    return conn.compute.wait_for_server(server, status='ERROR', failures=[],
                                        interval=0.3, wait=120)


def delete_server(conn, server):
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, interval=0.3, wait=120)


def port_unbound(conn, port_id):
    port = conn.network.get_port(port_id)
    return (not port.device_id and not port.binding_host_id
            and not port.binding_profile and not port.device_owner)
