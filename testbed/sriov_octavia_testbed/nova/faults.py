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
"""Fault injection the tests switch on through ``/testbed/faults``.

Settings (all optional, merged into the current ones by POST, all cleared by
DELETE):

- ``schedule``: ``"fail"`` or ``"fail_once"``: scheduling raises NoValidHost.
- ``vf_exhausted``: ``true``: every host reports no free VF (boot is not
  scheduled, attach of a direct/macvtap port fails to claim a VF).
- ``boot``: ``"fail"`` or ``"fail_once"``: spawning on the chosen host fails
  (the server goes to ERROR, its VFs and ports are given back).
- ``attach``: ``"fail"`` or ``"fail_once"``: interface attach fails after the
  VF claim (HTTP 500 like a failing hypervisor); nothing stays claimed.
- ``api_latency_ms``: a number: every Compute/Image API request waits that
  long before it is handled.
- ``agent``: ``"unreachable"``: the amphora agents' management path is cut
  (the agents keep running, connections time out). With ``servers`` (a
  list of server ids) only those; without, every amphora, including those
  booted while the fault is set. ``"reachable"`` or DELETE restores it.
"""

import threading

_MODES = ('fail', 'fail_once')


class InvalidFault(ValueError):
    pass


class InjectedFault(Exception):
    """An operation failing because a test asked for it."""

    def __init__(self, operation):
        super().__init__(f'{operation} failed (fault injected)')


def check(settings):
    for key, value in settings.items():
        if key in ('schedule', 'boot', 'attach'):
            if value not in _MODES:
                raise InvalidFault(f'{key} must be one of {_MODES}')
        elif key == 'vf_exhausted':
            if not isinstance(value, bool):
                raise InvalidFault(f'{key} must be true or false')
        elif key == 'api_latency_ms':
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidFault(f'{key} must be a number >= 0')
        elif key == 'agent':
            if value not in ('unreachable', 'reachable'):
                raise InvalidFault(f'{key} must be unreachable or reachable')
        elif key == 'servers':
            if not isinstance(value, list):
                raise InvalidFault(f'{key} must be a list of server ids')
        else:
            raise InvalidFault(f'unknown fault {key}')


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._settings = {}

    def update(self, settings):
        check(settings)
        with self._lock:
            self._settings.update(settings)
            return dict(self._settings)

    def clear(self):
        with self._lock:
            self._settings.clear()

    def current(self):
        with self._lock:
            return dict(self._settings)

    def trips(self, name):
        """Whether operation ``name`` must fail now (consumes fail_once)."""
        with self._lock:
            mode = self._settings.get(name)
            if mode == 'fail_once':
                del self._settings[name]
            return mode in _MODES

    @property
    def vf_exhausted(self):
        with self._lock:
            return bool(self._settings.get('vf_exhausted'))

    @property
    def agents_unreachable(self):
        """Whether newly booted amphorae start cut off as well."""
        with self._lock:
            return (self._settings.get('agent') == 'unreachable'
                    and 'servers' not in self._settings)

    @property
    def api_latency(self):
        with self._lock:
            return self._settings.get('api_latency_ms', 0) / 1000.0
