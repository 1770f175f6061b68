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
"""A whole testbed instance for tests: started, yielded, torn down.

Tests of other parts use it through the pytest fixtures registered in
tests/functional/conftest.py; anything else can use ``running`` directly::

    with fixture.running(state_dir, port_base=24000, prefix='ftb') as tb:
        conn = tb.connect()          # openstacksdk, through tb.clouds_yaml
        ...

Each concurrently running instance needs its own state directory, port
base and prefix.
"""

import contextlib

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import lifecycle


class RunningTestbed(config.Testbed):
    """A started instance: paths and ports plus the ways to reach it."""

    def connect(self):
        """An openstacksdk connection (the caller closes it)."""
        return clouds.connect(self)

    def cli_env(self, environ=None):
        """Environment for the ``openstack`` CLI to use this instance."""
        env = dict(environ or {})
        env.update({'OS_CLIENT_CONFIG_FILE': self.clouds_yaml,
                    'OS_CLOUD': config.CLOUD_NAME})
        return env

    def status(self):
        return lifecycle.status(self)


@contextlib.contextmanager
def running(state_dir, port_base, prefix, seed=True, skip=()):
    """Bring an instance up, yield it, and take it down whatever happened.

    ``seed``: create the default networks, flavors, aggregate and image.
    ``skip``: service names not to start (see lifecycle.SERVICE_CLASSES).
    """
    testbed = RunningTestbed(state_dir, port_base=port_base, prefix=prefix)
    try:
        lifecycle.up(testbed, seed_cloud=seed, skip=skip)
        yield testbed
    finally:
        lifecycle.down(testbed)
