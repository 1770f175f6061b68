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
"""The emulator's persistent state: one JSON document in the state dir.

Every change happens inside ``transaction()``, which holds the one lock and
rewrites the file atomically when the block ends, so a restarted emulator
finds exactly what the last finished request left behind.
"""

import contextlib
import copy
import json
import os
import threading

STATE_FILE = 'nova-emulator.json'

_EMPTY = {
    'flavors': {},
    'aggregates': {},
    'next_aggregate_id': 1,
    'server_groups': {},
    'servers': {},
    # host -> pci_slot -> {"server_id": ..., "port_id": ...}
    'pci_allocations': {},
    'images': {},
}


class State:
    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, STATE_FILE)
        self._lock = threading.RLock()
        self._data = copy.deepcopy(_EMPTY)
        if os.path.exists(self.path):
            with open(self.path) as f:
                self._data.update(json.load(f))

    @contextlib.contextmanager
    def transaction(self):
        """Yield the data for reading and changing; persist it afterwards."""
        with self._lock:
            yield self._data
            self._save()

    @contextlib.contextmanager
    def read(self):
        with self._lock:
            yield self._data

    def _save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self._data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
