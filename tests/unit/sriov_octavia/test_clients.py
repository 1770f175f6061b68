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
"""The openstacksdk connection factory."""

import os
import textwrap

from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import pytest

from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf

CLOUDS = textwrap.dedent('''\
    clouds:
      tcl-one:
        auth_type: none
        network_endpoint_override: http://127.0.0.1:49696/
        compute_endpoint_override: http://127.0.0.1:49774/compute/v2.1
        region_name: RegionTest
      tcl-two:
        auth_type: none
        network_endpoint_override: http://127.0.0.1:49697/
    ''')


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'clouds.yaml'
    path.write_text(CLOUDS)
    fixture = cfg_fixture.Config(cfg.CONF)
    fixture.setUp()
    sriov_conf.register_opts(cfg.CONF)
    fixture.config(cloud='tcl-one', clouds_yaml=str(path),
                   group='sriov_octavia')
    yield fixture
    fixture.cleanUp()


def test_connection_uses_the_configured_cloud_and_file(conf):
    conn = clients.connection()
    assert conn.config.name == 'tcl-one'
    assert conn.config.get_region_name() == 'RegionTest'
    assert (conn.config.get_endpoint('network') ==
            'http://127.0.0.1:49696/')
    assert conn.session.timeout == 30.0


def test_connection_is_reused_within_a_process(conf):
    assert clients.connection() is clients.connection()


def test_other_settings_give_another_connection(conf):
    first = clients.connection()
    conf.config(cloud='tcl-two', api_timeout=5, group='sriov_octavia')
    second = clients.connection()
    assert second is not first
    assert second.config.name == 'tcl-two'
    assert second.session.timeout == 5.0


def test_a_forked_child_builds_its_own(conf):
    parent = clients.connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = clients.connection()
            os.write(write, b'same' if child is parent else b'new')
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b'new'


def test_unknown_cloud_is_a_config_error(conf):
    conf.config(cloud='tcl-missing', group='sriov_octavia')
    with pytest.raises(os_exceptions.ConfigException):
        clients.connection()
