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
"""The fixture other parts' tests use starts and removes an instance."""

import os
import socket

from pyroute2 import netns
import pytest

from sriov_octavia_testbed import config
from sriov_octavia_testbed import fixture
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed import ports
from sriov_octavia_testbed.services import process

pytestmark = [pytest.mark.services, pytest.mark.netns,
              pytest.mark.timeout(300)]


def test_running_yields_a_reachable_instance_and_removes_it(tmp_path):
    with fixture.running(str(tmp_path), port_base=28000, prefix='tfx',
                         skip=('nova',)) as testbed:
        pids = [pid for _, pid, _, _ in testbed.status() if pid]
        conn = testbed.connect()
        try:
            assert conn.network.find_network('vip-net') is not None
            assert [p.name for p in conn.load_balancer.providers()] == [
                'amphora-sriov']
        finally:
            conn.close()
        env = testbed.cli_env({})
        assert env['OS_CLIENT_CONFIG_FILE'] == testbed.clouds_yaml
        assert 'tfx-mgmt' in os.listdir('/sys/class/net')
        # No outgoing connection can take a service's port meanwhile.
        assert set(testbed.ports()) <= ports.current()
    assert pids
    assert not set(testbed.ports()) & ports.current()
    assert not [pid for pid in pids if os.path.exists(f'/proc/{pid}')]
    assert 'tfx-mgmt' not in os.listdir('/sys/class/net')
    assert not [n for n in netns.listnetns() if n.startswith('tfx-')]


def test_up_refuses_ports_someone_else_holds(tmp_path):
    testbed = config.Testbed(str(tmp_path), port_base=27000, prefix='tpt')
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((config.HOST, testbed.port('neutron')))
        holder.listen()
        with pytest.raises(process.StartError, match='27696'):
            lifecycle.up(testbed)
    assert [row[3] for row in lifecycle.status(testbed)] == [
        'dead'] * len(lifecycle.SERVICE_CLASSES)
    lifecycle.down(testbed)
    assert not set(testbed.ports()) & ports.current()
