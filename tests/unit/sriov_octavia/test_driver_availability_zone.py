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
"""Availability zone metadata of amphora-sriov, through the driver."""

from unittest import mock

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
import pytest

from sriov_octavia import driver


@pytest.fixture
def cloud(conf, monkeypatch):
    conn = mock.Mock()
    zone = mock.Mock()
    zone.name = 'az-sriov'
    conn.compute.availability_zones.return_value = [zone]
    monkeypatch.setattr('sriov_octavia.clients.connection',
                        lambda conf=None: conn)
    return conn


def validate(metadata):
    driver.AmphoraSriovProviderDriver().validate_availability_zone(metadata)


def refusal(metadata):
    with pytest.raises(lib_exceptions.UnsupportedOptionError) as info:
        validate(metadata)
    return info.value.user_fault_string


def test_supported_metadata():
    supported = driver.AmphoraSriovProviderDriver(
    ).get_supported_availability_zone_metadata()
    assert set(supported) == {'compute_zone', 'management_network',
                              'valid_vip_networks'}
    assert all(len(text) > 30 for text in supported.values())


def test_valid_zone_passes(offline):
    validate({'compute_zone': 'az1', 'management_network': 'n1',
              'valid_vip_networks': ['n2', 'n3']})
    validate({})


@pytest.mark.parametrize('bad, expected', [
    ({'volume_zone': 'az1'}, 'volume_zone: unknown key'),
    ({'compute_zone': 3}, 'compute_zone: must be a string, got 3'),
    ({'valid_vip_networks': 'n1'},
     "valid_vip_networks: must be a list, got 'n1'"),
    ({'valid_vip_networks': ['n1', 7]},
     'valid_vip_networks.1: must be a string, got 7'),
    ({'management_network': ''}, 'management_network: must not be empty'),
])
def test_each_bad_key_is_named(offline, bad, expected):
    message = refusal(bad)
    assert expected in message
    assert message.startswith('Invalid availability zone metadata: ')


def test_existing_zone_and_networks_pass(cloud):
    validate({'compute_zone': 'az-sriov', 'management_network': 'mgmt',
              'valid_vip_networks': ['vip1']})
    assert cloud.network.get_network.call_args_list == [
        mock.call('mgmt'), mock.call('vip1')]


def test_unknown_compute_zone_is_refused(cloud):
    assert ("compute_zone: no Nova availability zone 'az-other' exists"
            in refusal({'compute_zone': 'az-other'}))


def test_unknown_network_is_refused_with_its_position(cloud):
    def get_network(network_id):
        if network_id == 'gone':
            raise os_exceptions.NotFoundException('gone')
        return mock.Mock(id=network_id)

    cloud.network.get_network.side_effect = get_network
    assert ("valid_vip_networks.1: no Neutron network with ID 'gone' exists"
            in refusal({'valid_vip_networks': ['ok', 'gone']}))
    assert ("management_network: no Neutron network with ID 'gone'"
            in refusal({'management_network': 'gone'}))


def test_outage_does_not_block_validation(cloud):
    cloud.compute.availability_zones.side_effect = (
        ks_exceptions.ConnectFailure('refused'))
    # A cloud without a network endpoint cannot answer either.
    cloud.network.get_network.side_effect = (
        ks_exceptions.EndpointNotFound('no network endpoint'))
    validate({'compute_zone': 'az-x', 'management_network': 'n1'})
