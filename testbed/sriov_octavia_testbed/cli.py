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
"""``sriov-octavia-testbed up|down|status``: the local cloud on loopback."""

import argparse
import sys

from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia_testbed import config
from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed.services import process

LOG = logging.getLogger(__name__)


def _parser():
    parser = argparse.ArgumentParser(
        prog='sriov-octavia-testbed',
        description='Run Octavia, Neutron, Barbican, redis and the compute '
                    'emulator on loopback, with this project enabled.')
    parser.add_argument('command', choices=('up', 'down', 'status'))
    parser.add_argument('--state-dir', default=config.DEFAULT_STATE_DIR,
                        help='configuration, databases, logs and pid files '
                             '(default: %(default)s)')
    parser.add_argument('--port-base', type=int, default=None,
                        help='ports are this plus 696 (Neutron), 700 '
                             '(Octavia), 701 (identity stand-in), 774 '
                             '(compute), 379 (redis), 311 (Barbican); '
                             f'default {config.DEFAULT_PORT_BASE} or what '
                             'the state directory recorded')
    parser.add_argument('--prefix', default=None,
                        help='name prefix of namespaces and links; default '
                             f'{config.DEFAULT_PREFIX} or what the state '
                             'directory recorded')
    parser.add_argument('--no-seed', action='store_true',
                        help='up: do not create the default networks, '
                             'flavors, aggregate and image')
    parser.add_argument('--skip', action='append', default=[],
                        choices=[cls.name
                                 for cls in lifecycle.SERVICE_CLASSES],
                        help='up: do not start this service (repeatable)')
    return parser


def print_status(testbed, out=sys.stdout):
    out.write(f'state dir: {testbed.state_dir}  prefix: {testbed.prefix}\n')
    out.write(f'{"SERVICE":22} {"PID":>8} {"PORT":>6}  STATE\n')
    for name, pid, port, state in lifecycle.status(testbed):
        out.write(f'{name:22} {pid or "-":>8} {port or "-":>6}  {state}\n')
    out.write(f'OS_CLIENT_CONFIG_FILE={testbed.clouds_yaml} '
              f'OS_CLOUD={config.CLOUD_NAME}\n')


def main(argv=None):
    args = _parser().parse_args(argv)
    logging.register_options(cfg.CONF)
    cfg.CONF([], project='sriov-octavia-testbed')
    logging.setup(cfg.CONF, 'sriov-octavia-testbed')
    testbed = config.Testbed.load(args.state_dir, port_base=args.port_base,
                                  prefix=args.prefix)
    if args.command == 'up':
        recorded = config.Testbed.load(args.state_dir)
        if ((recorded.port_base, recorded.prefix)
                != (testbed.port_base, testbed.prefix)
                and any(pid for _, pid, _, _ in lifecycle.status(recorded))):
            sys.stderr.write(
                f'up failed: {testbed.state_dir} runs with port base '
                f'{recorded.port_base} and prefix {recorded.prefix}; '
                f'take it down first\n')
            return 1
        try:
            elapsed = lifecycle.up(testbed, seed_cloud=not args.no_seed,
                                   skip=args.skip)
        except process.StartError as e:
            sys.stderr.write(f'up failed: {e}\n')
            return 1
        print(f'up in {elapsed:.1f} s')
        print_status(testbed)
    elif args.command == 'down':
        stopped = lifecycle.down(testbed)
        print('stopped: ' + (', '.join(stopped) or 'nothing was running'))
    else:
        print_status(testbed)
        if any(state == 'dead'
               for _, _, _, state in lifecycle.status(testbed)):
            return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
