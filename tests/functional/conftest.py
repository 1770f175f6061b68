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
"""Fixtures shared by the functional tests: whole testbed instances.

``testbed`` is one instance for the whole session, on the port base and
prefix given by SRIOV_TESTBED_PORT_BASE / SRIOV_TESTBED_PREFIX (default
21000 / "ftb"). Parts whose tests may run at the same time as others' pick
their own, overriding ``testbed`` in their conftest.py, a thousand apart
and below the kernel's range for outgoing connections (``testbed.config``)::

    @pytest.fixture(scope='session')
    def testbed(testbed_factory):
        return testbed_factory(port_base=25000, prefix='tdrv')

A test module with an instance of its own declares ``PORT_BASE`` and
``PREFIX`` (its own, so that modules running beside each other never share
ports, namespaces or the management subnet) and uses ``tb`` and ``conn``.
"""

import contextlib
import os

import pytest

from sriov_octavia_testbed import fixture


@pytest.fixture(scope='session')
def testbed_factory(tmp_path_factory):
    """``start(port_base, prefix, seed=True, skip=()) -> RunningTestbed``.

    Every instance started through it is taken down at the end of the
    session; its state directory (logs!) stays in pytest's tmp dir.
    """
    with contextlib.ExitStack() as stack:
        def start(port_base, prefix, seed=True, skip=()):
            state_dir = tmp_path_factory.mktemp(f'testbed-{prefix}')
            return stack.enter_context(fixture.running(
                str(state_dir), port_base=port_base, prefix=prefix,
                seed=seed, skip=skip))
        yield start


@pytest.fixture(scope='session')
def testbed(testbed_factory):
    return testbed_factory(
        port_base=int(os.environ.get('SRIOV_TESTBED_PORT_BASE', 21000)),
        prefix=os.environ.get('SRIOV_TESTBED_PREFIX', 'ftb'))


@pytest.fixture(scope='module')
def tb(request, testbed_factory):
    """The test module's own instance, on its PORT_BASE and PREFIX."""
    return testbed_factory(port_base=request.module.PORT_BASE,
                           prefix=request.module.PREFIX)


@pytest.fixture(scope='module')
def conn(tb):
    """An openstacksdk connection to ``tb``."""
    connection = tb.connect()
    yield connection
    connection.close()
