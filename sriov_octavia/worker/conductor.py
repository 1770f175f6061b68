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
"""The worker's conductor: claims jobs, runs their flows, keeps its claims.

Several workers (driver-agent provider agents or standalone processes) share
one jobboard. A worker renews the claims of the jobs it runs; when it dies
its claims expire and another worker claims the job and resumes the flow
from the persisted task states, so finished tasks do not run again. A worker
that finds its claim taken over suspends that flow instead of running it a
second time beside the new owner.
"""

import contextlib
import os
import socket
import threading

import futurist
from oslo_log import log as logging
from oslo_utils import uuidutils
from taskflow.conductors.backends import impl_nonblocking
from taskflow import exceptions as tf_exc
from taskflow.listeners import base as listener_base

from sriov_octavia.worker import jobboard
from sriov_octavia.worker import persistence

LOG = logging.getLogger(__name__)


def worker_name():
    """A name unique to this process.

    Claims are owned by name: two workers sharing a name would take each
    other's jobs for their own.
    """
    return '%s:%d:%s' % (socket.gethostname(), os.getpid(),
                         uuidutils.generate_uuid()[:8])


class _HeldJob(listener_base.Listener):
    """Registers a job with its engine while the engine runs it."""

    def __init__(self, engine, job, held, lock):
        super(_HeldJob, self).__init__(engine)
        self._job = job
        self._held = held
        self._lock = lock

    def register(self):
        super(_HeldJob, self).register()
        with self._lock:
            self._held[self._job.uuid] = (self._job, self._engine)

    def deregister(self):
        # Waits for a renewal of this job's claim in progress: the job is
        # consumed or handed back only after this.
        with self._lock:
            self._held.pop(self._job.uuid, None)
        super(_HeldJob, self).deregister()


class WorkerConductor(impl_nonblocking.NonBlockingConductor):
    """taskflow's thread-pool conductor plus claim renewal and cleanup."""

    def __init__(self, name, board, persistence_backend, claim_expiry,
                 save_logbook=False, **kwargs):
        super(WorkerConductor, self).__init__(
            name, board, persistence=persistence_backend, **kwargs)
        self.claim_expiry = claim_expiry
        self._held = {}
        self._held_lock = threading.Lock()
        # taskflow logs its own progress at DEBUG (Octavia's logging keeps
        # taskflow at WARN): say what became of each job.
        self.notifier.register('job_consumed', self._log_outcome)
        self.notifier.register('job_abandoned', self._log_outcome)
        if not save_logbook:
            self.notifier.register('job_consumed', self._destroy_logbook)

    @property
    def name(self):
        """The owner name of this worker's claims."""
        return self._name

    def _listeners_from_job(self, job, engine):
        listeners = super(WorkerConductor, self)._listeners_from_job(
            job, engine)
        listeners.append(_HeldJob(engine, job, self._held, self._held_lock))
        return listeners

    def _log_outcome(self, event, details):
        if event == 'job_consumed':
            LOG.info('Job %s (%s) finished.', details['job'].uuid,
                     details['job'].name)
        else:
            LOG.info('Job %s (%s) handed back to the jobboard.',
                     details['job'].uuid, details['job'].name)

    def _destroy_logbook(self, event, details):
        job = details['job']
        book = job.book
        if book is None:
            return
        try:
            with contextlib.closing(
                    self._persistence.get_connection()) as connection:
                connection.destroy_logbook(book.uuid)
        except tf_exc.NotFound:
            LOG.debug('Logbook of job %s already gone.', job.uuid)

    def _owner(self, job):
        try:
            return self._jobboard.find_owner(job)
        except TypeError:
            # The Redis board cannot decode a missing owner: nobody owns it.
            return None

    def _renew(self, job):
        """Renew the claim on ``job`` if this worker owns it; the owner."""
        owner = self._owner(job)
        if owner is None:
            # Expired without anybody taking it over: take it back.
            try:
                self._jobboard.claim(job, self._name)
            except (tf_exc.UnclaimableJob, tf_exc.NotFound):
                return self._owner(job)
            LOG.warning('Claim on job %s had expired; reclaimed.', job)
            return self._name
        if owner == self._name:
            job.extend_expiry(self.claim_expiry)
        return owner

    def renew_claims(self):
        """Extend the claims of the running jobs this worker still owns.

        A flow whose job another worker owns now is suspended here.
        """
        if self.claim_expiry is None:
            return
        for job, engine in list(self._held.values()):
            # A job that finished meanwhile may be back on the board
            # (suspended at a stop): taking it back as an expired claim
            # would keep it from the other workers until the claim expired.
            with self._held_lock:
                if job.uuid not in self._held:
                    continue
                try:
                    owner = self._renew(job)
                except tf_exc.JobFailure:
                    LOG.warning('Could not renew the claim on job %s; '
                                'retrying.', job, exc_info=True)
                    continue
            if owner == self._name or job.uuid not in self._held:
                # Ours, or finished and consumed meanwhile.
                continue
            LOG.error('Job %s is now owned by %s, not by this worker (%s): '
                      'suspending its flow here so that it does not run '
                      'twice.', job, owner, self._name)
            engine.suspend()


@contextlib.contextmanager
def _engine_settings(conf):
    """The engine name and options every job's engine gets."""
    engine = conf.task_flow.engine
    if engine != 'parallel':
        yield engine, {}
        return
    # One thread pool for all the jobs of this worker: an engine with a pool
    # of its own starts and joins its threads for every job, which costs
    # more than a small flow's work.
    executor = futurist.ThreadPoolExecutor(
        max_workers=(conf.sriov_worker.max_simultaneous_jobs
                     * conf.task_flow.max_workers))
    try:
        yield engine, {'executor': executor}
    finally:
        executor.shutdown(wait=True)


def _serve(conductor, period, stop_event):
    """Run the conductor in a thread, renewing claims until it is done.

    The conductor is stopped as soon as ``stop_event`` is set: taskflow's
    engines look at their conductor before they schedule a task, so a task
    not yet scheduled then does not run here.
    """
    errors = []
    finished = threading.Event()

    def _run_conductor():
        try:
            conductor.run()
        except Exception as e:
            errors.append(e)
            LOG.exception('Worker %s stopped on an error.', conductor.name)
        finally:
            finished.set()

    def _keep_claims():
        # Renewals have a thread of their own: a slow jobboard may delay a
        # renewal but never the stop, during which a flow would go on to
        # its next task.
        while not finished.wait(period):
            try:
                conductor.renew_claims()
            except Exception:
                # A claim that lapses lets another worker run the flow
                # beside this one: keep trying.
                LOG.exception('Worker %s could not renew its claims; '
                              'retrying.', conductor.name)

    runner = threading.Thread(target=_run_conductor,
                              name='conductor-' + conductor.name, daemon=True)
    renewer = threading.Thread(target=_keep_claims,
                               name='claims-' + conductor.name, daemon=True)
    runner.start()
    renewer.start()
    try:
        # Wake up every period to notice a conductor that died on its own.
        while not finished.is_set() and not stop_event.wait(period):
            continue
    finally:
        conductor.stop()
        if stop_event.is_set():
            LOG.info('Worker %s claims no more jobs; its running flows '
                     'suspend after their current task.', conductor.name)
        # Running flows finish their current task before they suspend; the
        # renewer keeps their claims alive meanwhile.
        runner.join()
        renewer.join()
    if errors:
        raise errors[0]


def run(conf, stop_event, name=None):
    """Claim and run jobs until ``stop_event`` is set.

    On stop the running flows are suspended after their current task and
    their jobs handed back to the jobboard for another worker.
    Raises when the conductor dies on its own (jobboard or database
    unreachable), so that a supervisor can restart it.
    """
    group = conf.sriov_worker
    name = name or worker_name()
    expiry = jobboard.claim_expiry(conf)
    # Renew well before expiry: a renewal may be late by a poll or two.
    period = expiry / 3.0 if expiry else 1.0
    with persistence.backend(conf) as backend, \
            jobboard.open_board(conf, backend) as board, \
            _engine_settings(conf) as (engine, engine_options):
        conductor = WorkerConductor(
            name, board, backend, expiry,
            save_logbook=conf.task_flow.jobboard_save_logbook,
            engine=engine, engine_options=engine_options,
            wait_timeout=group.poll_interval,
            max_simultaneous_jobs=group.max_simultaneous_jobs)
        LOG.info('Worker %s claims jobs on %s jobboard %s.', name,
                 conf.task_flow.jobboard_backend_driver, group.jobboard_name)
        _serve(conductor, period, stop_event)
    LOG.info('Worker %s stopped.', name)
