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
"""What the tests of a module's own testbed instance use besides it.

A module declares ``PORT_BASE`` and ``PREFIX`` and uses ``tb`` and
``conn`` (tests/functional/conftest.py), ``fabric``, ``faults`` and
``hosts``.
"""

import pytest
import requests

from sriov_octavia_testbed import plumbing
from tests.functional.sriov_octavia import http_service


@pytest.fixture(scope='module')
def fabric(tb):
    return plumbing.Fabric(tb.state_dir, prefix=tb.prefix)


@pytest.fixture
def faults(tb):
    """``inject(**settings)``: the Nova emulator's faults, for one test."""
    url = tb.url('nova') + '/testbed/faults'

    def inject(**settings):
        requests.post(url, json=settings, timeout=10).raise_for_status()

    yield inject
    requests.delete(url, timeout=10).raise_for_status()


@pytest.fixture
def hosts(conn, fabric):
    """``make(name)``: a host on the VIP subnet, removed after the test."""
    made = []

    def make(name):
        host = http_service.Host(conn, fabric, name)
        made.append(host)
        return host

    yield make
    for host in made:
        host.remove()
