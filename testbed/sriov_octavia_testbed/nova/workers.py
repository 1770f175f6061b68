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
"""The threads that build, delete and detach, one server at a time.

A per-server lock keeps the threads of one server in order. ``Worker`` is
the base of the parts whose methods run in those threads (``build``,
``interfaces``): what they all work with.
"""

import threading


class ServerThreads:
    """The threads that build, delete and detach, and the servers' locks."""

    def __init__(self):
        self._locks = {}
        self._locks_guard = threading.Lock()
        self._threads = []

    def lock(self, server_id):
        with self._locks_guard:
            return self._locks.setdefault(server_id, threading.Lock())

    def forget(self, server_id):
        with self._locks_guard:
            self._locks.pop(server_id, None)

    def start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def wait(self, timeout=None):
        for thread in list(self._threads):
            thread.join(timeout)


class Worker:
    """The emulator's state, Neutron, the faults and the other parts."""

    def __init__(self, state, neutron, faults, threads, claims, records,
                 hypervisor):
        self.state = state
        self.neutron = neutron
        self.faults = faults
        self._threads = threads
        self._claims = claims
        self._records = records
        self._hypervisor = hypervisor
