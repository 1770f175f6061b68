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
"""The amphora firewall: what SR-IOV ports have instead of security groups.

With the flavor's ``sriov_vip`` the VFs have no Neutron security groups;
each amphora's stateless firewall lets in what the listeners allow, VRRP
from the peers and the members' replies, and nothing else. The agent
takes the whole firewall with each push, so there is nothing to undo: the
next push corrects whatever a failed one left.
"""

from oslo_log import log as logging

from sriov_octavia.amphora import firewall_rules
from sriov_octavia import amphorae as amphorae_lib

LOG = logging.getLogger(__name__)


def push_firewall(loadbalancer, amphorae, vrrp_ips, pools=None):
    """Put the whole firewall state in force on each amphora.

    :param amphorae: the amphora dicts, ``vrrp_ips`` their VRRP addresses
        in the same order.
    :param pools: all the load balancer's pools, when the caller has them
        in a newer state than ``loadbalancer`` (see
        ``firewall_rules.security_group_body``).
    """
    for amphora, vrrp_ip in zip(amphorae, vrrp_ips):
        body = firewall_rules.security_group_body(loadbalancer, vrrp_ips,
                                                  vrrp_ip, pools=pools)
        with amphorae_lib.agent_for(amphora) as agent:
            agent.set_security_group(body)
        LOG.info('Amphora %s: firewall in force for %d listener(s), %d '
                 'VRRP peer(s), %d member(s)', amphora['id'],
                 len(body['listeners']), len(body['vrrp_peers']),
                 len(body['members']))
