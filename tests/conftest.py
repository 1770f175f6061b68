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
"""Which tests may run beside which (pytest-xdist, ``--dist loadgroup``).

Most tests share things of the machine (fixed loopback ports, namespace
prefixes that other tests' clean-ups sweep, one testbed instance for the
session) and run one after the other, in the ``serial`` group. A module
whose tests own everything they touch, a testbed instance on a port base
and prefix of their own above all, says so with ``PARALLEL_GROUP``: its
tests then run together on one worker, beside the serial ones and the other
such modules. Those spend their time waiting for amphorae to boot and
flows to finish, which is why running them side by side pays on 2 CPUs.
"""

import pytest

SERIAL = 'serial'


# Before xdist's own hook, which reads the groups into the test ids.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = getattr(item.module, 'PARALLEL_GROUP', SERIAL)
        item.add_marker(pytest.mark.xdist_group(group))
