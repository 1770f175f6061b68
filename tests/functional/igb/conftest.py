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
"""The ``igb`` tier: the amphora side on real VF netdevs, in one guest.

Every module here is marked ``igb``; ``pytest -m igb`` runs the tier alone.
The guest boots once for the package (``igb_lab``), and ``amphora`` leaves
it as the controller leaves an amphora after a load balancer create: the
VIP plugged on the VF, the firewall's state in force, haproxy serving.
"""

import pytest

from tests.functional.igb import igb_lab

LOADBALANCER_ID = 'b5f6c2a4-0d3e-4c1b-9a8e-6f0d1c2b3a41'
AMPHORA_ID = '1c9e3b7a-5d2f-4e80-b6a1-2f4d8c0e9b13'
LISTENER_PORT = 80
MEMBER_PORT = 8000
SCTP_PORT = 3868
MEMBER_BODY = 'served by the member behind a real VF\n'


@pytest.fixture(scope='package')
def lab(tmp_path_factory):
    guest_lab = igb_lab.Lab(str(tmp_path_factory.mktemp('igb')))
    try:
        yield guest_lab.start()
    finally:
        guest_lab.close()


def security_group():
    return {
        'vip_interfaces': [igb_lab.VRRP_IP],
        'listeners': [{'protocol': protocol, 'port': port,
                       'allowed_cidrs': [f'{igb_lab.CLIENT_ALLOWED}/32',
                                         f'{igb_lab.OUTSIDE_ALLOWED}/32']}
                      for protocol, port in (('TCP', LISTENER_PORT),
                                             ('SCTP', SCTP_PORT))],
        'vrrp_peers': [igb_lab.PEER_VRRP_IP],
        'members': [{'address': igb_lab.MEMBER, 'protocol': protocol,
                     'port': port}
                    for protocol, port in (('TCP', MEMBER_PORT),
                                           ('SCTP', SCTP_PORT))],
    }


def haproxy_config(base_path):
    return '\n'.join([
        'global',
        '    maxconn 1000',
        f'    stats socket {base_path}/{LOADBALANCER_ID}.sock '
        'mode 0600 level user',
        'defaults',
        '    mode http',
        '    timeout connect 5s',
        '    timeout client 60s',
        '    timeout server 60s',
        'frontend listener-1',
        f'    bind {igb_lab.VIP}:{LISTENER_PORT}',
        '    default_backend pool-1',
        'backend pool-1',
        f'    server member-1 {igb_lab.MEMBER}:{MEMBER_PORT}',
    ]) + '\n'


@pytest.fixture(scope='package')
def amphora(lab):
    """The VIP plugged, the firewall's state applied, haproxy started."""
    interface = lab.api.plug_vip(igb_lab.VIP, igb_lab.VIP_PORT.mac,
                                 igb_lab.VRRP_IP, igb_lab.SUBNET,
                                 mtu=igb_lab.MTU)
    lab.start_member(MEMBER_PORT, MEMBER_BODY)
    applied = lab.api.set_security_group(security_group())
    info = lab.api.get_info()
    lab.api.upload_haproxy_config(AMPHORA_ID, LOADBALANCER_ID,
                                  haproxy_config(info['haproxy_base_path']))
    lab.api.loadbalancer_action(LOADBALANCER_ID, 'start')
    return {'interface': interface, 'applied': applied}
