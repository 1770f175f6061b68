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
"""Process entry point: options, the WSGI app, the threaded server."""

import os
import signal
import sys
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia_testbed.nova.api import admin
from sriov_octavia_testbed.nova.api import compute as compute_api
from sriov_octavia_testbed.nova.api import images
from sriov_octavia_testbed.nova import compute
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import inventory as inventory_mod
from sriov_octavia_testbed.nova import neutron
from sriov_octavia_testbed.nova import state as state_mod
from sriov_octavia_testbed.nova import wsgi
from sriov_octavia_testbed import plumbing

LOG = logging.getLogger(__name__)

CLI_OPTS = [
    cfg.StrOpt('state-dir', required=True,
               help='Directory for the emulator state (and the fabric).'),
    cfg.PortOpt('port', default=19774, help='TCP port to serve on.'),
    cfg.StrOpt('bind', default='127.0.0.1', help='Address to serve on.'),
    cfg.URIOpt('neutron-url', default='http://127.0.0.1:19696',
               help='Root URL of the real Neutron API.'),
    cfg.StrOpt('inventory', required=True,
               help='JSON file with the hosts and their SR-IOV PFs.'),
    cfg.StrOpt('prefix', default='sotb',
               help='Prefix of every kernel object of this testbed.'),
    cfg.BoolOpt('kernel-plumbing', default=True,
                help='Turn servers into namespaces running the amphora '
                     'agent (testbed.plumbing). Without it, servers, ports '
                     'and VFs are only API state.'),
]


def build_app(state_dir, neutron_url, inventory_file, fabric):
    """The emulator's WSGI app and its ComputeManager."""
    state = state_mod.State(state_dir)
    faults = faults_mod.Faults()
    manager = compute.ComputeManager(
        state, inventory_mod.Inventory.load(inventory_file),
        neutron.Neutron(neutron_url), fabric, faults)

    requests = admin.RequestCounter()

    def before_request(req):
        requests.count(req)
        delay = faults.api_latency
        if delay and not req.path_info.startswith(admin.PREFIX):
            time.sleep(delay)

    app = wsgi.Application(
        [admin.AdminAPI(manager, faults, requests).router(),
         images.ImageAPI(state).router(),
         compute_api.router(manager)],
        before_request=before_request)
    return app, manager


def _fabric(conf):
    if not conf.kernel_plumbing:
        return None
    return plumbing.Fabric(conf.state_dir, prefix=conf.prefix)


def main(argv=None):
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf.register_cli_opts(CLI_OPTS)
    conf(sys.argv[1:] if argv is None else argv, project='testbed-nova')
    logging.setup(conf, 'testbed-nova')
    os.makedirs(conf.state_dir, exist_ok=True)
    app, manager = build_app(conf.state_dir, conf.neutron_url,
                             conf.inventory, _fabric(conf))
    manager.recover()
    server = wsgi.make_server(conf.bind, conf.port, app)

    def stop(signum, frame):
        # shutdown() waits for serve_forever(): call it from elsewhere.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info('Compute emulator serving on %s:%s (state %s)', conf.bind,
             conf.port, conf.state_dir)
    server.serve_forever()
    server.server_close()
    manager.wait(timeout=30)
    LOG.info('Compute emulator stopped')
