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
"""Load balancers created per minute with one worker and with two.

On a testbed of this script's own, with the compute emulator answering
every Compute/Image API request only after ``--latency-ms`` (a cloud's API
latency), ``--lbs`` load balancers are created at once through Octavia's
API and timed from the first create call until the last one is ACTIVE.
After one untimed create (warm-up), first with the one worker inside
octavia-driver-agent, then with a second, standalone
``sriov-octavia-worker`` on the same octavia.conf, which shares the redis
jobboard. Each worker runs up to ``[sriov_worker] max_simultaneous_jobs``
jobs at a time (4 by default)::

    lb_throughput.py [--lbs 8] [--latency-ms 200] [--topology SINGLE]
                     [--max-workers N] [--port-base 17000]

Prints::

    value lbs_per_minute_1_workers = <number> LBs/min
    value lbs_per_minute_2_workers = <number> LBs/min
    ratio lbs_per_minute_2_workers_over_1 = <number>
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

import _common
import _lb_testbed

PREFIX = 'tth'
WORKER = os.path.join(os.path.dirname(sys.executable),
                      'sriov-octavia-worker')
TIMEOUT = 1200
# What the worker logs once it takes jobs from the board.
READY_LINE = 'claims jobs on'


@contextlib.contextmanager
def standalone_worker(tb, timeout=120):
    """A second worker process on the testbed's configuration."""
    log_file = _lb_testbed.log_path(tb, 'sriov-octavia-worker')
    with open(log_file, 'ab') as log:
        process = subprocess.Popen(
            [WORKER, '--config-file', tb.octavia_conf],
            stdout=log, stderr=subprocess.STDOUT, cwd=tb.state_dir)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with open(log_file, errors='replace') as log:
                if READY_LINE in log.read():
                    break
            if process.poll() is not None:
                raise RuntimeError(f'the worker exited; see {log_file}')
            if time.monotonic() > deadline:
                raise RuntimeError(f'the worker did not start; see '
                                   f'{log_file}')
            time.sleep(0.2)
        yield process
    finally:
        # SIGTERM: running flows suspend and go back to the board.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def create_batch(conn, flavor_id, subnet_id, count, tag):
    """Create ``count`` load balancers at once; return LBs per minute."""
    began = time.monotonic()
    lb_ids = [_lb_testbed.create_load_balancer(
        conn, f'{PREFIX}-{tag}-{index}', flavor_id, subnet_id)
        for index in range(count)]
    done = _lb_testbed.wait_for_status(conn, lb_ids, TIMEOUT)
    failed = sorted(lb_id for lb_id, (status, _seen) in done.items()
                    if status != 'ACTIVE')
    last = max(seen for _status, seen in done.values())
    _lb_testbed.delete_load_balancers(conn, lb_ids, TIMEOUT)
    if failed:
        raise RuntimeError(f'load balancers {failed} went to ERROR')
    return count * 60.0 / (last - began)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lbs', type=int, default=8,
                        help='load balancers created at once per run')
    parser.add_argument('--topology', default='SINGLE',
                        choices=('SINGLE', 'ACTIVE_STANDBY'))
    parser.add_argument('--normal-vip', action='store_true',
                        help='sriov_vip false (default: true)')
    parser.add_argument('--max-workers', type=int,
                        help='[sriov_worker] max_simultaneous_jobs of both '
                             'workers '
                             '(default: as configured, 4)')
    _lb_testbed.add_testbed_arguments(
        parser, 17000, 'two load balancers: does the script work')
    args = parser.parse_args(argv)
    if args.quick:
        args.lbs = 2

    with _lb_testbed.running_testbed(args.port_base, PREFIX,
                                     args.state_dir) as tb:
        if args.max_workers:
            _lb_testbed.set_worker_option(tb, 'max_simultaneous_jobs',
                                          args.max_workers)
        conn = tb.connect()
        subnet_id = _lb_testbed.vip_subnet_id(conn)
        flavor_id = _lb_testbed.octavia_flavor(
            conn, f'{PREFIX}-flavor', args.topology,
            sriov_vip=not args.normal_vip)
        _common.print_note(
            f'{args.lbs} {args.topology} load balancers at once, sriov_vip '
            f'{not args.normal_vip}, {args.latency_ms:g} ms per Compute/'
            f'Image API request, max_workers '
            f'{args.max_workers or "as configured"}')
        _lb_testbed.nova_faults(tb, api_latency_ms=args.latency_ms)
        rates = {}
        try:
            # Not timed: the first create of a fresh testbed also pays for
            # connections, discovery and caches the others then share.
            create_batch(conn, flavor_id, subnet_id, 1, 'warm-up')
            rates[1] = create_batch(conn, flavor_id, subnet_id, args.lbs,
                                    '1w')
            _common.print_value('lbs_per_minute_1_workers', rates[1],
                                'LBs/min')
            with standalone_worker(tb):
                rates[2] = create_batch(conn, flavor_id, subnet_id,
                                        args.lbs, '2w')
            _common.print_value('lbs_per_minute_2_workers', rates[2],
                                'LBs/min')
        finally:
            _lb_testbed.nova_faults(tb)
            conn.close()
    _common.print_ratio('lbs_per_minute_2_workers_over_1',
                        rates[2] / rates[1])
    return 0


if __name__ == '__main__':
    sys.exit(main())
