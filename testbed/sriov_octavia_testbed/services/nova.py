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
"""The compute and image emulator (package testbed.nova)."""

import importlib.util
import sys

from sriov_octavia_testbed.services import base


class Nova(base.Service):
    name = 'nova'
    port_name = 'nova'

    def available(self):
        return importlib.util.find_spec(
            'sriov_octavia_testbed.nova') is not None

    def argv(self):
        return [sys.executable, '-m', 'sriov_octavia_testbed.nova',
                '--state-dir', self.testbed.state_dir,
                '--port', str(self.port),
                '--neutron-url', self.testbed.url('neutron'),
                '--inventory', self.testbed.inventory_file,
                '--prefix', self.testbed.prefix]

    def ready(self):
        return base.http_answers(self.testbed.url('nova') + '/')
