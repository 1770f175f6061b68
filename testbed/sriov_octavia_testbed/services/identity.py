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
"""The identity stand-in (testbed.identity): tokens, catalog, projects."""

import json
import os
import secrets
import stat
import sys

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed.services import base


class Identity(base.Service):
    name = 'identity'
    port_name = 'identity'
    ready_timeout = 20

    @property
    def key_file(self):
        """The key that signs the tokens; kept, so they outlive restarts."""
        return self.testbed.path('etc', 'identity-token.key')

    @property
    def catalog_file(self):
        return self.testbed.path('etc', 'identity-catalog.json')

    def prepare(self):
        if not os.path.exists(self.key_file):
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, 'wb') as f:
                f.write(secrets.token_bytes(32))
        with open(self.catalog_file, 'w') as f:
            json.dump(clouds.catalog(self.testbed), f, indent=2)

    def argv(self):
        return [sys.executable, '-m', 'sriov_octavia_testbed.identity',
                '--host', config.HOST, '--port', str(self.port),
                '--key-file', self.key_file,
                '--catalog-file', self.catalog_file]

    def ready(self):
        return base.http_answers(self.testbed.url('identity') + '/v3')
