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
"""The Identity stand-in (testbed.identity) the CLI needs for some commands."""

import sys

from sriov_octavia_testbed import config
from sriov_octavia_testbed.services import base


class Identity(base.Service):
    name = 'identity'
    port_name = 'identity'
    ready_timeout = 20

    def argv(self):
        return [sys.executable, '-m', 'sriov_octavia_testbed.identity',
                '--host', config.HOST, '--port', str(self.port)]

    def ready(self):
        return base.http_answers(self.testbed.url('identity') + '/v3')
