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
"""The load-balancing engines' configuration put in force on amphorae.

haproxy (TCP, HTTP, HTTPS, TERMINATED_HTTPS and PROMETHEUS listeners): the
configuration rendered from the load balancer's state goes to every
amphora, which validates it and starts haproxy or reloads it hitlessly.
The TLS files it names (certificates, CA and CRL bundles) are read from the
certificate manager first (``gather_tls``) and go to each amphora before
the configuration, when the amphora's copy differs.

The L4 engine (UDP and SCTP listeners, nftables in the amphora): its whole
document (``l4_config``) goes to every amphora, which validates it and
applies it atomically.

With neither left, the agent's ``DELETE`` of the load balancer stops both
and forgets their configuration. With only one engine left the other one
is stopped without that ``DELETE``, which would stop both: haproxy by its
``stop`` action (its files stay until the load balancer goes), the L4
engine by a document without listeners, sent only to amphorae whose
document has listeners (an amphora never given one, or whose agent
predates the L4 engine, needs nothing).

keepalived (ACTIVE_STANDBY): each amphora gets its VRRP instance on the VF
of its VRRP base port, the peer being the other amphora's VRRP address.

flows.tasks.amphora_state pushes both as part of an amphora's whole state.
"""

import hashlib

from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia.amphora import client as agent_client
from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import conf as sriov_conf
from sriov_octavia.engine import haproxy_config
from sriov_octavia.engine import keepalived_config
from sriov_octavia.engine import l4_config
from sriov_octavia.engine import octavia_models
from sriov_octavia.engine import tls_files

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

# The agent's GET /info key naming its keepalived check script.
INFO_VRRP_CHECK_SCRIPT = 'vrrp_check_script'
# Starting a running haproxy reloads it (the agent's contract).
ACTION_START = 'start'
ACTION_STOP = 'stop'


def gather_tls(state):
    """The TLS files of ``state``, read and checked (``tls_files``).

    :raises tls_files.UnusableSecret: a secret haproxy could not use.
    """
    return tls_files.gather(octavia_models.load_balancer(
        haproxy_config.served_state(state)))


def _upload_tls(agent, amphora, lb_id, tls):
    # In the order gathered: a crt-list after the certificates it names,
    # which the agent checks are there.
    for name, content in tls.files.items():
        digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
        if agent.certificate_file_md5(amphora['id'], lb_id, name) == digest:
            continue
        agent.upload_certificate_file(amphora['id'], lb_id, name, content)
        LOG.info('Amphora %s: TLS file %s of load balancer %s uploaded',
                 amphora['id'], name, lb_id)


def push_haproxy(state, amphorae, tls=None):
    """Put the haproxy configuration of ``state`` in force on each amphora.

    :param state: the load balancer's provider dict after the change.
    :param amphorae: the amphora dicts (``id``, ``role``, ``mgmt_ip``).
    :param tls: ``gather_tls(state)``, if the caller has it already.
    """
    lb_id = state['loadbalancer_id']
    serving = haproxy_config.has_listeners(state)
    l4_serving = l4_config.has_listeners(state)
    if serving and tls is None:
        tls = gather_tls(state)
    for amphora in amphorae:
        with amphorae_lib.agent_for(amphora) as agent:
            if not serving and l4_serving:
                _stop_haproxy(agent, amphora, lb_id)
                continue
            if not serving:
                agent.delete_loadbalancer(lb_id)
                LOG.info('Amphora %s: no listener left on load balancer '
                         '%s, haproxy and the L4 engine stopped and their '
                         'configuration removed', amphora['id'], lb_id)
                continue
            _upload_tls(agent, amphora, lb_id, tls)
            text = haproxy_config.render(state, amphora, agent.get_info(),
                                         tls_certs=tls.tls_certs)
            agent.upload_haproxy_config(amphora['id'], lb_id, text)
            agent.loadbalancer_action(lb_id, ACTION_START)
        LOG.info('Amphora %s: haproxy of load balancer %s runs %d '
                 'listener(s)', amphora['id'], lb_id,
                 len(haproxy_config.listeners(state)))


def _stop_haproxy(agent, amphora, lb_id):
    """Stop haproxy, leaving the L4 engine's flows alone.

    An amphora without haproxy for the load balancer (never had a TCP
    listener, or a new one after a failover) answers 404: nothing to stop.
    """
    try:
        agent.loadbalancer_action(lb_id, ACTION_STOP)
    except agent_client.AgentRejected as error:
        if error.status != 404 or error.field != 'loadbalancer_id':
            raise
        return
    LOG.info('Amphora %s: load balancer %s has only UDP and SCTP listeners '
             'left, haproxy stopped', amphora['id'], lb_id)


def push_l4(state, amphorae, new=False, document=None):
    """Put the L4 document of ``state`` in force on each amphora.

    :param state: the load balancer's provider dict after the change.
    :param amphorae: the amphora dicts (``id``, ``role``, ``mgmt_ip``).
    :param new: the amphorae were just booted with the load balancer:
        without UDP or SCTP listeners there is nothing to remove.
    :param document: ``l4_config.render(state)``, if the caller has it.
    """
    lb_id = state['loadbalancer_id']
    if l4_config.has_listeners(state):
        if document is None:
            document = l4_config.render(state)
        for amphora in amphorae:
            with amphorae_lib.agent_for(amphora) as agent:
                agent.upload_l4_config(amphora['id'], lb_id, document)
            LOG.info('Amphora %s: L4 engine of load balancer %s serves %d '
                     'UDP/SCTP listener(s)', amphora['id'], lb_id,
                     len(document['listeners']))
        return
    if new or not haproxy_config.has_listeners(state):
        # Without haproxy listeners push_haproxy's DELETE removes both.
        return
    for amphora in amphorae:
        with amphorae_lib.agent_for(amphora) as agent:
            held = agent.get_l4_config(lb_id)
            # The agent may keep the document without listeners it got.
            if not (held and held.get('listeners')):
                continue
            agent.upload_l4_config(amphora['id'], lb_id,
                                   l4_config.empty(lb_id))
        LOG.info('Amphora %s: no UDP or SCTP listener left on load balancer '
                 '%s, L4 engine stopped', amphora['id'], lb_id)


def configure_vrrp(loadbalancer, amphorae, vrrp_ports,
                   action=ACTION_START):
    """Put each amphora's keepalived configuration in force.

    :param amphorae: the amphora dicts, ``vrrp_ports`` their VRRP base
        ports (``mac_address``, ``ip_address``) in the same order.
    :param action: ``start`` for new amphorae, ``reload`` for running
        ones whose peer changed.
    """
    vrrp_ips = [port['ip_address'] for port in vrrp_ports]
    timeout = sriov_conf.CONF.sriov_amphora.interface_timeout
    for amphora, port in zip(amphorae, vrrp_ports):
        with amphorae_lib.agent_for(amphora) as agent:
            interface = agent.wait_for_interface(port['mac_address'],
                                                 timeout)
            text = keepalived_config.render(
                loadbalancer, amphora, port['ip_address'],
                [ip for ip in vrrp_ips if ip != port['ip_address']],
                interface['name'],
                agent.get_info()[INFO_VRRP_CHECK_SCRIPT])
            agent.upload_keepalived_config(text)
            agent.vrrp_action(action)
        LOG.info('Amphora %s (%s): keepalived %s on %s for VIP %s',
                 amphora['id'], amphora['role'], action, interface['name'],
                 loadbalancer['vip_address'])
