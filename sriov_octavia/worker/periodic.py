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
"""The worker's periodic loops: health, certificates, housekeeping.

Each runs in a daemon thread of its own, so that a slow round of one (a
hung cloud API) does not hold up the others, and none may stop the worker:
a failing round is logged and the next one starts afresh.
"""

import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def run(what, option, interval, stop_event, make_round):
    """Call a round every ``interval`` seconds until ``stop_event``.

    :param what: what the rounds do, for the log.
    :param option: the option setting ``interval``; 0 or less turns the
        loop off.
    :param make_round: called once, when the loop is on: the round.
    """
    if interval <= 0:
        LOG.info('%s: off (%s is %s).', what, option, interval)
        return
    one_round = make_round()
    while not stop_event.wait(interval):
        try:
            one_round()
        except Exception:
            LOG.exception('%s: round failed; trying again in %s s', what,
                          interval)


def start(name, run_loop, *args):
    """``run_loop(*args)`` in a daemon thread named ``name``; the thread."""
    thread = threading.Thread(target=run_loop, args=args, name=name,
                              daemon=True)
    thread.start()
    return thread
