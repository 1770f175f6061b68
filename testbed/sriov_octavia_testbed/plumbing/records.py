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
"""The fabric's persisted records and the lock that serialises its work.

What has to survive a restart of the process using the fabric (agent PIDs,
which VF is which interface) is kept in ``<state>/amphorae/<id>/``, one
record an amphora; all else is read back from the kernel. The state
directory also holds ``certs/``, ``logs/`` and ``run/`` (the lock).
"""

import fcntl
import json
import os
import shutil
import threading

from sriov_octavia_testbed.plumbing import errors

_RECORD = 'amphora.json'


class StateLock:
    """Serialises the fabric's work across threads and processes.

    The flock covers a second process on the same state directory (the
    emulator and the testbed CLI's ``down``); the re-entrant lock lets one
    public method call another.
    """

    def __init__(self, path):
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._file = None

    def __enter__(self):
        self._thread_lock.acquire()
        if self._depth == 0:
            self._file = open(self._path, 'a')
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            self._file.close()
            self._file = None
        self._thread_lock.release()


class Records:
    """The state directory: amphora records, and the paths of the rest."""

    def __init__(self, state_dir):
        self.state_dir = os.path.abspath(state_dir)
        for directory in (self.path('amphorae'), self.path('certs'),
                          self.path('logs'), self.path('run')):
            os.makedirs(directory, exist_ok=True)
        self.lock = StateLock(self.path('run', 'fabric.lock'))

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    def amphora_dir(self, server_id):
        return self.path('amphorae', server_id)

    def root(self, server_id, *path):
        """The amphora's own file system, seen by it as ``/``."""
        return self.path('amphorae', server_id, 'root',
                         *[part.lstrip('/') for part in path])

    def server_ids(self):
        """Every amphora with a directory, recorded or not."""
        return os.listdir(self.path('amphorae'))

    def _record_path(self, server_id):
        return self.path('amphorae', server_id, _RECORD)

    def load(self, server_id):
        """The record of ``server_id``, or None."""
        try:
            with open(self._record_path(server_id)) as record_file:
                return json.load(record_file)
        except FileNotFoundError:
            return None

    def get(self, server_id):
        """The record of ``server_id``; PlumbingError if there is none."""
        record = self.load(server_id)
        if record is None:
            raise errors.PlumbingError(f'no amphora {server_id}')
        return record

    def all(self):
        records = []
        for server_id in sorted(self.server_ids()):
            record = self.load(server_id)
            if record is not None:
                records.append(record)
        return records

    def save(self, record):
        path = self._record_path(record['server_id'])
        # Written whole and renamed, so a crash never leaves half a record.
        temporary = f'{path}.tmp'
        with open(temporary, 'w') as record_file:
            json.dump(record, record_file, indent=2, sort_keys=True)
        os.replace(temporary, path)

    def remove(self, server_id):
        """Forget an amphora: its record, its files and its root."""
        shutil.rmtree(self.amphora_dir(server_id), ignore_errors=True)
