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
"""Flavor metadata of amphora-sriov: schema, defaults, cloud references."""

from unittest import mock

from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
import pytest

from sriov_octavia import driver
from sriov_octavia import flavor


@pytest.fixture
def cloud(conf, monkeypatch):
    conn = mock.Mock()
    monkeypatch.setattr('sriov_octavia.clients.connection',
                        lambda conf=None: conn)
    return conn


def refusal(flavor_metadata):
    with pytest.raises(lib_exceptions.UnsupportedOptionError) as info:
        driver.AmphoraSriovProviderDriver().validate_flavor(flavor_metadata)
    return info.value.user_fault_string


def test_supported_metadata_lists_every_key_with_a_description():
    supported = driver.AmphoraSriovProviderDriver(
    ).get_supported_flavor_metadata()
    assert set(supported) == {
        'sriov_vip', 'allow_member_sriov', 'sriov_vnic_type',
        'compute_flavor', 'amp_image_tag', 'loadbalancer_topology'}
    assert all(len(text) > 40 for text in supported.values())
    assert 'macvtap' in supported['sriov_vnic_type']


@pytest.mark.parametrize('good', [
    {},
    {'sriov_vip': True},
    {'sriov_vip': False, 'allow_member_sriov': True,
     'sriov_vnic_type': 'macvtap', 'loadbalancer_topology': 'ACTIVE_STANDBY',
     'compute_flavor': 'amphora-sriov-flavor', 'amp_image_tag': 'amphora'},
    {'loadbalancer_topology': 'SINGLE', 'sriov_vnic_type': 'direct'},
])
def test_valid_flavors_pass(offline, good):
    driver.AmphoraSriovProviderDriver().validate_flavor(good)


@pytest.mark.parametrize('bad, expected', [
    ({'sriov_vip': 'true'}, "sriov_vip: must be true or false, got 'true'"),
    ({'allow_member_sriov': 1},
     'allow_member_sriov: must be true or false, got 1'),
    ({'sriov_vnic_type': 'normal'},
     "sriov_vnic_type: must be one of direct, macvtap, got 'normal'"),
    ({'loadbalancer_topology': 'single'},
     "loadbalancer_topology: must be one of SINGLE, ACTIVE_STANDBY, "
     "got 'single'"),
    ({'compute_flavor': 42}, 'compute_flavor: must be a string, got 42'),
    ({'compute_flavor': ''}, 'compute_flavor: must not be empty'),
    ({'amp_image_tag': ['a']}, "amp_image_tag: must be a string, got ['a']"),
    ({'sriov_vips': True}, 'sriov_vips: unknown key'),
])
def test_each_bad_key_is_named(offline, bad, expected):
    message = refusal(bad)
    assert expected in message
    assert message.startswith('Invalid flavor metadata: ')


def test_unknown_keys_list_the_supported_ones_once(offline):
    message = refusal({'foo': 1, 'bar': True, 'sriov_vip': True})
    assert 'bar: unknown key' in message
    assert 'foo: unknown key' in message
    assert message.count('supported keys:') == 1
    assert 'allow_member_sriov, amp_image_tag' in message


def test_all_problems_are_reported_together(offline):
    message = refusal({'sriov_vip': 'yes', 'sriov_vnic_type': 'x'})
    assert 'sriov_vip:' in message and 'sriov_vnic_type:' in message


def test_metadata_must_be_an_object(offline):
    assert 'must be a JSON object' in refusal(['sriov_vip'])


def test_defaults_fill_every_key(conf):
    conf.config(loadbalancer_topology='ACTIVE_STANDBY',
                amp_flavor_id='amp-flavor', amp_image_tag='',
                group='controller_worker')
    assert flavor.with_defaults({'sriov_vip': True}) == {
        'sriov_vip': True, 'allow_member_sriov': False,
        'sriov_vnic_type': 'direct',
        'loadbalancer_topology': 'ACTIVE_STANDBY',
        'compute_flavor': 'amp-flavor', 'amp_image_tag': None}


def test_flavor_values_win_over_defaults(conf):
    given = {'sriov_vnic_type': 'macvtap', 'loadbalancer_topology': 'SINGLE',
             'compute_flavor': 'x', 'amp_image_tag': 'y',
             'allow_member_sriov': True}
    result = flavor.with_defaults(given)
    assert {k: result[k] for k in given} == given
    assert flavor.with_defaults(None)['sriov_vip'] is False


def test_missing_compute_flavor_is_refused(cloud):
    cloud.compute.get_flavor.side_effect = (
        os_exceptions.NotFoundException('no flavor'))
    message = refusal({'compute_flavor': 'nope'})
    assert "compute_flavor: no Nova flavor with ID 'nope' exists" in message
    cloud.compute.get_flavor.assert_called_once_with('nope')


def test_existing_compute_flavor_and_image_pass(cloud):
    cloud.image.images.return_value = iter([mock.Mock()])
    driver.AmphoraSriovProviderDriver().validate_flavor(
        {'compute_flavor': 'f1', 'amp_image_tag': 'amphora'})
    cloud.image.images.assert_called_once_with(tag='amphora', limit=1)


def test_image_tag_without_image_is_refused(cloud):
    cloud.image.images.return_value = iter([])
    assert ("amp_image_tag: no Glance image with tag 'amphora' exists"
            in refusal({'amp_image_tag': 'amphora'}))


@pytest.mark.parametrize('outage', [
    ks_exceptions.ConnectFailure('refused'),
    os_exceptions.HttpException('500'),
    os_exceptions.ConfigException('no cloud octavia'),
])
def test_unreachable_cloud_does_not_block_validation(cloud, outage):
    cloud.compute.get_flavor.side_effect = outage
    cloud.image.images.side_effect = outage
    driver.AmphoraSriovProviderDriver().validate_flavor(
        {'compute_flavor': 'f1', 'amp_image_tag': 'amphora'})


def test_cloud_checks_can_be_switched_off(cloud, conf):
    conf.config(check_cloud_resources=False, group='sriov_octavia')
    driver.AmphoraSriovProviderDriver().validate_flavor(
        {'compute_flavor': 'f1'})
    cloud.compute.get_flavor.assert_not_called()
