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
"""The controller's configuration, overridable per test."""

from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia import conf as sriov_conf


@pytest.fixture
def conf():
    """The global configuration; what a test sets is undone after it."""
    fixture = cfg_fixture.Config(sriov_conf.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def offline(conf):
    """Metadata checks that do not ask the cloud."""
    conf.config(check_cloud_resources=False, group='sriov_octavia')
