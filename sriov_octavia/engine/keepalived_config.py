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
"""keepalived.conf of one amphora of an ACTIVE_STANDBY load balancer.

The two amphorae speak VRRP by unicast between their VRRP addresses (the
VF of each amphora's VRRP base port); the master holds the VIP and the
additional VIPs on that VF. Both start as BACKUP with ``nopreempt`` and
the MASTER role's higher priority decides the first election; a recovered
or replacement amphora then does not take the VIP back, which would cut
the connections the other one serves. The agent's check script (every
haproxy it started runs) lowers an amphora whose haproxy died out of the
election.

There is no VRRP authentication: its password travels in clear text, and
the amphora firewall (or the VRRP ports' security groups) accepts VRRP
only from the peer's address.

Timers and gratuitous ARP come from Octavia's own ``[keepalived_vrrp]``
options, so an operator tunes both providers in one place.
"""

import ipaddress
import os
import zlib

import jinja2
from octavia.common import config as octavia_config

from sriov_octavia import naming

CONF = octavia_config.cfg.CONF

TEMPLATE = 'keepalived.conf.j2'
# VRRP priorities of the amphora roles.
PRIORITIES = {naming.ROLE_MASTER: 100, naming.ROLE_BACKUP: 90}
CHECK_NAME = 'check_engine'

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(
        os.path.join(os.path.dirname(__file__), 'templates')),
    trim_blocks=True, lstrip_blocks=True, autoescape=False,
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def virtual_router_id(loadbalancer_id):
    """1..255, the same on both amphorae of a load balancer.

    Unicast adverts reach only the peer, but deriving the id from the load
    balancer keeps two load balancers sharing a network apart should an
    advert ever reach the wrong amphora.
    """
    return zlib.crc32(loadbalancer_id.encode()) % 255 + 1


def instance_name(loadbalancer_id):
    return 'lb_' + loadbalancer_id.replace('-', '')


def render(loadbalancer, amphora, vrrp_ip, peer_ips, interface,
           check_script, conf=CONF):
    """The keepalived configuration text of ``amphora``.

    :param loadbalancer: the load balancer's provider dict
        (``loadbalancer_id``, ``vip_address``, ``additional_vips``).
    :param amphora: the amphora dict the flow tasks pass (``id``,
        ``role`` MASTER or BACKUP).
    :param vrrp_ip: this amphora's VRRP address.
    :param peer_ips: the other amphorae's VRRP addresses.
    :param interface: the name of the VF carrying the VRRP address, as the
        amphora agent reports it.
    :param check_script: the agent's ``vrrp_check_script``.
    :raises ValueError: a role without a VRRP priority (STANDALONE), or no
        peer.
    """
    role = amphora['role']
    if role not in PRIORITIES:
        raise ValueError(f'amphora {amphora["id"]} has the role {role}; '
                         f'VRRP needs one of {", ".join(PRIORITIES)}')
    if not peer_ips:
        raise ValueError(f'amphora {amphora["id"]} has no VRRP peer')
    family = ipaddress.ip_address(vrrp_ip).version
    vips = [loadbalancer['vip_address']] + [
        extra['ip_address']
        for extra in loadbalancer.get('additional_vips') or ()]
    # A VRRP instance adverts addresses of its own family only; keepalived
    # adds the others alongside without putting them in the adverts.
    group = conf.keepalived_vrrp
    lb_id = loadbalancer['loadbalancer_id']
    return _ENVIRONMENT.get_template(TEMPLATE).render(
        loadbalancer_id=lb_id,
        amphora_id=amphora['id'],
        role=role,
        router_id=amphora['id'],
        garp_refresh_interval=group.vrrp_garp_refresh_interval,
        garp_refresh_count=group.vrrp_garp_refresh_count,
        check_name=CHECK_NAME,
        check_script=check_script,
        check_interval=group.vrrp_check_interval,
        check_fall=group.vrrp_fail_count,
        check_rise=group.vrrp_success_count,
        instance_name=instance_name(lb_id),
        interface=interface,
        virtual_router_id=virtual_router_id(lb_id),
        priority=PRIORITIES[role],
        advert_int=group.vrrp_advert_int,
        vrrp_ip=vrrp_ip,
        peers=list(peer_ips),
        vips=[vip for vip in vips
              if ipaddress.ip_address(vip).version == family],
        other_family_vips=[vip for vip in vips
                           if ipaddress.ip_address(vip).version != family])
