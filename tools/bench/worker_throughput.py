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
"""Jobs per minute with one worker and with two sharing one jobboard.

Each job is a flow of tasks that sleep, standing in for the latency of the
cloud APIs a real flow waits on; scaling out workers is what hides that
latency. Workers are real ``sriov-octavia-worker`` processes on a real
redis-server with SQLite flow persistence::

    worker_throughput.py [--jobs 40] [--tasks 3] [--latency 0.2]
                         [--max-workers 1] [--engine serial|parallel]

The workers start first; throughput is counted from the first task's start
to the last task's end and printed as::

    value jobs_per_minute_<n>_workers = <number> jobs/min
    ratio throughput_2_workers_over_1 = <number>

Other flows plug in with ``--flow NAME --store-factory module:function
--config-file octavia.conf``: the store factory gets the job's index and
returns its store, the workers use that configuration, and completion is
read from the jobboard. Load balancers created through Octavia's API on a
testbed, with one and two workers, are lb_throughput.py's.
"""

import argparse
import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_TOP = os.path.dirname(os.path.dirname(_HERE))
if _TOP not in sys.path:
    # The benchmarks run as plain scripts from a checkout.
    sys.path.append(_TOP)

import _common  # noqa: E402
from oslo_config import cfg  # noqa: E402
from taskflow.patterns import linear_flow  # noqa: E402
from taskflow import task  # noqa: E402

from sriov_octavia import conf as sriov_conf  # noqa: E402
from sriov_octavia.worker import jobboard  # noqa: E402
from sriov_octavia.worker import persistence  # noqa: E402

WORKER = os.path.join(os.path.dirname(sys.executable),
                      'sriov-octavia-worker')
REDIS_PORT = 59385


class Sleep(task.Task):
    """Waits like a task waiting on a cloud API; records when it ran."""

    def execute(self, latency, record_dir, job_index):
        start = time.time()
        time.sleep(latency)
        with open(os.path.join(record_dir, '%d' % job_index), 'a') as log:
            log.write('%s %f %f\n' % (self.name, start, time.time()))


def latency_flow(tasks):
    """A flow of ``tasks`` sleeping tasks (saved by import path)."""
    return linear_flow.Flow('bench.latency').add(
        *[Sleep('sleep-%d' % i) for i in range(tasks)])


def print_value(name, value, unit):
    print('value %s = %.6g %s' % (name, value, unit), flush=True)


def print_ratio(name, value):
    print('ratio %s = %.6g' % (name, value), flush=True)


# Octavia's own options: the jobboard, the persistence, the engine.
TASK_FLOW_OPTIONS = ('engine', 'jobboard_backend_hosts',
                     'jobboard_backend_port', 'persistence_connection')


def write_config(path, base_file, options):
    """A config file with the bench's settings after ``base_file``'s.

    oslo.config reads later files over earlier ones.
    """
    sections = {'sriov_worker': [], 'task_flow': []}
    for key, value in options.items():
        group = 'task_flow' if key in TASK_FLOW_OPTIONS else 'sriov_worker'
        sections[group].append('%s = %s\n' % (key, value))
    with open(path, 'w') as conf_file:
        for group, lines in sections.items():
            conf_file.write('[%s]\n%s' % (group, ''.join(lines)))
    return ([base_file] if base_file else []) + [path]


def load_conf(files):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    args = []
    for path in files:
        args += ['--config-file', path]
    conf(args, project='octavia')
    return conf


def start_workers(count, files, log_dir):
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([_HERE, _TOP,
                                           os.environ.get('PYTHONPATH', '')]))
    workers = []
    for i in range(count):
        args = [WORKER]
        for path in files:
            args += ['--config-file', path]
        log = open(os.path.join(log_dir, 'worker-%d.log' % i), 'w')
        workers.append((subprocess.Popen(args, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env=env), log))
    return workers


def stop_workers(workers):
    for process, _log in workers:
        process.terminate()
    for process, log in workers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def wait_for_empty_board(conf, timeout):
    deadline = time.monotonic() + timeout
    with persistence.backend(conf) as backend:
        with jobboard.open_board(conf, backend) as board:
            while jobboard.jobs_on_board(board):
                if time.monotonic() > deadline:
                    sys.exit('jobs still on the board after %d s' % timeout)
                time.sleep(0.1)


def post_jobs(conf, args, record_dir):
    if args.flow:
        module, function = args.store_factory.split(':')
        store_for = getattr(importlib.import_module(module), function)
        for index in range(args.jobs):
            jobboard.post_job(args.flow, store_for(index), conf=conf)
        return
    # Saved by import path: as a script this module is __main__, which the
    # workers cannot import.
    factory = importlib.import_module('worker_throughput').latency_flow
    for index in range(args.jobs):
        jobboard.post_factory_job(
            factory, 'bench.latency %d' % index,
            {'latency': args.latency, 'record_dir': record_dir,
             'job_index': index},
            conf=conf, factory_args=[args.tasks])


def sleep_span(record_dir):
    """Seconds from the first task's start to the last task's end."""
    starts, ends = [], []
    for name in os.listdir(record_dir):
        with open(os.path.join(record_dir, name)) as log:
            for line in log:
                _task, start, end = line.split()
                starts.append(float(start))
                ends.append(float(end))
    return max(ends) - min(starts)


def wait_until_ready(workers, run_dir, timeout):
    """Wait for every worker to log that it claims jobs."""
    deadline = time.monotonic() + timeout
    for index, (process, _log) in enumerate(workers):
        path = os.path.join(run_dir, 'worker-%d.log' % index)
        while True:
            with open(path) as log:
                if 'claims jobs on' in log.read():
                    break
            if process.poll() is not None:
                sys.exit('worker %d exited, see %s' % (index, path))
            if time.monotonic() > deadline:
                sys.exit('worker %d did not start, see %s' % (index, path))
            time.sleep(0.1)


def run_once(args, workdir, base_options, worker_count, started_at):
    """Run ``worker_count`` workers, post the jobs, return jobs/minute."""
    run_dir = os.path.join(workdir, '%d-workers' % worker_count)
    record_dir = os.path.join(run_dir, 'records')
    os.makedirs(record_dir)
    options = dict(base_options,
                   jobboard_name='bench_%d_%d' % (started_at, worker_count))
    files = write_config(os.path.join(run_dir, 'bench.conf'),
                         args.config_file, options)
    conf = load_conf(files)
    workers = start_workers(worker_count, files, run_dir)
    try:
        # Start-up is not what is measured.
        wait_until_ready(workers, run_dir, args.timeout)
        began = time.time()
        post_jobs(conf, args, record_dir)
        wait_for_empty_board(conf, args.timeout)
        ended = time.time()
    finally:
        stop_workers(workers)
    # The sleeping flow records when its tasks ran: count from the first
    # task's start to the last one's end. Other flows: from the first post
    # to the empty board.
    span = ended - began if args.flow else sleep_span(record_dir)
    return args.jobs * 60.0 / span


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=40)
    parser.add_argument('--tasks', type=int, default=3,
                        help='sleeping tasks per job')
    parser.add_argument('--latency', type=float, default=0.2,
                        help='seconds each task sleeps')
    parser.add_argument('--max-workers', type=int, default=1,
                        help='jobs one worker runs at a time')
    parser.add_argument('--engine', default='parallel',
                        choices=('serial', 'parallel'))
    parser.add_argument('--redis-port', type=int, default=REDIS_PORT,
                        help='port of the redis-server started here '
                             '(without --config-file)')
    parser.add_argument('--config-file',
                        help='octavia.conf of an existing deployment (the '
                             'testbed): its jobboard and persistence')
    parser.add_argument('--flow', help='a name in flows.FLOWS instead of '
                                       'the sleeping flow')
    parser.add_argument('--store-factory',
                        help='module:function(index) -> store, with --flow')
    parser.add_argument('--timeout', type=float, default=1800)
    parser.add_argument('--quick', action='store_true',
                        help='a few short jobs: does the script still work')
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.tasks, args.latency = 6, 2, 0.1
    if args.flow and not args.store_factory:
        parser.error('--flow needs --store-factory')

    started_at = int(time.time())
    workdir = tempfile.mkdtemp(prefix='bench-worker-')
    base_options = {'max_simultaneous_jobs': args.max_workers,
                    'engine': args.engine,
                    'poll_interval': 0.1}
    try:
        with contextlib.ExitStack() as stack:
            if not args.config_file:
                port = stack.enter_context(
                    _common.redis_server(workdir, args.redis_port))
                base_options.update({
                    'jobboard_backend_hosts': '127.0.0.1',
                    'jobboard_backend_port': port,
                    'persistence_connection': 'sqlite:///' + os.path.join(
                        workdir, 'taskflow.sqlite')})
            work = (args.flow if args.flow else '%d tasks x %.3g s' % (
                args.tasks, args.latency))
            print('# %d jobs of %s, %d job(s) at a time per worker, %s '
                  'engine' % (args.jobs, work, args.max_workers,
                              args.engine), flush=True)
            rates = {}
            for count in (1, 2):
                rates[count] = run_once(args, workdir, base_options, count,
                                        started_at)
                print_value('jobs_per_minute_%d_workers' % count,
                            rates[count], 'jobs/min')
            print_ratio('throughput_2_workers_over_1', rates[2] / rates[1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
