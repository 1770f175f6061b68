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
"""The load-balancing engine's configuration put in force on amphorae.

haproxy: the configuration rendered from the load balancer's state goes to
every amphora, which validates it and starts haproxy or reloads it
hitlessly; with no listener left the agent stops haproxy and forgets its
configuration. The TLS files it names (certificates, CA and CRL bundles)
are read from the certificate manager first (``gather_tls``) and go to
each amphora before the configuration, when the amphora's copy differs.

keepalived (ACTIVE_STANDBY): each amphora gets its VRRP instance on the VF
of its VRRP base port, the peer being the other amphora's VRRP address.

flows.tasks.amphora_state pushes both as part of an amphora's whole state.
"""

import hashlib

from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia import amphorae as amphorae_lib
from sriov_octavia import conf as sriov_conf
from sriov_octavia.engine import haproxy_config
from sriov_octavia.engine import keepalived_config
from sriov_octavia.engine import octavia_models
from sriov_octavia.engine import tls_files

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

# The agent's GET /info key naming its keepalived check script.
INFO_VRRP_CHECK_SCRIPT = 'vrrp_check_script'
# Starting a running haproxy reloads it (the agent's contract).
ACTION_START = 'start'


def gather_tls(state):
    """The TLS files of ``state``, read and checked (``tls_files``).

    :raises tls_files.UnusableSecret: a secret haproxy could not use.
    """
    return tls_files.gather(octavia_models.load_balancer(state))


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
    if serving and tls is None:
        tls = gather_tls(state)
    for amphora in amphorae:
        with amphorae_lib.agent_for(amphora) as agent:
            if not serving:
                agent.delete_loadbalancer(lb_id)
                LOG.info('Amphora %s: no listener left on load balancer '
                         '%s, haproxy stopped and its configuration '
                         'removed', amphora['id'], lb_id)
                continue
            _upload_tls(agent, amphora, lb_id, tls)
            text = haproxy_config.render(state, amphora, agent.get_info(),
                                         tls_certs=tls.tls_certs)
            agent.upload_haproxy_config(amphora['id'], lb_id, text)
            agent.loadbalancer_action(lb_id, ACTION_START)
        LOG.info('Amphora %s: haproxy of load balancer %s runs %d '
                 'listener(s)', amphora['id'], lb_id,
                 len(state['listeners']))


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
