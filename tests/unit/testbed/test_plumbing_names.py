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
import uuid

import pytest

from sriov_octavia_testbed.plumbing import names


SERVER_ID = '38d8955e-f724-45ec-b4e4-f81907ccc6d5'


def test_every_link_name_fits_the_kernel_limit():
    longest = names.Names('a' * names.MAX_PREFIX_LENGTH)
    for _ in range(20):
        ident = str(uuid.uuid4())
        for link in (longest.mgmt_bridge, longest.mgmt_peer(ident),
                     longest.network_bridge(ident), longest.vf_peer(ident),
                     longest.host_peer('a' * 12)):
            assert len(link) <= names.IFNAMSIZ, link


def test_amphora_names_share_the_server_id_prefix():
    fabric_names = names.Names('sotb')
    assert fabric_names.amphora_namespace(SERVER_ID) == 'sotb-amp-38d8955e'
    assert fabric_names.data_namespace(SERVER_ID) == 'sotb-amp-38d8955e-lb'
    assert fabric_names.mgmt_peer(SERVER_ID) == 'sotb-38d8955e'
    assert fabric_names.phys_namespace == 'sotb-phys'
    assert fabric_names.host_namespace('client-1') == 'sotb-host-client-1'


def test_objects_in_the_root_namespace_carry_the_prefix():
    fabric_names = names.Names('sotb')
    for name in (fabric_names.mgmt_bridge, fabric_names.mgmt_peer(SERVER_ID),
                 fabric_names.phys_namespace,
                 fabric_names.amphora_namespace(SERVER_ID),
                 fabric_names.host_namespace('member')):
        assert fabric_names.owns(name)


def test_owns_needs_the_dash_after_the_prefix():
    fabric_names = names.Names('tpl')
    assert fabric_names.owns('tpl-mgmt')
    assert not fabric_names.owns('tpl2-mgmt')
    assert not fabric_names.owns('tplmgmt')
    assert not fabric_names.owns('eth0')


def test_ids_are_reduced_to_letters_and_digits():
    assert names.short_id('AB-cd_ef', 4) == 'abcd'
    with pytest.raises(ValueError):
        names.short_id('--', 4)


@pytest.mark.parametrize('prefix', ['', 'Sotb', '1tb', 'toolong', 'a-b',
                                    None])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(ValueError):
        names.Names(prefix)


@pytest.mark.parametrize('host', ['', '-client', 'Client', 'a' * 13, 'a_b'])
def test_bad_host_names_are_refused(host):
    with pytest.raises(ValueError):
        names.Names('sotb').host_namespace(host)
