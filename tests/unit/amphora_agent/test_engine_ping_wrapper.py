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
"""Installing the PING health monitor script, and what it does.

haproxy running it for a real PING monitor is tested in
tests/functional/amphora_agent/test_engine_ping.py.
"""

import os
import shutil
import stat
import subprocess

import pytest

from amphora_agent.engine import ping_wrapper


def test_installed_from_the_package_executable_by_all(tmp_path):
    path = str(tmp_path / 'octavia' / 'ping-wrapper.sh')

    assert ping_wrapper.install(path) == path

    with open(path) as script:
        assert script.read() == ping_wrapper.script()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    assert ping_wrapper.script().startswith('#!/bin/sh\n')


def test_an_identical_script_is_left_alone(tmp_path):
    path = str(tmp_path / 'ping-wrapper.sh')
    ping_wrapper.install(path)
    inode = os.stat(path).st_ino

    assert ping_wrapper.install(path) == path
    assert os.stat(path).st_ino == inode


@pytest.mark.parametrize('change', ['content', 'mode'])
def test_a_different_script_is_replaced(tmp_path, change):
    path = str(tmp_path / 'ping-wrapper.sh')
    ping_wrapper.install(path)
    if change == 'content':
        with open(path, 'w') as script:
            script.write('#!/bin/sh\nexit 0\n')
    else:
        os.chmod(path, 0o700)

    ping_wrapper.install(path)

    with open(path) as script:
        assert script.read() == ping_wrapper.script()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755


def test_a_failure_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')

    assert ping_wrapper.install(str(blocker / 'ping-wrapper.sh')) is None
    assert 'PING' in caplog.text


def run(path, *arguments, env=None):
    return subprocess.run([path, *arguments], env=env or {},
                          capture_output=True, timeout=30).returncode


@pytest.mark.skipif(not shutil.which('ping'), reason='needs ping')
@pytest.mark.parametrize('address', ['127.0.0.1', '::1'])
def test_an_answering_address_is_up(tmp_path, address):
    path = ping_wrapper.install(str(tmp_path / 'ping-wrapper.sh'))

    # haproxy's arguments, and its empty environment.
    assert run(path, '203.0.113.10', '80', address, '8080') == 0


def test_the_address_may_come_from_the_environment(tmp_path):
    path = ping_wrapper.install(str(tmp_path / 'ping-wrapper.sh'))

    assert run(path, env={'HAPROXY_SERVER_ADDR': '127.0.0.1'}) == 0
    assert run(path) == 2
