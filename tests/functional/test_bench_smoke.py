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
"""The benchmarks still run and report (tools/bench/*.py --quick).

Speed is not judged here: the benchmarks print their numbers and ratios and
doc/source/performance.rst records them. This only keeps the scripts from
rotting: each runs end to end on tiny sizes, prints every ratio line it is
meant to print, and leaves no namespace behind.
"""

import os
import re
import subprocess
import sys

from pyroute2 import netns as pyroute2_netns
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'bench')
RATIO_LINE = re.compile(r'^ratio (\S+) = (-?[0-9.]+(?:e[-+]?[0-9]+)?)\b',
                        re.M)
NAMESPACES_LINE = re.compile(r'^# namespaces (tbn-\S+)-\*$', re.M)

CASES = {
    'apply_latency.py': [
        'apply_speedup_upstream_over_ours_200',
        'apply_speedup_upstream_over_ours_1000',
        'apply_cpu_ratio_upstream_over_ours_200',
        'apply_cpu_ratio_upstream_over_ours_1000'],
    'engine_http.py': [
        f'http_{load}_{metric}_{config}_over_none'
        for load in ('keepalive', 'close') for metric in ('rps', 'p99')
        for config in ('ours', 'upstream')],
    'datapath.py': [
        'udp_ours_over_none_500', 'tcp_ours_over_none_500',
        'udp_upstream_over_none_500', 'tcp_upstream_over_none_500',
        'udp_linear_over_none_500', 'tcp_linear_over_none_500',
        'udp_oneway_ours_over_none_500', 'udp_oneway_upstream_over_none_500',
        'udp_oneway_linear_over_none_500'],
    'hitless.py': [
        'hitless_lost_fraction_ours', 'hitless_lost_fraction_upstream'],
    'memory.py': ['memory_peak_ours_over_upstream_500'],
    'udp_lb.py': ['udp_pps_vip_over_direct'],
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize('script', sorted(CASES))
def test_benchmark_quick_run_reports_its_ratios(script):
    done = subprocess.run([sys.executable, os.path.join(BENCH, script),
                           '--quick'],
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr

    ratios = dict(RATIO_LINE.findall(done.stdout))
    assert sorted(ratios) == sorted(CASES[script]), done.stdout
    for name, value in ratios.items():
        if name.startswith('hitless_lost_fraction'):
            # Losses are reported, not judged; a fraction all the same.
            assert 0 <= float(value) <= 1, f'{name} = {value}'
        else:
            # Zero would mean no traffic got through or nothing was timed.
            assert float(value) > 0, f'{name} = {value}'

    prefixes = NAMESPACES_LINE.findall(done.stdout)
    assert prefixes, done.stdout
    left = [ns for ns in pyroute2_netns.listnetns()
            if any(ns.startswith(prefix + '-') for prefix in prefixes)]
    assert left == []


@pytest.mark.timeout(400)
def test_health_benchmark_quick_run_reports_its_ratios():
    done = subprocess.run([sys.executable,
                           os.path.join(BENCH, 'health_scale.py'), '--quick'],
                          capture_output=True, text=True, timeout=380)
    assert done.returncode == 0, done.stdout + done.stderr
    ratios = dict(RATIO_LINE.findall(done.stdout))
    assert sorted(ratios) == [
        'detection_over_bound_1_processes',
        'detection_over_bound_2_processes',
        'new_over_kept_connection_cpu_per_check',
        'pull_over_push_cpu_per_check', 'work_per_process_2_over_1'
    ], done.stdout
    # Each killed amphora was failed over once, in both runs.
    assert done.stdout.count('failovers_posted_') == 2
    for line in done.stdout.splitlines():
        if line.startswith('value failovers_posted_'):
            assert line.endswith('= 1 jobs'), line
    assert all(float(value) > 0 for value in ratios.values()), done.stdout
