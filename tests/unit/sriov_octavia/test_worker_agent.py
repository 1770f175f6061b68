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

from unittest import mock

from oslo_config import cfg
import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import agent


@pytest.fixture
def octavia_conf():
    # What octavia-driver-agent has loaded before it forks provider agents.
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf.set_default('status_socket_path', '/run/octavia/status.sock',
                     group='driver_agent')
    conf([], project='octavia')
    return conf


def test_provider_agent_runs_the_worker(octavia_conf):
    exit_event = mock.Mock()
    with mock.patch('sriov_octavia.worker.conductor.run') as run, \
            mock.patch('sriov_octavia.worker.health.start') as health, \
            mock.patch('sriov_octavia.worker.certificates.start') as certs, \
            mock.patch('sriov_octavia.worker.membership.'
                       'HealthGroup') as group, \
            mock.patch.object(agent.LOG, 'warning') as warning:
        agent.provider_agent(exit_event, conf=octavia_conf)
    # One name for the conductor's claims and the health membership.
    name = run.call_args.kwargs['name']
    run.assert_called_once_with(octavia_conf, exit_event, name=name)
    group.assert_called_once_with(name, octavia_conf)
    health.assert_called_once_with(octavia_conf, exit_event,
                                   group.return_value)
    certs.assert_called_once_with(octavia_conf, exit_event,
                                  group.return_value)
    group.return_value.leave.assert_called_once_with()
    assert octavia_conf.sriov_worker.jobboard_name == 'sriov_octavia_jobboard'
    # Only the status socket differs from what the driver-agent serves.
    assert warning.call_count == 1
    assert warning.call_args.args[1:] == (
        'status_socket_path', '/var/run/octavia/status.sock',
        '/run/octavia/status.sock')
