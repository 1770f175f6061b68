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
"""The fabric's parts that need no kernel objects."""

import ipaddress
import subprocess

import pytest

from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import networks
from sriov_octavia_testbed.plumbing import processes


def _gateways(*interfaces):
    return [ipaddress.ip_interface(interface) for interface in interfaces]


def test_mgmt_addresses_take_the_prefix_and_gateway_of_their_subnet():
    matched = networks.mgmt_interfaces(
        ['203.0.113.5', '2001:db8:1::5'],
        _gateways('2001:db8:1::1/64', '203.0.113.1/28'))
    assert matched == [
        (ipaddress.ip_interface('203.0.113.5/28'),
         ipaddress.ip_address('203.0.113.1')),
        (ipaddress.ip_interface('2001:db8:1::5/64'),
         ipaddress.ip_address('2001:db8:1::1')),
    ]


@pytest.mark.parametrize('ip', ['198.51.100.5', '203.0.113.1'])
def test_mgmt_address_outside_the_subnets_or_on_the_gateway_is_refused(ip):
    with pytest.raises(errors.PlumbingError):
        networks.mgmt_interfaces([ip], _gateways('203.0.113.1/28'))


@pytest.fixture
def sleeper(tmp_path):
    child = processes.start(None, ['sleep', '60'], str(tmp_path / 'log'))
    yield child
    if child.poll() is None:
        child.kill()
        child.wait()


def test_stop_ends_the_process_it_started(sleeper):
    started = processes.start_time(sleeper.pid)
    assert processes.is_running(sleeper.pid, started)
    assert processes.stop(sleeper.pid, started, grace=5, child=sleeper)
    assert sleeper.returncode is not None
    assert not processes.is_running(sleeper.pid, started)


def test_stop_leaves_a_process_with_another_start_time_alone(sleeper):
    started = processes.start_time(sleeper.pid)
    # A recorded PID whose start time differs is some other process that
    # got the PID after ours ended.
    assert not processes.stop(sleeper.pid, started - 1, grace=5)
    assert sleeper.poll() is None


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    child = processes.start(
        # An ignored signal stays ignored across exec.
        None, ['sh', '-c', 'trap "" TERM; echo ready; exec sleep 60'],
        str(tmp_path / 'log'))
    try:
        started = processes.start_time(child.pid)
        # The trap must be set before the signal comes.
        subprocess.run(['sh', '-c', f'until grep -q ready {tmp_path}/log; '
                        'do sleep 0.05; done'], timeout=10, check=True)
        assert processes.stop(child.pid, started, grace=0.5, child=child)
        assert child.returncode == -9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_start_time_of_a_missing_process_is_none():
    assert processes.start_time(2 ** 22 + 1) is None
