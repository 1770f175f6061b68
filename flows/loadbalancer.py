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
"""Flows creating and deleting a load balancer's amphorae.

The topology (SINGLE or ACTIVE_STANDBY) is in the store's flavor, not in
the flow's shape: the tasks work on the list of amphorae the flavor asks
for, so one flow serves both and a resumed job rebuilds the same flow.
"""

from taskflow.patterns import linear_flow

from flows.tasks import amphora
from flows.tasks import compute
from flows.tasks import engine
from flows.tasks import identity
from flows.tasks import loadbalancer_status
from flows.tasks import member_ports
from flows.tasks import network
from flows.tasks import security_group


def create_flow(topology=None, sriov_vip=None):
    """Boot, wire and configure the amphorae; the load balancer ACTIVE.

    The firewall is in force before haproxy and keepalived start, so VRRP
    adverts from the peer pass from the first one on (ACTIVE_STANDBY: the
    VIPs are keepalived's to hold, PlugVip left them off the interface).

    Needs ``loadbalancer``, ``loadbalancer_id``, ``flavor`` and
    ``availability_zone`` in the store. Any failure reverts every step
    (ports deleted, interfaces detached, servers and server group deleted)
    and leaves the load balancer, and what was created with it, in ERROR.
    """
    flow = linear_flow.Flow('loadbalancer.create')
    flow.add(loadbalancer_status.CollectCreatedObjects(),
             identity.IssueAmphoraIdentities(),
             compute.CreateServerGroup(),
             compute.BootAmphorae(),
             compute.WaitForAmphorae(),
             amphora.WaitForAgents(),
             network.GetVipPlug(),
             security_group.CreateSecurityGroup(),
             network.CreateVrrpPorts(),
             compute.AttachPorts(),
             amphora.PlugVip(),
             amphora.ApplyFirewall(),
             engine.ConfigureHaproxy(),
             engine.ConfigureVrrp(),
             loadbalancer_status.MarkLoadBalancerActive())
    return flow


def update_flow(topology=None, sriov_vip=None):
    """Apply a load balancer update to what carries its traffic.

    Needs ``loadbalancer`` (the changed fields), ``original_loadbalancer``,
    ``loadbalancer_id`` and ``flavor``. Name, description and the like
    live in Octavia alone; the VIP's QoS policy and security groups are
    set on the VRRP ports. A failure puts the ports back and leaves the
    load balancer in ERROR.
    """
    flow = linear_flow.Flow('loadbalancer.update')
    flow.add(loadbalancer_status.CollectNoObjects(),
             security_group.GetSecurityGroup(),
             network.UpdateVrrpPorts(),
             loadbalancer_status.MarkLoadBalancerActive())
    return flow


def delete_flow(topology=None, sriov_vip=None):
    """Delete the amphorae, their VRRP ports and group, the VIP port.

    Needs ``loadbalancer`` and ``loadbalancer_id`` (``cascade`` optional).
    Servers go first: Nova then lets go of the VRRP ports, which are
    deleted next. Everything is found in Nova and Neutron by the names and
    metadata the create flow gave it, so a load balancer whose create
    failed half way is deleted the same way.
    """
    flow = linear_flow.Flow('loadbalancer.delete')
    flow.add(loadbalancer_status.CollectDeletedObjects(),
             # Nova leaves ports it did not create in Neutron: the SR-IOV
             # member ports are looked up while their amphorae exist and
             # deleted once Nova has let them go.
             member_ports.FindLoadBalancerMemberPorts(),
             compute.DeleteAmphorae(),
             member_ports.DeleteLoadBalancerMemberPorts(),
             network.DeleteVrrpPorts(),
             security_group.DeleteSecurityGroup(),
             network.DeleteVipPort(),
             loadbalancer_status.MarkLoadBalancerDeleted())
    return flow
