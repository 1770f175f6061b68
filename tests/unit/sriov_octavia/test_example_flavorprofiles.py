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
"""The example flavor profiles in etc/flavorprofiles are valid."""

import json
import os

import pytest

from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import metadata

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'etc', 'flavorprofiles')


def _load(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return json.load(f)


def test_there_are_examples():
    assert {'sriov-vip.json', 'sriov-vip-members.json'} <= set(
        os.listdir(EXAMPLES))


@pytest.mark.parametrize('name', sorted(
    name for name in os.listdir(EXAMPLES) if name.endswith('.json')))
def test_example_matches_the_schema(name):
    metadata.check_schema(sriov_flavor.SCHEMA, _load(name),
                          'flavor metadata')


def test_vip_only_and_vip_with_members():
    vip = sriov_flavor.with_defaults(_load('sriov-vip.json'))
    assert vip[sriov_flavor.SRIOV_VIP] is True
    assert vip[sriov_flavor.ALLOW_MEMBER_SRIOV] is False
    members = _load('sriov-vip-members.json')
    assert members[sriov_flavor.SRIOV_VIP] is True
    assert members[sriov_flavor.ALLOW_MEMBER_SRIOV] is True
