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
"""Deleting an amphora ends the haproxy its agent started in it.

haproxy and keepalived outlive the agent on purpose, so the fabric has to
end them itself; otherwise they would keep running, and keep the deleted
amphora's namespaces alive.
"""

import os
import shutil

import pytest

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed.plumbing import processes
from tests.functional.testbed import fabric_lab

pytestmark = pytest.mark.netns

PREFIX = 'teng'
MGMT_SUBNET = {'cidr': '203.0.113.208/28', 'gateway_ip': '203.0.113.209'}
LOADBALANCER = 'lb-cleanup'


agent_call = fabric_lab.agent_call


fabric = fabric_lab.fabric_fixture(PREFIX, MGMT_SUBNET, stop_grace=5)


@pytest.fixture
def amphora_with_haproxy(fabric):
    """An amphora whose agent runs haproxy.

    (amphora, haproxy pid, the agent's engine directory on this host)
    """
    amphora = fabric_lab.boot_with_agent(fabric, '203.0.113.210',
                                         'fa:16:3e:00:e3:01')
    base_path = agent_call(fabric, amphora, 'GET',
                           'info').json()['haproxy_base_path']
    config = ('global\n'
              f'    stats socket {base_path}/{LOADBALANCER}.sock\n'
              'defaults\n    mode tcp\n    timeout connect 1s\n'
              '    timeout client 5s\n    timeout server 5s\n'
              'listen listener-1\n    bind 127.0.0.1:45560\n'
              '    server member-1 127.0.0.1:45561\n')
    answer = agent_call(fabric, amphora, 'PUT',
                        f'loadbalancer/{amphora.server_id}/{LOADBALANCER}/'
                        'haproxy', data=config)
    assert answer.status_code == 202, answer.text
    answer = agent_call(fabric, amphora, 'PUT',
                        f'loadbalancer/{LOADBALANCER}/start')
    assert answer.status_code == 202, answer.text
    # The amphora's own file system, as the host sees it.
    base_path = fabric.amphora_path(amphora.server_id, base_path)
    with open(f'{base_path}/loadbalancers/{LOADBALANCER}/haproxy.pid') as f:
        pid = int(f.read().split()[0])
    yield amphora, pid, base_path
    shutil.rmtree(base_path, ignore_errors=True)


def test_delete_ends_haproxy(fabric, amphora_with_haproxy):
    amphora, pid, base_path = amphora_with_haproxy
    started = processes.start_time(pid)
    assert processes.is_running(pid, started)

    fabric.delete_amphora(amphora.server_id)

    assert not processes.is_running(pid, started)
    assert not os.path.exists(base_path)
    assert not netlab.namespace_exists(amphora.data_namespace)
    assert not os.path.exists(base_path)


def test_cleanup_ends_haproxy(fabric, amphora_with_haproxy):
    amphora, pid, base_path = amphora_with_haproxy
    started = processes.start_time(pid)

    removed = fabric.cleanup()

    assert pid in removed['processes']
    assert removed['agents'] == [amphora.pid]
    assert not processes.is_running(pid, started)
    assert not os.path.exists(base_path)
