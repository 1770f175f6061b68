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

import logging
import threading
from unittest import mock

import pytest
from taskflow import exceptions as tf_exc

from sriov_octavia.worker import conductor


@pytest.fixture
def worker():
    board = mock.Mock()
    worker = conductor.WorkerConductor('me', board, mock.Mock(),
                                       claim_expiry=30)
    return worker


def _hold(worker, uuid='job-1'):
    job = mock.Mock(uuid=uuid)
    engine = mock.Mock()
    worker._held[uuid] = (job, engine)
    return job, engine


def test_own_claims_are_extended(worker):
    job, engine = _hold(worker)
    worker._jobboard.find_owner.return_value = 'me'
    worker.renew_claims()
    job.extend_expiry.assert_called_once_with(30)
    engine.suspend.assert_not_called()


def test_expired_claim_is_taken_back(worker):
    job, engine = _hold(worker)
    # The Redis board fails to decode a missing owner.
    worker._jobboard.find_owner.side_effect = TypeError
    worker.renew_claims()
    worker._jobboard.claim.assert_called_once_with(job, 'me')
    engine.suspend.assert_not_called()


def test_flow_is_suspended_when_another_worker_owns_the_job(worker):
    job, engine = _hold(worker)
    worker._jobboard.find_owner.return_value = 'someone-else'
    worker.renew_claims()
    job.extend_expiry.assert_not_called()
    engine.suspend.assert_called_once_with()


def test_lost_race_for_an_expired_claim_suspends(worker):
    job, engine = _hold(worker)
    worker._jobboard.find_owner.side_effect = [None, 'someone-else']
    worker._jobboard.claim.side_effect = tf_exc.UnclaimableJob('taken')
    worker.renew_claims()
    engine.suspend.assert_called_once_with()


def test_jobboard_trouble_keeps_the_flow_running(worker):
    job, engine = _hold(worker)
    worker._jobboard.find_owner.side_effect = tf_exc.JobFailure('redis down')
    worker.renew_claims()
    engine.suspend.assert_not_called()


def test_a_job_finished_meanwhile_is_not_taken_back(worker):
    first, _ = _hold(worker, 'job-1')
    second, _ = _hold(worker, 'job-2')

    def owner(job):
        if job is first:
            # job-2 finishes while job-1's claim is renewed: handed back
            # to the board, where nobody owns it.
            worker._held.pop('job-2')
            return 'me'
        return None

    worker._jobboard.find_owner.side_effect = owner
    worker.renew_claims()
    worker._jobboard.claim.assert_not_called()
    second.extend_expiry.assert_not_called()


def test_a_job_does_not_finish_during_its_renewal(worker):
    job = mock.Mock(uuid='job-1')
    held = conductor._HeldJob(mock.Mock(), job, worker._held,
                              worker._held_lock)
    held.register()

    def owner(job):
        # Its deregistration (and so its hand-back) waits for this.
        assert worker._held_lock.locked()
        return None

    worker._jobboard.find_owner.side_effect = owner
    worker.renew_claims()
    worker._jobboard.claim.assert_called_once_with(job, 'me')
    held.deregister()
    assert worker._held == {}


def test_session_bound_claims_need_no_renewal():
    worker = conductor.WorkerConductor('me', mock.Mock(), mock.Mock(),
                                       claim_expiry=None)
    job, engine = _hold(worker)
    worker.renew_claims()
    worker._jobboard.find_owner.assert_not_called()


def test_worker_names_are_unique_per_call():
    assert conductor.worker_name() != conductor.worker_name()


# A bound on waits for what the threads under test do, so that a broken
# stop path fails the test instead of hanging it; never a delay that has to
# be long enough for something to happen.
BOUND = 30


class _FakeConductor(object):
    """Runs until told to finish; reports its stops and renewals."""

    name = 'me'

    def __init__(self, renew=None, error=None):
        self.stopped = threading.Event()
        self.flows_done = threading.Event()
        self.renewed_after_stop = threading.Event()
        self._renew = renew
        self._error = error

    def run(self):
        if self._error is not None:
            raise self._error
        assert self.flows_done.wait(BOUND), 'the flows were never finished'

    def stop(self):
        self.stopped.set()

    def renew_claims(self):
        if self.stopped.is_set():
            self.renewed_after_stop.set()
        if self._renew is not None:
            self._renew()


class _Serving(object):
    """``conductor._serve`` in a thread, as a worker runs it."""

    def __init__(self, fake, period=0.01):
        self.stop_event = threading.Event()
        self.errors = []
        self._thread = threading.Thread(
            target=self._serve, args=(fake, period), daemon=True)
        self._thread.start()

    def _serve(self, fake, period):
        try:
            conductor._serve(fake, period, self.stop_event)
        except Exception as e:
            self.errors.append(e)

    def join(self):
        self._thread.join(BOUND)
        assert not self._thread.is_alive(), '_serve did not return'


def _threads(prefix):
    return [thread for thread in threading.enumerate()
            if thread.name.startswith(prefix)]


def test_stop_does_not_wait_for_a_renewal_in_progress():
    renewing = threading.Event()
    renewal_may_end = threading.Event()

    def slow_renewal():
        renewing.set()
        assert renewal_may_end.wait(BOUND)

    fake = _FakeConductor(renew=slow_renewal)
    serving = _Serving(fake)
    assert renewing.wait(BOUND)
    serving.stop_event.set()
    try:
        # While the renewal hangs on the jobboard, flows must already stop
        # going on to their next task.
        assert fake.stopped.wait(BOUND)
    finally:
        renewal_may_end.set()
        fake.flows_done.set()
    serving.join()
    assert serving.errors == []


def test_claims_are_renewed_until_the_flows_have_suspended():
    fake = _FakeConductor()
    serving = _Serving(fake)
    serving.stop_event.set()
    assert fake.stopped.wait(BOUND)
    # The flows are still finishing their current task: their claims must
    # not lapse meanwhile.
    assert fake.renewed_after_stop.wait(BOUND)
    fake.flows_done.set()
    serving.join()
    assert serving.errors == []
    assert _threads('claims-me') == []
    assert _threads('conductor-me') == []


def test_stop_is_logged_once_the_conductor_is_stopped(caplog):
    fake = _FakeConductor()
    serving = _Serving(fake)
    with caplog.at_level(logging.INFO, logger=conductor.__name__):
        serving.stop_event.set()
        assert fake.stopped.wait(BOUND)
        fake.flows_done.set()
        serving.join()
    # The line tells (operators and the functional tests) that no task that
    # was not scheduled yet will run in this worker any more.
    assert 'Worker me claims no more jobs' in caplog.text


def test_a_failed_renewal_is_retried():
    failures = []
    retried = threading.Event()

    def renew():
        if not failures:
            failures.append(True)
            raise RuntimeError('unexpected')
        retried.set()

    fake = _FakeConductor(renew=renew)
    serving = _Serving(fake)
    try:
        assert retried.wait(BOUND)
    finally:
        serving.stop_event.set()
        fake.flows_done.set()
    serving.join()
    assert serving.errors == []


def test_a_conductor_that_dies_raises_its_error():
    fake = _FakeConductor(error=RuntimeError('jobboard gone'))
    serving = _Serving(fake)
    serving.join()
    assert [str(e) for e in serving.errors] == ['jobboard gone']
    assert fake.stopped.is_set()
