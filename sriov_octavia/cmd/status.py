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
"""``sriov-octavia-status``: is this deployment ready for SR-IOV amphorae?

``upgrade check`` follows the oslo.upgradecheck convention and looks only
at what this host's configuration names (provider and agent enabled,
certificates, jobboard, flow persistence). ``preflight`` adds what only the
cloud can tell: whether amphorae of a flavor can be scheduled on hosts that
have VFs on the networks they need, and whether the amphora image exists.

Both print one row per check and exit with the highest code (0 success,
1 warning, 2 failure). Every finding says what to change.
"""

import sys

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from sriov_octavia import conf as sriov_conf
from sriov_octavia.preflight import checks

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
PROJECT = 'octavia'
_OCTAVIA_GROUPS = ('api_settings', 'driver_agent', 'controller_worker',
                   'haproxy_amphora')


class UpgradeChecks(upgradecheck.UpgradeCommands):
    """What this host's configuration alone can confirm."""

    _upgrade_checks = (
        ('Provider driver enabled', checks.provider_enabled),
        ('Provider agent enabled', checks.provider_agent_enabled),
        ('Amphora agent certificates', checks.certificates),
        ('Jobboard', checks.jobboard),
        ('Flow persistence', checks.persistence),
    )

    def __init__(self, conf=CONF):
        super().__init__()
        self.conf = conf


class PreflightChecks(UpgradeChecks):
    """The configuration checks plus the cloud a flavor will meet."""

    display_title = 'Preflight Check Results'
    _upgrade_checks = UpgradeChecks._upgrade_checks + (
        ('Flavor profile', checks.flavor_profile),
        ('Compute flavor placement', checks.compute_flavor_placement),
        ('SR-IOV capacity', checks.sriov_capacity),
        ('Amphora image', checks.amphora_image),
    )

    def __init__(self, conf=CONF):
        super().__init__(conf)
        self.target = checks.Target(conf)


def _add_parsers(subparsers):
    upgrade = subparsers.add_parser(
        'upgrade', help='oslo.upgradecheck: check this host\'s '
                        'configuration')
    upgrade.add_argument('check')
    upgrade.add_argument('--json', action='store_true',
                         help='print the results as JSON')
    upgrade.set_defaults(action_fn=lambda: UpgradeChecks(CONF).check())

    preflight = subparsers.add_parser(
        'preflight', help='check the configuration and the cloud a flavor '
                          'will meet')
    which = preflight.add_mutually_exclusive_group()
    which.add_argument('--flavor', metavar='NAME_OR_ID',
                       help='Octavia flavor whose profile to check')
    which.add_argument('--flavor-profile', metavar='NAME_OR_ID',
                       help='Octavia flavor profile to check')
    preflight.add_argument('--compute-flavor', metavar='NAME_OR_ID',
                           help='Nova flavor (default: the profile\'s '
                                'compute_flavor, else [controller_worker] '
                                'amp_flavor_id)')
    preflight.add_argument('--image-tag', metavar='TAG',
                           help='Glance tag of the amphora image (default: '
                                'the profile\'s amp_image_tag, else '
                                '[controller_worker] amp_image_tag)')
    preflight.add_argument('--vip-network', metavar='NAME_OR_ID',
                           help='network the VIPs will be on')
    preflight.add_argument('--member-network', metavar='NAME_OR_ID',
                           action='append', default=[],
                           help='network SR-IOV members will be on '
                                '(repeatable)')
    preflight.add_argument('--json', action='store_true',
                           help='print the results as JSON')
    preflight.set_defaults(action_fn=lambda: PreflightChecks(CONF).check())


def register(conf=CONF):
    conf.register_cli_opt(cfg.SubCommandOpt('command',
                                            handler=_add_parsers))


def main(argv=None):
    register(CONF)
    CONF(sys.argv[1:] if argv is None else argv, project=PROJECT)
    # UpgradeCommands.check() reads its --json switch from here.
    upgradecheck.CONF = CONF
    return upgradecheck.run(CONF)


if __name__ == '__main__':
    sys.exit(main())
