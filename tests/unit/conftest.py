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
"""The operator's CA, as octavia.conf names it, for controller tests."""

import pytest

from sriov_octavia import conf as sriov_conf
from sriov_octavia_testbed import certs


@pytest.fixture(scope='session')
def controller_ca(tmp_path_factory):
    """A CA that signs amphora and controller certificates; its path."""
    path = str(tmp_path_factory.mktemp('pki') / 'ca.pem')
    certs.CertificateAuthority.create(path)
    return path


@pytest.fixture
def ca_conf(controller_ca):
    """The global configuration with [certificates] and client_ca set."""
    conf = sriov_conf.CONF
    overrides = (('ca_certificate', controller_ca, 'certificates'),
                 ('ca_private_key', controller_ca + '.key', 'certificates'),
                 ('client_ca', controller_ca, 'controller_worker'))
    for name, value, group in overrides:
        conf.set_override(name, value, group=group)
    yield conf
    for name, _, group in overrides:
        conf.clear_override(name, group=group)
