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
"""``amphora-sriov-agent``: the agent process inside an amphora.

Order matters: the firewall engine restores the persisted rule set (or the
drop-all base) before the API starts listening, so the amphora's SR-IOV
ports are never unfiltered, not even while the agent starts.
"""

import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns

from amphora_agent.api import app as api_app
from amphora_agent import config
from amphora_agent.engine import service as engine_service
from amphora_agent.firewall import engine
from amphora_agent.metrics import server as metrics_server
from amphora_agent import server
from amphora_agent import tls

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def _stop_on_signals(stop_event):
    def handler(signum, frame):
        LOG.info('Received %s, stopping', signal.Signals(signum).name)
        stop_event.set()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def ensure_data_namespace(name):
    """Create the data namespace, loopback up, unless it exists.

    On a fresh amphora nothing has made it yet; the firewall and the plug
    endpoints work inside it, and a VF plugged later is moved into it.
    """
    if not name or name in pyroute2_netns.listnetns():
        return
    pyroute2_netns.create(name)
    with IPRoute(netns=name) as ipr:
        ipr.link('set', index=ipr.link_lookup(ifname='lo')[0], state='up')
    LOG.info('Created network namespace %s', name)


def main(argv=None):
    # pyroute2 logs every netlink message at debug level, drowning the
    # agent's own debug output.
    logging.set_defaults(default_log_levels=(
        logging.get_default_log_levels() + ['pyroute2=WARNING']))
    config.init(sys.argv[1:] if argv is None else argv)
    agent_conf = CONF.amphora_agent
    bind_conf = CONF.haproxy_amphora

    # Read the certificates first: a broken file should stop the agent
    # before it touches the firewall.
    try:
        # The server reads its TLS context from here for every connection;
        # PUT /1.0/certificate replaces it.
        credentials = tls.TLSCredentials(agent_conf.agent_server_cert,
                                         agent_conf.agent_server_ca)
    except OSError as error:  # ssl.SSLError included
        LOG.error('Cannot load the server certificate %s or the client CA '
                  '%s: %s', agent_conf.agent_server_cert,
                  agent_conf.agent_server_ca, error)
        return 1
    stop_event = threading.Event()
    _stop_on_signals(stop_event)

    ensure_data_namespace(agent_conf.network_namespace)
    firewall = engine.Firewall(
        namespace=agent_conf.network_namespace or None,
        state_file=agent_conf.firewall_state_file,
        vf_link_kinds=agent_conf.vf_link_kinds)
    firewall.start()
    metrics = None
    load_balancing = None
    try:
        # haproxy and keepalived keep running whatever the agent does; the
        # engine finds them again through their pid files, and starts
        # those that died with the amphora.
        load_balancing = engine_service.Engine.from_conf(CONF)
        # The UDP and SCTP rules were left in the kernel; this puts the
        # persisted document back after a reboot and starts the checks.
        load_balancing.l4.start()
        if agent_conf.prometheus_proxy_port:
            # What Octavia's PROMETHEUS listeners forward to.
            metrics = metrics_server.MetricsServer(
                agent_conf.network_namespace or None, firewall,
                port=agent_conf.prometheus_proxy_port,
                l4=load_balancing.l4)
            metrics.start()
        load_balancing.resume()
        load_balancing.start_verifying(stop_event)
        app = api_app.build_app(
            firewall, load_balancing, credentials,
            agent_conf.max_request_body_size,
            network_namespace=agent_conf.network_namespace,
            vf_link_kinds=agent_conf.vf_link_kinds)
        try:
            httpd = server.AgentServer(
                bind_conf.bind_host, bind_conf.bind_port, credentials,
                agent_conf.agent_request_read_timeout, app)
        except OSError as error:
            LOG.error('Cannot listen on [%s]:%d: %s', bind_conf.bind_host,
                      bind_conf.bind_port, error)
            return 1
        LOG.info('Amphora agent listening on [%s]:%d (namespace %s)',
                 bind_conf.bind_host, httpd.server_port,
                 agent_conf.network_namespace or '(own)')
        server.serve_until(httpd, stop_event)
    finally:
        if metrics is not None:
            metrics.stop()
        if load_balancing is not None and load_balancing.l4 is not None:
            load_balancing.l4.stop()
        firewall.stop()
    LOG.info('Amphora agent stopped')
    return 0
