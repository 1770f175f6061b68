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
"""Engine files: the layout, the configuration check and the check script.

haproxy's own ``-c`` judges configurations here (it is installed wherever
the agent runs); no namespace is involved.
"""

import os
import subprocess

import pytest

from amphora_agent.engine import check_script
from amphora_agent.engine import errors
from amphora_agent.engine import haproxy
from amphora_agent.engine import layout as layout_mod
from amphora_agent.engine import process

HAPROXY = '/usr/sbin/haproxy'
GOOD = ('defaults\n    mode tcp\n    timeout connect 1s\n'
        '    timeout client 1s\n    timeout server 1s\n'
        'listen listener-1\n    bind 127.0.0.1:45580\n'
        '    server member-1 127.0.0.1:45581\n')

needs_haproxy = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                   reason='haproxy is not installed')


@pytest.fixture
def layout(tmp_path):
    return layout_mod.Layout(str(tmp_path / 'engine'))


@pytest.fixture
def engine_haproxy(layout):
    return haproxy.Haproxy(layout, None, HAPROXY, command_timeout=30,
                           stop_timeout=5)


def test_default_base_path_is_short_and_per_agent():
    deep = '/tmp/pytest-of-root/pytest-123/testbed-tdrv0/amphorae/' + (
        '0123456789abcdef' * 3)
    first = layout_mod.default_base_path(deep + '/firewall.json')
    second = layout_mod.default_base_path('/var/lib/octavia/fw.json')

    assert first != second
    assert first == layout_mod.default_base_path(deep + '/other.json')
    # haproxy's limit for "<base>/<36 character lb id>.sock" is 97 bytes.
    assert len(layout_mod.Layout(first).stats_socket('x' * 36)) <= 97


@pytest.mark.parametrize('loadbalancer_id', [
    '..', 'a/b', '', 'lb.1', 'x' * 65, '-lb'])
def test_ids_that_could_leave_the_directory_are_refused(layout,
                                                        loadbalancer_id):
    with pytest.raises(errors.InvalidName):
        layout.haproxy_config(loadbalancer_id)


@needs_haproxy
def test_valid_config_is_stored(engine_haproxy, layout):
    output = engine_haproxy.store('lb-1', GOOD)

    assert 'valid' in output.lower()
    with open(layout.haproxy_config('lb-1')) as config:
        assert config.read() == GOOD
    assert layout.loadbalancer_ids() == ['lb-1']


@needs_haproxy
def test_invalid_config_keeps_the_stored_one(engine_haproxy, layout):
    engine_haproxy.store('lb-1', GOOD)

    with pytest.raises(errors.ConfigRejected) as raised:
        engine_haproxy.store('lb-1', GOOD + '    no_such_keyword\n')

    assert "unknown keyword 'no_such_keyword'" in raised.value.output
    with open(layout.haproxy_config('lb-1')) as config:
        assert config.read() == GOOD
    # No candidate file is left behind; the accepted copy is the old one.
    assert sorted(os.listdir(layout.loadbalancer_dir('lb-1'))) == [
        'haproxy.cfg', 'haproxy.cfg.accepted']
    with open(layout.haproxy_config('lb-1') + '.accepted') as config:
        assert config.read() == GOOD


def test_a_config_changed_by_hand_is_put_back(engine_haproxy, layout):
    engine_haproxy.store('lb-1', GOOD)
    assert engine_haproxy.verify() == []
    with open(layout.haproxy_config('lb-1'), 'a') as config:
        config.write('# edited by hand\n')

    # Not started: put back, nothing to reload.
    assert engine_haproxy.verify() == [
        'haproxy configuration of load balancer lb-1 changed']
    with open(layout.haproxy_config('lb-1')) as config:
        assert config.read() == GOOD
    assert engine_haproxy.verify() == []


def test_actions_on_an_unknown_load_balancer(engine_haproxy):
    for action in haproxy.ACTIONS:
        with pytest.raises(errors.UnknownLoadBalancer):
            engine_haproxy.act('lb-unknown', action)
    with pytest.raises(errors.NotRunning):
        engine_haproxy.status('lb-unknown')
    assert engine_haproxy.delete('lb-unknown') == 'no such load balancer'


def test_a_pid_file_naming_another_program_is_not_running(tmp_path):
    pid_file = tmp_path / 'haproxy.pid'
    pid_file.write_text(f'{os.getpid()}\n')

    assert process.running_pid(str(pid_file), HAPROXY) is None
    assert process.running_pid(str(tmp_path / 'missing.pid'),
                               HAPROXY) is None


def test_check_script(layout):
    script = check_script.write(layout)
    assert os.access(script, os.X_OK)
    # Nothing started: nothing to fail.
    assert subprocess.run([script]).returncode == 0

    # A load balancer whose pid file names no running haproxy (this
    # process is python) fails the check.
    directory = os.path.join(layout.loadbalancers_dir, 'lb-1')
    os.makedirs(directory)
    with open(os.path.join(directory, 'haproxy.pid'), 'w') as pid_file:
        pid_file.write(f'{os.getpid()}\n')
    assert subprocess.run([script]).returncode != 0

    os.unlink(os.path.join(directory, 'haproxy.pid'))
    assert subprocess.run([script]).returncode == 0
