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
"""Octavia's own octavia-driver-agent, as the testbed runs it.

Its status listener writes to the database the API writes to; on SQLite
both must serialise their transactions (testbed.sqlite_locking). The
listeners and provider agents it forks inherit that.
"""

import os

from octavia.cmd import driver_agent

from sriov_octavia_testbed.services import octavia
from sriov_octavia_testbed import sqlite_locking


def main():
    sqlite_locking.serialise_transactions(os.environ[octavia.DB_FILE_ENV])
    driver_agent.main()


if __name__ == '__main__':
    main()
