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
"""One push of an amphora's whole state: firewall, engines, keepalived.

The create, child and failover flows all end their work on the amphorae
with ``PushAmphoraState``: the amphora firewall (with ``sriov_vip``), then
the L4 engine's document (UDP and SCTP listeners), then the haproxy
configuration, then keepalived (ACTIVE_STANDBY), each in force on every
amphora before the next starts, so VRRP adverts from the peer pass the
firewall from the first one on, and a listener the firewall opens has
its engine right after. The L4 document goes before haproxy: the agent
refuses an invalid one before anything changes, so a refusal leaves
haproxy as it was too.

Every push carries the whole state (flows.tasks.lb_state), so nothing is
undone on revert: the next successful push corrects whatever a failed one
left (and a failed load balancer create deletes the amphorae).
"""

from oslo_log import log as logging
from taskflow import task

from flows.tasks import engine
from flows.tasks import firewall as firewall_tasks
from flows.tasks import network
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import clients
from sriov_octavia.engine import haproxy_config
from sriov_octavia.engine import l4_config

LOG = logging.getLogger(__name__)


class AmphoraStateError(Exception):
    """The load balancer has no amphorae to push its state to."""


def push(state, amphorae, vrrp_ports, firewall=False, keepalived=False,
         new=False):
    """Put ``state`` in force on ``amphorae``.

    :param vrrp_ports: the amphorae's VRRP ports (``mac_address``,
        ``ip_address``) in the same order; None: looked up in Neutron when
        the firewall or keepalived needs them.
    :param firewall: push the amphora firewall (``sriov_vip``).
    :param keepalived: start keepalived with the peers' VRRP addresses
        (ACTIVE_STANDBY); a pair that lost an amphora waits for the peer.
    :param new: the amphorae were just booted with the load balancer: no
        haproxy without haproxy listeners, nothing to remove from the L4
        engine, and the state's pools are the provider dict's as created.
    """
    lb_id = state['loadbalancer_id']
    if not amphorae:
        raise AmphoraStateError(f'load balancer {lb_id} has no amphorae')
    serving = haproxy_config.has_listeners(state)
    # Before anything changes on an amphora: a secret haproxy could not use
    # fails the flow with the running configuration untouched.
    tls = engine.gather_tls(state) if serving else None
    # Likewise an object the L4 engine cannot express.
    l4_document = (l4_config.render(state) if l4_config.has_listeners(state)
                   else None)
    if vrrp_ports is None and (firewall or keepalived):
        conn = clients.connection()
        vrrp_ports = [network.vrrp_port_facts(conn, state, amphora)
                      for amphora in amphorae]
    if firewall:
        # Pools given are all there are: the listeners' nested default
        # pools are Octavia's copies from before the change.
        firewall_tasks.push_firewall(
            state, amphorae, [port['ip_address'] for port in vrrp_ports],
            pools=None if new else state['pools'])
    engine.push_l4(state, amphorae, new=new, document=l4_document)
    if not new or serving:
        engine.push_haproxy(state, amphorae, tls)
    if not keepalived:
        return
    if len(amphorae) < 2:
        LOG.warning('Load balancer %s has %d amphora(e): keepalived is '
                    'configured once both are back', lb_id, len(amphorae))
        return
    engine.configure_vrrp(state, amphorae, vrrp_ports)


class PushAmphoraState(task.Task):
    """Push ``lb_state`` to the amphorae (``push``).

    ``amphorae`` and ``vrrp_ports`` are the create flow's; other flows
    find the amphorae in Nova and their VRRP ports in Neutron.
    """

    def __init__(self, firewall=False, keepalived=False, new=False,
                 **kwargs):
        kwargs.setdefault('name', 'push-amphora-state')
        super(PushAmphoraState, self).__init__(**kwargs)
        self.firewall = firewall
        self.keepalived = keepalived
        self.new = new

    def execute(self, lb_state, loadbalancer_id, availability_zone,
                amphorae=None, vrrp_ports=None):
        if lb_state is None:
            # A failover slot that replaced nothing.
            return
        if amphorae is None:
            amphorae = amphorae_lib.find_amphorae(
                clients.connection(), loadbalancer_id, availability_zone)
        push(lb_state, amphorae, vrrp_ports, firewall=self.firewall,
             keepalived=self.keepalived, new=self.new)

    def revert(self, loadbalancer_id, *args, **kwargs):
        if self.new:
            return
        LOG.warning('%s failed: the firewall, the L4 engine, haproxy or '
                    'keepalived of load balancer %s may hold the failed '
                    'change on some amphorae until the next change pushes '
                    'the whole state again', self.name, loadbalancer_id)
