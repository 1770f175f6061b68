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
"""The Neutron security group of a load balancer without ``sriov_vip``.

Normal VRRP ports are filtered by Neutron, so, as upstream's amphora
driver does, each such load balancer gets a security group of its own on
its VRRP ports: per listener an ingress rule for its transport and port
from each allowed CIDR (none given: from anywhere, for each address family
of the VIPs), and for ACTIVE_STANDBY VRRP (IP protocol 112) from the
group's own members, the other amphora. Neutron's security groups are
stateful: the members' replies need no rule. With the VIP's own security
groups (``vip_sg_ids``) the listeners' rules are theirs to give, as in
Octavia's API.

With ``sriov_vip`` nothing here runs: a VF ignores security groups and the
amphora firewall does their job, without any of these Neutron calls.

The group is named after the load balancer (``security_group_name``), so
a revert and the delete flow find it in Neutron. Only its ingress rules
are managed; the egress rules Neutron gives a new group stay.
"""

import ipaddress

from oslo_log import log as logging
from taskflow import task

from flows.tasks import compute
from flows.tasks import network
from flows.tasks import undo
from sriov_octavia.amphora import firewall_rules
from sriov_octavia import clients
from sriov_octavia import naming
from sriov_octavia import vip as vip_port

LOG = logging.getLogger(__name__)

SECURITY_GROUP_ID = 'security_group_id'
VRRP_PROTOCOL = '112'
INGRESS = 'ingress'


def find_security_groups(conn, loadbalancer_id):
    return list(conn.network.security_groups(
        name=naming.security_group_name(loadbalancer_id)))


def _ether_type(address_or_cidr):
    version = ipaddress.ip_network(address_or_cidr, strict=False).version
    return 'IPv6' if version == 6 else 'IPv4'


def desired_rules(loadbalancer, flavor, group_id):
    """The group's ingress rules for the load balancer's state.

    :returns: a set of ``(ether_type, protocol, port, remote_ip_prefix,
        remote_group_id)``, as ``_rule_key`` reads Neutron's rules.
    """
    rules = set()
    if not loadbalancer.get(vip_port.VIP_SG_IDS):
        families = sorted({_ether_type(address) for address
                           in network.vip_addresses(loadbalancer)})
        listeners = [listener for listener
                     in loadbalancer.get('listeners') or () if listener]
        for entry in firewall_rules.listener_entries(listeners):
            protocol = entry['protocol'].lower()
            for cidr in entry['allowed_cidrs']:
                # Neutron keeps a prefix with host bits as given; the
                # network form compares equal on the next sync.
                prefix = str(ipaddress.ip_network(cidr, strict=False))
                rules.add((_ether_type(prefix), protocol, entry['port'],
                           prefix, None))
            if not entry['allowed_cidrs']:
                rules.update((family, protocol, entry['port'], None, None)
                             for family in families)
    if len(compute.roles(flavor)) > 1:
        rules.add((_ether_type(loadbalancer['vip_address']), VRRP_PROTOCOL,
                   None, None, group_id))
    return rules


def _rule_key(rule):
    return (rule.ether_type, (rule.protocol or '').lower() or None,
            rule.port_range_min, rule.remote_ip_prefix, rule.remote_group_id)


def sync_rules(conn, group_id, desired):
    """Make the group's ingress rules ``desired``: add first, then remove.

    Adding before removing leaves no moment in which traffic that both the
    old and the new rules allow is dropped.
    """
    existing = {}
    for rule in conn.network.security_group_rules(
            security_group_id=group_id, direction=INGRESS):
        existing.setdefault(_rule_key(rule), []).append(rule)
    for key in sorted(desired - set(existing), key=repr):
        ether_type, protocol, port, prefix, remote_group_id = key
        conn.network.create_security_group_rule(
            security_group_id=group_id, direction=INGRESS,
            ether_type=ether_type, protocol=protocol, port_range_min=port,
            port_range_max=port, remote_ip_prefix=prefix,
            remote_group_id=remote_group_id)
    stale = [rule for key, found in existing.items() if key not in desired
             for rule in found]
    for rule in stale:
        conn.network.delete_security_group_rule(rule, ignore_missing=True)
    LOG.info('Security group %s: %d ingress rule(s), %d added, %d removed',
             group_id, len(desired), len(desired - set(existing)),
             len(stale))


def sync_security_group(conn, loadbalancer, flavor):
    """Bring the load balancer's group in step with its listeners."""
    lb_id = loadbalancer['loadbalancer_id']
    groups = find_security_groups(conn, lb_id)
    if not groups:
        LOG.warning('Load balancer %s has no security group %s: its VRRP '
                    'ports keep the security groups they have', lb_id,
                    naming.security_group_name(lb_id))
        return
    sync_rules(conn, groups[0].id, desired_rules(loadbalancer, flavor,
                                                 groups[0].id))


def delete_security_groups(conn, loadbalancer_id):
    for group in find_security_groups(conn, loadbalancer_id):
        conn.network.delete_security_group(group, ignore_missing=True)
        LOG.info('Deleted security group %s of load balancer %s', group.id,
                 loadbalancer_id)


class CreateSecurityGroup(task.Task):
    """Without sriov_vip: the load balancer's group, with its rules.

    Provides ``security_group_id`` for the VRRP ports. The rules cover
    the listeners created with the load balancer.
    """

    default_provides = SECURITY_GROUP_ID

    def execute(self, loadbalancer, flavor):
        conn = clients.connection()
        lb_id = loadbalancer['loadbalancer_id']
        # A worker resuming this job finds the group an earlier run made.
        groups = find_security_groups(conn, lb_id)
        group = groups[0] if groups else conn.network.create_security_group(
            name=naming.security_group_name(lb_id),
            description=f'VRRP ports of load balancer {lb_id}')
        LOG.info('Security group %s for load balancer %s', group.id, lb_id)
        sync_rules(conn, group.id, desired_rules(loadbalancer, flavor,
                                                 group.id))
        return group.id

    def revert(self, loadbalancer, *args, **kwargs):
        lb_id = loadbalancer['loadbalancer_id']
        with undo.reverting(f'the security group of load balancer '
                            f'{lb_id}'):
            delete_security_groups(clients.connection(), lb_id)


class GetSecurityGroup(task.Task):
    """Without sriov_vip: the load balancer's group for new VRRP ports."""

    default_provides = SECURITY_GROUP_ID

    def execute(self, loadbalancer_id):
        groups = find_security_groups(clients.connection(), loadbalancer_id)
        if not groups:
            LOG.warning('Load balancer %s has no security group %s: new '
                        'VRRP ports get the VIP\'s security groups only',
                        loadbalancer_id,
                        naming.security_group_name(loadbalancer_id))
            return None
        return groups[0].id


class DeleteSecurityGroup(task.Task):
    """Delete the load balancer's group once its VRRP ports are gone."""

    def execute(self, loadbalancer_id):
        delete_security_groups(clients.connection(), loadbalancer_id)


class SyncSecurityGroup(task.Task):
    """Without sriov_vip: the group's rules follow ``lb_state``.

    Nothing to undo: the next change's sync corrects what this one left.
    """

    def execute(self, lb_state, flavor):
        if lb_state is not None:
            sync_security_group(clients.connection(), lb_state, flavor)
