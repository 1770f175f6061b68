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
import os
import sys

import pytest

from sriov_octavia_testbed.services import process

SLEEPER = [sys.executable, '-c', 'import time; time.sleep(60)']
IGNORES_TERM = [sys.executable, '-c',
                'import signal, time; '
                'signal.signal(signal.SIGTERM, signal.SIG_IGN); '
                'print("ready", flush=True); time.sleep(60)']


@pytest.fixture
def proc_factory(tmp_path):
    made = []

    def make(argv, name='svc'):
        proc = process.Process(name, argv, str(tmp_path), str(tmp_path))
        made.append(proc)
        return proc
    yield make
    for proc in made:
        proc.stop(grace=1)


def test_start_is_idempotent_and_stop_ends_it(proc_factory):
    proc = proc_factory(SLEEPER)
    pid = proc.start()
    assert proc.start() == pid
    assert proc.pid() == pid
    assert proc.stop(grace=5)
    assert proc.pid() is None
    assert not os.path.exists(f'/proc/{pid}')
    assert not os.path.exists(proc.pid_file)
    assert proc.stop() is False


def test_a_reused_pid_is_not_taken_for_ours(proc_factory, tmp_path):
    proc = proc_factory(SLEEPER)
    # Our own pid, with a start time that is not ours.
    with open(proc.pid_file, 'w') as f:
        f.write(f'{os.getpid()} 1\n')
    assert proc.pid() is None
    assert proc.stop() is False


def test_sigkill_after_the_grace_period(proc_factory):
    proc = proc_factory(IGNORES_TERM)
    pid = proc.start()
    process.wait_until(lambda: 'ready' in proc.log_tail(), proc, 'ready', 10)
    assert proc.stop(grace=0.5)
    assert not os.path.exists(f'/proc/{pid}')


def test_wait_until_reports_an_early_exit(proc_factory):
    proc = proc_factory([sys.executable, '-c', 'print("boom")'])
    proc.start()
    with pytest.raises(process.StartError, match='boom'):
        process.wait_until(lambda: False, proc, 'readiness', 10)
