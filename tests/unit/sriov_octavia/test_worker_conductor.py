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


def test_session_bound_claims_need_no_renewal():
    worker = conductor.WorkerConductor('me', mock.Mock(), mock.Mock(),
                                       claim_expiry=None)
    job, engine = _hold(worker)
    worker.renew_claims()
    worker._jobboard.find_owner.assert_not_called()


def test_worker_names_are_unique_per_call():
    assert conductor.worker_name() != conductor.worker_name()
