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
"""Peak memory of applying N entries, in a fresh process each.

A new Python process imports what an agent imports, starts the firewall,
reads the request body (JSON text, as the agent receives it) and records its
resident set size: the baseline. Then it parses the body, builds the model
and applies it, and reports its peak RSS (VmHWM) and that of the processes
it ran. The upstream-style baseline does the same with a rules file and
``nft -o -f``, whose own peak is reported separately (it runs while the
agent waits, so the two add up). The ratio compares the engine's peak with
that sum.

    tools/bench/memory.py [--quick] [--entries 50000]
"""

import argparse
import json
import os
import resource
import subprocess
import sys

import _common

TARGET_MB = 150.0


def _vm_kb(field):
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise LookupError(field)


def child(kind, request_path, namespace, workdir):
    """Runs in the fresh process; prints one JSON line of kilobytes."""
    if kind == 'ours':
        fw = _common.OurFirewall(namespace, workdir)
    else:
        fw = _common.UpstreamStyleFirewall(namespace, workdir)
    with open(request_path, 'rb') as body_file:
        body = body_file.read()
    baseline = _vm_kb('VmRSS')
    fw.apply(json.loads(body))
    print(json.dumps({
        'baseline_kb': baseline,
        'peak_kb': _vm_kb('VmHWM'),
        'children_peak_kb':
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }), flush=True)


def measure(bench, kind, request_path):
    _, amphora = bench.pair(kind[:2])
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--child', kind,
         '--request', request_path, '--namespace', amphora,
         '--workdir', bench.workdir],
        capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f'{kind} child failed: {done.stderr[-800:]}')
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {key[:-len('_kb')]: kb / 1024.0 for key, kb in report.items()}


def main(argv=None):
    parser = _common.argument_parser(__doc__, 'tiny sizes, for the smoke test')
    parser.add_argument('--child', choices=('ours', 'upstream'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--request', help=argparse.SUPPRESS)
    parser.add_argument('--namespace', help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.request, args.namespace, args.workdir)
        return 0
    entries = args.entries or (500 if args.quick else 50000)

    with _common.Bench('me') as bench:
        request_path = os.path.join(bench.workdir, 'request.json')
        with open(request_path, 'w') as body:
            json.dump(_common.make_request(entries, args.seed), body)
        results = {kind: measure(bench, kind, request_path)
                   for kind in ('ours', 'upstream')}
    for kind, mb in results.items():
        _common.print_value(f'memory_baseline_mb_{kind}_{entries}',
                            mb['baseline'], 'MB')
        _common.print_value(f'memory_peak_mb_{kind}_{entries}',
                            mb['peak'], 'MB')
        _common.print_value(f'memory_increase_mb_{kind}_{entries}',
                            mb['peak'] - mb['baseline'], 'MB')
        _common.print_value(f'memory_children_peak_mb_{kind}_{entries}',
                            mb['children_peak'], 'MB')
    # The engine's only child processes are forks pyroute2 makes to open
    # sockets in a namespace: their RSS is the agent's own pages, shared
    # copy-on-write, so it is not added. nft, by contrast, is a program of
    # its own that holds the whole ruleset while the agent waits for it.
    ours = results['ours']['peak']
    _common.print_note(f'target: ours peak <= {TARGET_MB:.0f} MB: '
                       f'{"met" if ours <= TARGET_MB else "MISSED"}')
    upstream = (results['upstream']['peak']
                + results['upstream']['children_peak'])
    _common.print_ratio(f'memory_peak_ours_over_upstream_{entries}',
                        ours / upstream)
    return 0


if __name__ == '__main__':
    sys.exit(main())
