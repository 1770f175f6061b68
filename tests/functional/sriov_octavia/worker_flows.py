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
"""Flow factories only the worker tests post.

They are saved by import path like the real ones, so worker processes
started by the tests import them from here (the tests put the repository on
PYTHONPATH).
"""

import os
import time

from taskflow.patterns import linear_flow
from taskflow import task

from flows.tasks import status


def record(record_dir, job_key, what):
    with open(os.path.join(record_dir, job_key), 'a') as log:
        log.write('%s %d\n' % (what, os.getpid()))


def records(record_dir, job_key):
    """``[(what, pid), ...]`` in the order the tasks ran."""
    path = os.path.join(record_dir, job_key)
    if not os.path.exists(path):
        return []
    with open(path) as log:
        return [(what, int(pid)) for what, pid
                in (line.split() for line in log.read().splitlines())]


FAILURE = 'the test asked this task to fail'


class Record(task.Task):
    def execute(self, record_dir, job_key):
        record(record_dir, job_key, self.name)


class WaitForRelease(task.Task):
    """Blocks until the file ``<job_key>.release`` exists."""

    def execute(self, record_dir, job_key):
        record(record_dir, job_key, self.name + '-started')
        release = os.path.join(record_dir, job_key + '.release')
        while not os.path.exists(release):
            time.sleep(0.05)
        record(record_dir, job_key, self.name + '-released')


class Fail(task.Task):
    def execute(self, record_dir, job_key):
        record(record_dir, job_key, self.name)
        raise RuntimeError(FAILURE)


def recording_flow():
    return linear_flow.Flow('test.recording').add(
        status.ResolveParents('listener'), Record('work'),
        status.MarkActive('listener'))


def blocking_flow():
    return linear_flow.Flow('test.blocking').add(
        status.ResolveParents('listener'), Record('first'),
        WaitForRelease('block'), Record('last'),
        status.MarkActive('listener'))


def failing_flow():
    return linear_flow.Flow('test.failing').add(
        status.ResolveParents('listener'), Record('first'), Fail('fail'),
        status.MarkActive('listener'))
