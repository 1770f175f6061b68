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
"""``sriov-octavia-manage``: the operator's view of this provider's amphorae.

::

    sriov-octavia-manage --config-file /etc/octavia/octavia.conf \\
        amphora list [--loadbalancer LB_ID] [--format table|json]
    ... amphora show SERVER_ID_OR_AMPHORA_ID [--format table|json]
    ... amphora failover SERVER_ID_OR_AMPHORA_ID [--wait]
    ... amphora stats SERVER_ID_OR_AMPHORA_ID [--format table|json]

Parsing and printing only; sriov_octavia.operator_view collects. Exit code
0 on success, 1 on any error, whose message goes to stderr.
"""

import json
import sys

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_db import exception as db_exceptions
from oslo_log import log as logging
import sqlalchemy.exc

from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import operator_view

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)
PROG = 'sriov-octavia-manage'
PROJECT = 'octavia'
# How long --wait waits for a failover by default: a boot, the agent's
# start and the plugs, with room for a busy cloud.
DEFAULT_WAIT_TIMEOUT = 1200


# Output ----------------------------------------------------------------------

def _lines(value):
    if value is None:
        return ['']
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value] or ['']
    return str(value).splitlines() or ['']


def format_table(headers, rows):
    """An ASCII table as the openstack client draws one.

    A cell is a value, None (empty) or a list (one line per item).
    """
    cells = [[_lines(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(line) for row in cells
                                   for line in row[column]])
              for column, header in enumerate(headers)]
    rule = '+' + '+'.join('-' * (width + 2) for width in widths) + '+'

    def draw(row):
        height = max(len(lines) for lines in row)
        return ['| ' + ' | '.join(
            (lines[index] if index < len(lines) else '').ljust(width)
            for lines, width in zip(row, widths)) + ' |'
            for index in range(height)]

    out = [rule] + draw([[header] for header in headers]) + [rule]
    for row in cells:
        out.extend(draw(row))
    if cells:
        out.append(rule)
    return '\n'.join(out)


def _ports_cell(amphora):
    return [f'{port["pci_slot"] or "(no PCI slot)"} {port["id"]}'
            for port in amphora['vf_ports']]


LIST_COLUMNS = (
    ('Server ID', lambda a: a['id']),
    ('Load balancer', lambda a: a['loadbalancer_id']),
    ('Role', lambda a: a['role']),
    ('Status', lambda a: a['server_status']),
    ('Compute host', lambda a: a['compute_host']),
    ('Mgmt IP', lambda a: a['mgmt_ip']),
    ('VF ports (PCI slot, port)', _ports_cell),
    ('Health', lambda a: a['health']),
    ('Cert expiry', lambda a: a['cert_expiry']),
)

SHOW_FIELDS = (
    ('id', 'Server ID'), ('amphora_id', 'Amphora ID'),
    ('loadbalancer_id', 'Load balancer'),
    ('loadbalancer_status', 'Load balancer status'), ('role', 'Role'),
    ('server_status', 'Server status'), ('compute_host', 'Compute host'),
    ('mgmt_ip', 'Mgmt IP'), ('vf_ports', 'VF ports'),
    ('health', 'Health'), ('health_detail', 'Health detail'),
    ('cert_expiry', 'Cert expiry'), ('replaces', 'Replaces'),
)


# The agent's per-listener and per-interface counters, and how a row names
# one of them.
_COUNTER_KINDS = {'listeners': 'listener', 'interfaces': 'interface'}


def _port_lines(ports):
    return [f'{port["id"]}: PCI slot {port["pci_slot"] or "none"}, '
            f'{port["vnic_type"]}, MAC {port["mac_address"]}, network '
            f'{port["network_id"]}' + (f', {port["name"]}'
                                       if port['name'] else '')
            for port in ports]


def _field_rows(amphora):
    return [(label, _port_lines(amphora[key]) if key == 'vf_ports'
             else amphora[key]) for key, label in SHOW_FIELDS]


def _is_counter(value):
    return isinstance(value, dict) and {'packets', 'bytes'} <= set(value)


def _counter_group(value):
    """A ``{verdict: counter}`` dict, as the shared counters are."""
    return (isinstance(value, dict) and bool(value)
            and all(_is_counter(counter) for counter in value.values()))


def _counter_rows(counters):
    rows = []
    for name, verdicts in sorted(counters.items()):
        if name in _COUNTER_KINDS or not _counter_group(verdicts):
            continue
        for verdict, value in sorted(verdicts.items()):
            rows.append((f'{name} {verdict}', value['packets'],
                         value['bytes']))
    for kind, singular in _COUNTER_KINDS.items():
        for name, verdicts in sorted((counters.get(kind) or {}).items()):
            for verdict, value in sorted(verdicts.items()):
                rows.append((f'{singular} {name} {verdict}',
                             value['packets'], value['bytes']))
    return rows


def _scalar(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _firewall_facts(counters):
    """What the agent reports beside its counters (drift repairs...)."""
    rows = []
    for name, value in sorted(counters.items()):
        if name in _COUNTER_KINDS or _counter_group(value):
            continue
        if isinstance(value, dict):
            rows.extend((f'{name} {key}', _scalar(item))
                        for key, item in sorted(value.items()))
        else:
            rows.append((name, _scalar(value)))
    return rows


def _haproxy_tables(lb_id, view):
    if view is None:
        return [f'haproxy: not running for load balancer {lb_id}']
    frontends = [(name, frontend.get('status'), frontend.get('scur'),
                  frontend.get('stot'), frontend.get('bin'),
                  frontend.get('bout'), frontend.get('ereq'))
                 for name, frontend
                 in sorted((view.get('frontends') or {}).items())]
    backends = []
    for name, backend in sorted((view.get('backends') or {}).items()):
        servers = sorted((backend.get('servers') or {}).items())
        backends.append((name, backend.get('status'),
                         [server for server, _ in servers],
                         [f'{state.get("status")} '
                          f'({state.get("check_status") or "no check"})'
                          for _, state in servers]))
    return ['haproxy frontends (listeners):',
            format_table(('Frontend', 'Status', 'Current conns',
                          'Total conns', 'Bytes in', 'Bytes out',
                          'Request errors'), frontends),
            'haproxy backends (pools):',
            format_table(('Backend', 'Status', 'Servers (members)',
                          'Server status (check)'), backends)]


def _print_json(data):
    print(json.dumps(data, indent=2, sort_keys=True))


# The actions -----------------------------------------------------------------

def _list(conf, args, conn):
    found = operator_view.list_amphorae(conn, args.loadbalancer, conf,
                                        timeout=args.agent_timeout)
    if args.format == 'json':
        _print_json(found)
        return 0
    print(format_table([header for header, _ in LIST_COLUMNS],
                       [[cell(amphora) for _, cell in LIST_COLUMNS]
                        for amphora in found]))
    return 0


def _show(conf, args, conn):
    amphora = operator_view.show_amphora(conn, args.amphora, conf,
                                         timeout=args.agent_timeout)
    if args.format == 'json':
        _print_json(amphora)
    else:
        print(format_table(('Field', 'Value'), _field_rows(amphora)))
    return 0


def _stats(conf, args, conn):
    stats = operator_view.amphora_stats(conn, args.amphora, conf,
                                        timeout=args.agent_timeout)
    if args.format == 'json':
        _print_json(stats)
        return 0
    print(f'Amphora {stats["id"]} ({stats["role"]} of load balancer '
          f'{stats["loadbalancer_id"]}, {stats["mgmt_ip"]})')
    print('Firewall counters:')
    print(format_table(('Counter', 'Packets', 'Bytes'),
                       _counter_rows(stats['firewall'])))
    facts = _firewall_facts(stats['firewall'])
    if facts:
        print('Firewall, besides its counters:')
        print(format_table(('Field', 'Value'), facts))
    for part in _haproxy_tables(stats['loadbalancer_id'], stats['haproxy']):
        print(part)
    return 0


def _failover(conf, args, conn):
    posted = operator_view.failover(conn, args.amphora, conf)
    if args.format != 'json':
        print(f'Failover of amphora {posted["id"]} ({posted["role"]} of '
              f'load balancer {posted["loadbalancer_id"]}) posted as job '
              f'{posted["job_id"]}; the load balancer is PENDING_UPDATE '
              f'until the job ends.', flush=True)
    if not args.wait:
        if args.format == 'json':
            _print_json(posted)
        return 0
    done = operator_view.wait_for_failover(conn, posted, args.wait_timeout)
    if args.format == 'json':
        _print_json(done)
    else:
        holders = ', '.join(done['new_ids']) or 'none'
        print(f'Load balancer {done["loadbalancer_id"]} is '
              f'{done["provisioning_status"]}; its {done["role"]} amphora '
              f'is server {holders}.')
    if done['provisioning_status'] != 'ACTIVE':
        print(f'The failover of amphora {done["id"]} failed: load balancer '
              f'{done["loadbalancer_id"]} is {done["provisioning_status"]}; '
              f'the worker\'s log says why (job {done["job_id"]}).',
              file=sys.stderr)
        return 1
    return 0


# Parsing ---------------------------------------------------------------------

def seconds(text):
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _add_format(parser):
    parser.add_argument('--format', '-f', choices=('table', 'json'),
                        default='table', help='output format (default: '
                                              'table)')


def _add_agent_timeout(parser):
    parser.add_argument(
        '--agent-timeout', type=seconds, metavar='SECONDS',
        default=operator_view.PROBE_TIMEOUT,
        help='seconds an amphora agent may take to answer (default: '
             f'{operator_view.PROBE_TIMEOUT:g}); asked once, no retries')


def _add_amphora(parser):
    parser.add_argument('amphora', metavar='SERVER_ID_OR_AMPHORA_ID',
                        help='the amphora\'s Nova server id or its amphora '
                             'id (the name its certificate carries)')


def _add_parsers(subparsers):
    amphora = subparsers.add_parser(
        'amphora', help='the amphorae of the amphora-sriov provider')
    actions = amphora.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True

    listing = actions.add_parser(
        'list', help='list the amphorae, of one load balancer or all, with '
                     'role, compute host, management address, VF ports, '
                     'health and certificate expiry')
    listing.add_argument('--loadbalancer', metavar='LB_ID',
                         help='only this load balancer\'s amphorae')
    _add_format(listing)
    _add_agent_timeout(listing)
    listing.set_defaults(handler=_list)

    show = actions.add_parser('show', help='show one amphora')
    _add_amphora(show)
    _add_format(show)
    _add_agent_timeout(show)
    show.set_defaults(handler=_show)

    failover = actions.add_parser(
        'failover', help='replace the amphora by a new one (posts the '
                         'amphora.failover job as octavia-api would)')
    _add_amphora(failover)
    failover.add_argument('--wait', action='store_true',
                          help='wait until the load balancer is ACTIVE or '
                               'ERROR again')
    failover.add_argument('--wait-timeout', type=seconds, metavar='SECONDS',
                          default=DEFAULT_WAIT_TIMEOUT,
                          help='give up waiting after this many seconds '
                               f'(default: {DEFAULT_WAIT_TIMEOUT})')
    _add_format(failover)
    failover.set_defaults(handler=_failover)

    stats = actions.add_parser(
        'stats', help='the amphora\'s firewall counters and haproxy '
                      'statistics of its load balancer')
    _add_amphora(stats)
    _add_format(stats)
    _add_agent_timeout(stats)
    stats.set_defaults(handler=_stats)


def register(conf):
    conf.register_cli_opt(cfg.SubCommandOpt('command',
                                            handler=_add_parsers))


def _logs_off_stdout(conf):
    """Keep stdout for the command's output: JSON must parse.

    oslo.log writes to stdout when the configuration names no log file,
    journal or stderr; stderr then.
    """
    if not (conf.log_file or conf.log_dir or conf.use_stderr
            or conf.use_journal):
        conf.set_override('use_stderr', True)


def main(argv=None, conf=None):
    conf = conf or CONF
    logging.register_options(conf)
    register(conf)
    try:
        conf(sys.argv[1:] if argv is None else argv, project=PROJECT,
             prog=PROG)
    except cfg.Error as error:
        print(f'{PROG}: {error}', file=sys.stderr)
        return 1
    _logs_off_stdout(conf)
    logging.setup(conf, PROG)
    args = conf.command
    try:
        return args.handler(conf, args, clients.connection(conf))
    except operator_view.OperatorError as error:
        print(error, file=sys.stderr)
    except (os_exceptions.SDKException,
            ks_exceptions.ClientException) as error:
        LOG.debug('Cloud request failed', exc_info=True)
        print(f'Nova or Neutron could not be asked: {error}; check '
              f'[service_auth] and the [nova] and [neutron] sections of '
              f'the configuration', file=sys.stderr)
    except (db_exceptions.DBError, sqlalchemy.exc.SQLAlchemyError) as error:
        LOG.debug('Database request failed', exc_info=True)
        print(f'Octavia\'s database could not be read or written: '
              f'{error}; check [database] connection', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
