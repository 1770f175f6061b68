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
"""keepalived.conf of the amphorae of an ACTIVE_STANDBY load balancer."""

import os
import shutil
import subprocess

import pytest

from sriov_octavia.engine import keepalived_config

LB = {'loadbalancer_id': '4f9c1b8e-1111-4222-8333-944455556666',
      'vip_address': '203.0.113.10',
      'additional_vips': [{'ip_address': '2001:db8::10'},
                          {'ip_address': '203.0.113.11'}]}
MASTER = {'id': 'amp-master', 'role': 'MASTER'}
BACKUP = {'id': 'amp-backup', 'role': 'BACKUP'}
SCRIPT = '/var/lib/amphora-agent/vrrp-check'


def render(amphora=MASTER, vrrp_ip='203.0.113.21', peers=('203.0.113.22',),
           loadbalancer=LB, script=SCRIPT):
    return keepalived_config.render(loadbalancer, amphora, vrrp_ip, peers,
                                    'vf0', script)


def block(text, opening):
    """The stripped lines between ``opening {`` and its closing brace."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index(opening + ' {')
    depth, body = 0, []
    for line in lines[start + 1:]:
        if line == '}' and depth == 0:
            return body
        depth += line.endswith('{') - (line == '}')
        body.append(line)
    raise AssertionError(f'{opening} is not closed')


def instance(text):
    name = keepalived_config.instance_name(LB['loadbalancer_id'])
    return block(text, f'vrrp_instance {name}')


def test_unicast_between_the_vrrp_addresses_on_the_vf():
    lines = instance(render())
    assert 'interface vf0' in lines
    assert 'unicast_src_ip 203.0.113.21' in lines
    assert block('\n'.join(lines), 'unicast_peer') == ['203.0.113.22']
    assert 'advert_int 1' in lines


def test_vips_of_the_vrrp_family_are_advertised_the_others_follow():
    lines = '\n'.join(instance(render()))
    assert block(lines, 'virtual_ipaddress') == [
        '203.0.113.10 dev vf0', '203.0.113.11 dev vf0']
    assert block(lines, 'virtual_ipaddress_excluded') == [
        '2001:db8::10 dev vf0']
    only_v4 = dict(LB, additional_vips=[])
    assert 'virtual_ipaddress_excluded' not in render(loadbalancer=only_v4)


def test_roles_set_priorities_and_nobody_preempts():
    master, backup = instance(render()), instance(render(BACKUP))
    assert 'priority 100' in master
    assert 'priority 90' in backup
    for lines in (master, backup):
        assert 'state BACKUP' in lines
        assert 'nopreempt' in lines
    # Both ends agree on the virtual router.
    vrid = [line for line in master if line.startswith('virtual_router_id')]
    assert vrid == [line for line in backup
                    if line.startswith('virtual_router_id')]
    assert 1 <= int(vrid[0].split()[1]) <= 255


def test_the_agents_check_script_tracks_haproxy():
    text = render()
    check = block(text, f'vrrp_script {keepalived_config.CHECK_NAME}')
    assert f'script "{SCRIPT}"' in check
    assert 'interval 5' in check
    assert block('\n'.join(instance(text)), 'track_script') == [
        keepalived_config.CHECK_NAME]


def test_standalone_or_lonely_amphorae_are_refused():
    with pytest.raises(ValueError, match='role STANDALONE'):
        render({'id': 'amp-1', 'role': 'STANDALONE'})
    with pytest.raises(ValueError, match='no VRRP peer'):
        render(peers=())


@pytest.mark.skipif(shutil.which('keepalived') is None or os.geteuid() != 0,
                    reason='needs keepalived and root (a network namespace)')
@pytest.mark.parametrize('vrrp_ip, peer', [
    ('203.0.113.21', '203.0.113.22'), ('2001:db8::21', '2001:db8::22')])
def test_keepalived_accepts_the_configuration(tmp_path, vrrp_ip, peer):
    script = tmp_path / 'vrrp-check'
    script.write_text('#!/bin/sh\nexit 0\n')
    script.chmod(0o755)
    path = tmp_path / 'keepalived.conf'
    path.write_text(render(vrrp_ip=vrrp_ip, peers=(peer,),
                           script=str(script)))
    assert _keepalived_check(path, 'vf0').returncode == 0
    # The check does look: an interface the amphora lacks fails it.
    assert _keepalived_check(path, 'vf1').returncode != 0


def _keepalived_check(path, interface):
    # keepalived -t wants the interface to exist: a throw-away namespace
    # with a veth standing in for the VF, gone when the command ends.
    return subprocess.run(
        ['unshare', '--net', 'sh', '-c',
         f'ip link add {interface} type veth peer name peer0 && '
         f'keepalived -t -l -n -f {path}'],
        capture_output=True, text=True, check=False)
