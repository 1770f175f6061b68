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
"""Neutron and Nova API calls per load balancer create, SR-IOV vs normal.

Four Octavia flavors of the amphora-sriov provider: SINGLE and
ACTIVE_STANDBY, each with ``sriov_vip`` true (direct VRRP ports, the
amphora firewall) and false (normal VRRP ports, as upstream's amphora
driver has them: the baseline, measured in the same run). For each, load
balancers are created through Octavia's API on a testbed of this script's
own, with ``--listeners`` TCP listeners of ``--cidrs`` allowed CIDRs each
in the same call (a normal load balancer's security group gets a rule per
CIDR, an SR-IOV one's amphora firewall gets them instead), and the
requests Neutron and the compute emulator served between the create call
and ACTIVE are counted on the server side: Neutron's from its
uwsgi request log, the emulator's from its request counter
(``GET /testbed/requests``). Every caller is counted: the provider driver
in octavia-api (VIP port), the worker, and the compute emulator's own
Neutron calls when it binds ports (real Nova makes them too).

Then the creates are timed again with the compute emulator answering each
Compute and Image API request only after ``--latency-ms``. Neutron is the
real Neutron server on loopback and has no such knob: its calls cost what
they cost here.

    lb_api_calls.py [--runs 3] [--latency-ms 100] [--listeners 2]
                    [--cidrs 2] [--port-base 18000]

Prints a table, then lines like::

    value neutron_calls_single_sriov = 14 calls
    ratio neutron_calls_single_sriov_over_normal = 0.6
"""

import argparse
import collections
import os
import re
import statistics
import sys
import time

import requests

import _common
import _lb_testbed

PREFIX = 'tac'
TOPOLOGIES = ('SINGLE', 'ACTIVE_STANDBY')
# SR-IOV first, then the baseline it is compared with.
VIP_KINDS = (('sriov', True), ('normal', False))
TIMEOUT = 600
_NEUTRON_REQUEST = re.compile(
    r'\] (GET|POST|PUT|DELETE|PATCH|HEAD) (\S+) => ')
_ID = re.compile(r'/[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                 r'[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?=[/?]|$)')


def _shape(method, path):
    path = path.split('?', 1)[0]
    return f'{method} {_ID.sub("/{id}", path)}'


class NeutronRequests:
    """Requests Neutron served, read from its uwsgi request log."""

    def __init__(self, tb):
        self.path = _lb_testbed.log_path(tb, 'neutron')
        self.offset = 0

    def start(self):
        self.offset = os.path.getsize(self.path)

    def counts(self):
        with open(self.path, errors='replace') as log:
            log.seek(self.offset)
            text = log.read()
        return collections.Counter(
            _shape(*match.groups())
            for match in _NEUTRON_REQUEST.finditer(text))


class NovaRequests:
    """Requests the compute emulator served (Compute and Image APIs)."""

    def __init__(self, tb):
        self.url = tb.url('nova') + '/testbed/requests'

    def start(self):
        requests.delete(self.url, timeout=30).raise_for_status()

    def counts(self):
        answer = requests.get(self.url, timeout=30)
        answer.raise_for_status()
        return collections.Counter(answer.json()['requests'])


def _split_image(counts):
    image = collections.Counter({key: n for key, n in counts.items()
                                 if key.split()[1].startswith('/image')})
    return counts - image, image


def measure_create(conn, tb, flavor_id, subnet_id, name, with_listeners):
    """One create: (neutron counts, compute counts, image counts, s)."""
    neutron = NeutronRequests(tb)
    nova = NovaRequests(tb)
    neutron.start()
    nova.start()
    began = time.monotonic()
    lb_id = _lb_testbed.create_load_balancer(conn, name, flavor_id,
                                             subnet_id, with_listeners)
    [(status, seen)] = _lb_testbed.wait_for_status(
        conn, [lb_id], TIMEOUT).values()
    neutron_counts = neutron.counts()
    compute_counts, image_counts = _split_image(nova.counts())
    try:
        if status != 'ACTIVE':
            raise RuntimeError(f'load balancer {lb_id} went to {status}; '
                               f'see {tb.logs_dir}')
    finally:
        _lb_testbed.delete_load_balancers(conn, [lb_id], TIMEOUT)
    return neutron_counts, compute_counts, image_counts, seen - began


def _label(topology, kind):
    return f'{topology.lower()}_{kind}'


def _median_total(runs, index):
    return statistics.median(sum(run[index].values()) for run in runs)


def _note_breakdown(label, runs):
    # The last run's calls by endpoint: where the difference comes from.
    neutron, compute, image, _seconds = runs[-1]
    for service, counts in (('neutron', neutron), ('compute', compute),
                            ('image', image)):
        for key, count in sorted(counts.items()):
            _common.print_note(f'{label} {service} {key}: {count}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3,
                        help='creates per flavor and phase')
    parser.add_argument('--listeners', type=int, default=2,
                        help='TCP listeners created with each load balancer '
                             '(in the same call)')
    parser.add_argument('--cidrs', type=int, default=2,
                        help='allowed CIDRs of each listener')
    _lb_testbed.add_testbed_arguments(
        parser, 18000, 'one run per flavor: does the script work',
        latency_ms=100.0,
        latency_help='added to every Compute/Image API request in the '
                     'second phase')
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1

    with _lb_testbed.running_testbed(args.port_base, PREFIX,
                                     args.state_dir) as tb:
        conn = tb.connect()
        subnet_id = _lb_testbed.vip_subnet_id(conn)
        flavors = {
            (topology, kind): _lb_testbed.octavia_flavor(
                conn, f'{PREFIX}-{_label(topology, kind)}', topology,
                sriov_vip)
            for topology in TOPOLOGIES for kind, sriov_vip in VIP_KINDS}
        with_listeners = _lb_testbed.listeners(args.listeners, args.cidrs)
        _common.print_note(f'{args.runs} create(s) per flavor, each with '
                           f'{args.listeners} listener(s) of {args.cidrs} '
                           f'allowed CIDR(s); medians')

        calls = {}
        for (topology, kind), flavor_id in flavors.items():
            label = _label(topology, kind)
            calls[label] = [
                measure_create(conn, tb, flavor_id, subnet_id,
                               f'{PREFIX}-{label}-{run}', with_listeners)
                for run in range(args.runs)]
            _note_breakdown(label, calls[label])

        _lb_testbed.nova_faults(tb, api_latency_ms=args.latency_ms)
        slow = {}
        try:
            for (topology, kind), flavor_id in flavors.items():
                label = _label(topology, kind)
                slow[label] = [
                    measure_create(conn, tb, flavor_id, subnet_id,
                                   f'{PREFIX}-{label}-slow-{run}',
                                   with_listeners)
                    for run in range(args.runs)]
        finally:
            _lb_testbed.nova_faults(tb)
        conn.close()

    latency = f'{args.latency_ms:g}ms'
    print(f'{"flavor":<22} {"neutron":>8} {"compute":>8} {"image":>6} '
          f'{"create s":>9} {"s @" + latency:>10}', flush=True)
    rows = {}
    for label in calls:
        rows[label] = (_median_total(calls[label], 0),
                       _median_total(calls[label], 1),
                       _median_total(calls[label], 2),
                       statistics.median(run[3] for run in calls[label]),
                       statistics.median(run[3] for run in slow[label]))
        print(f'{label:<22} {rows[label][0]:>8g} {rows[label][1]:>8g} '
              f'{rows[label][2]:>6g} {rows[label][3]:>9.2f} '
              f'{rows[label][4]:>10.2f}', flush=True)
    for label, (neutron, compute, image, seconds, slow_seconds) in (
            rows.items()):
        _common.print_value(f'neutron_calls_{label}', neutron, 'calls')
        _common.print_value(f'compute_calls_{label}', compute, 'calls')
        _common.print_value(f'image_calls_{label}', image, 'calls')
        _common.print_value(f'create_seconds_{label}', seconds, 's')
        _common.print_value(f'create_seconds_{label}_at_{latency}',
                            slow_seconds, 's')
    for topology in TOPOLOGIES:
        sriov = rows[_label(topology, 'sriov')]
        normal = rows[_label(topology, 'normal')]
        base = topology.lower()
        for index, what in ((0, 'neutron_calls'), (1, 'compute_calls'),
                            (3, 'create_seconds'),
                            (4, f'create_seconds_at_{latency}')):
            if normal[index]:
                _common.print_ratio(f'{what}_{base}_sriov_over_normal',
                                    sriov[index] / normal[index])
    _common.print_note('Neutron has no latency knob in the testbed: each of '
                       'its calls above would add a real cloud\'s Neutron '
                       'latency on top of the times shown')
    return 0


if __name__ == '__main__':
    sys.exit(main())
