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
"""haproxy.cfg of one amphora, rendered by upstream Octavia's templater.

Octavia's JinjaTemplater (combined listeners) is used as a library, so the
proxies behave as with Octavia's amphora driver and honour the same
``[haproxy_amphora]`` options (timeouts, connection limit, log format).
What the amphora agent says about itself (``GET /info``) fixes the
haproxy version and where the stats socket lives.

The configuration is rendered for a stand-alone amphora even in
ACTIVE_STANDBY: upstream's peers section (stick-table sync between the
amphorae) needs haproxy started with its local peer name and TCP between
the amphorae that the stateless amphora firewall does not open; without
it each amphora keeps its own stick tables (SOURCE_IP persistence starts
anew after a failover).
"""

from octavia.common import config as octavia_config
from octavia.common import constants as octavia_consts
from octavia.common.jinja.haproxy.combined_listeners import jinja_cfg
from octavia_lib.common import constants as lib_consts

from sriov_octavia.engine import octavia_models

CONF = octavia_config.cfg.CONF

# Keys of the agent's GET /info answer.
INFO_HAPROXY_VERSION = 'haproxy_version'
INFO_HAPROXY_BASE_PATH = 'haproxy_base_path'


# The listener protocols haproxy serves; UDP and SCTP are the L4 engine's
# (sriov_octavia.engine.l4_config).
PROTOCOLS = (lib_consts.PROTOCOL_TCP, lib_consts.PROTOCOL_HTTP,
             lib_consts.PROTOCOL_HTTPS, lib_consts.PROTOCOL_TERMINATED_HTTPS,
             lib_consts.PROTOCOL_PROMETHEUS)


def listeners(state):
    """The state's listeners haproxy serves.

    Disabled ones included: the templater leaves those out itself.
    """
    return [listener for listener in state.get(lib_consts.LISTENERS) or ()
            if listener and listener.get(lib_consts.PROTOCOL) in PROTOCOLS]


def has_listeners(state):
    """Whether the load balancer has any listener for haproxy to serve.

    A load balancer whose listeners are all UDP or SCTP runs no haproxy.
    """
    return bool(listeners(state))


def served_state(state):
    """``state`` with only the listeners haproxy serves.

    Upstream's templater would render a UDP listener as a TCP frontend;
    the pools only those listeners use are then not rendered either.
    """
    return dict(state, **{lib_consts.LISTENERS: listeners(state)})


def socket_path(agent_info, loadbalancer_id):
    return f'{agent_info[INFO_HAPROXY_BASE_PATH]}/{loadbalancer_id}.sock'


def render(state, amphora, agent_info, conf=CONF, tls_certs=None):
    """The haproxy configuration text of ``amphora`` for ``state``.

    :param state: the load balancer's provider dict after the change
        (``listeners``, ``pools`` with ``members`` and ``healthmonitor``,
        listeners with ``l7policies`` and their ``rules``).
    :param amphora: the amphora dict the flow tasks pass.
    :param agent_info: that amphora agent's ``GET /info`` answer.
    :param tls_certs: the templater's view of the TLS files
        (``tls_files.gather``), None when there are none.
    :raises ValueError: the load balancer has no listener haproxy serves
        (haproxy has nothing to run; it is stopped instead).
    """
    if not has_listeners(state):
        raise ValueError(f'load balancer {state[lib_consts.LOADBALANCER_ID]} '
                         f'has no listener for haproxy to render')
    host = octavia_models.amphora(amphora)
    loadbalancer = octavia_models.load_balancer(
        served_state(state), topology=octavia_consts.TOPOLOGY_SINGLE,
        amphorae=[host])
    group = conf.haproxy_amphora
    templater = jinja_cfg.JinjaTemplater(
        base_amp_path=agent_info[INFO_HAPROXY_BASE_PATH],
        base_crt_dir=group.base_cert_dir,
        haproxy_template=group.haproxy_template,
        connection_logging=group.connection_logging)
    return templater.build_config(
        host, loadbalancer.listeners,
        tls_certs=tls_certs if tls_certs is not None else {},
        haproxy_versions=str(agent_info[INFO_HAPROXY_VERSION]).split('.'),
        amp_details=agent_info,
        socket_path=socket_path(agent_info, loadbalancer.id))
