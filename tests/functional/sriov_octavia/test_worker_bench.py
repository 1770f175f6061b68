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
"""tools/bench/worker_throughput.py still runs and reports (--quick).

Speed is not judged here; the script prints it.
"""

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.services

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'tools', 'bench',
    'worker_throughput.py')


@pytest.mark.timeout(600)
def test_worker_throughput_quick_run_reports_its_ratio():
    done = subprocess.run([sys.executable, SCRIPT, '--quick',
                           '--redis-port', '59386'],
                          capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stdout + done.stderr
    values = dict(re.findall(r'^value (\S+) = ([0-9.e+-]+) jobs/min$',
                             done.stdout, re.M))
    assert sorted(values) == ['jobs_per_minute_1_workers',
                              'jobs_per_minute_2_workers'], done.stdout
    ratio = re.search(r'^ratio throughput_2_workers_over_1 = ([0-9.e+-]+)$',
                      done.stdout, re.M)
    assert ratio, done.stdout
    assert float(ratio.group(1)) > 0
