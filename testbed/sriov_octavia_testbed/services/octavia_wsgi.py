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
"""Octavia's own API application, as the testbed's uwsgi serves it.

With ``auth_strategy = noauth`` no token names the caller's project, and
Octavia then refuses to create load balancers without an explicit project
id, which the ``openstack`` CLI can only resolve through Keystone. Neutron's
noauth pipeline answers that with a fixed project; the same project is
given to Octavia requests that carry none, as a Keystone token would.

Its transactions on SQLite are serialised with the driver-agent's
(testbed.sqlite_locking).
"""

import os

from octavia.api import app

from sriov_octavia_testbed.services import octavia
from sriov_octavia_testbed import sqlite_locking

# The project Neutron's noauth pipeline assigns (neutron.auth).
NOAUTH_PROJECT_ID = 'fake_project_id'


class DefaultProject:
    """WSGI middleware: requests without a project get the testbed's."""

    def __init__(self, application, project_id):
        self.application = application
        self.project_id = project_id

    def __call__(self, environ, start_response):
        environ.setdefault('HTTP_X_PROJECT_ID', self.project_id)
        return self.application(environ, start_response)


def make_application(config_files):
    """Octavia's API reading ``config_files`` in order (a list, or one)."""
    if isinstance(config_files, str):
        config_files = [config_files]
    argv = ['octavia-api']
    for path in config_files:
        argv += ['--config-file', path]
    return DefaultProject(app.setup_app(argv=argv), NOAUTH_PROJECT_ID)


sqlite_locking.serialise_transactions(os.environ[octavia.DB_FILE_ENV])
application = make_application(
    os.environ[octavia.CONFIG_FILE_ENV].split(os.pathsep))
