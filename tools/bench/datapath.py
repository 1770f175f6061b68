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
"""Data-path cost of the firewall with many allowed entries.

Each configuration gets its own client namespace and amphora namespace
joined by a veth (the VF), with servers on the VIP inside the amphora:

  none      no ruleset at all (the reference every ratio is taken against)
  ours      the engine with the request of N entries applied
  upstream  the upstream-style ruleset of the same request
  linear    1000 unoptimised rules that every packet walks (a probe showing
            that the measurement sees a firewall's cost at all)

Each round measures one load on every configuration, then the other; the
order of configurations rotates from round to round. Each round's ratio to
``none`` is kept and the median over the rounds reported:

  udp     64-byte datagrams, iperf3 -u -l 64 -b 0 (as fast as the
          sender can), counted where they enter the amphora's UDP layer
  oneway  the same, sent by udp_blast.c to a sink that never replies
          (compiled with cc at start; --no-oneway leaves it out)
  tcp     new TCP connections per second: connect, server accepts and
          closes, client closes (a small Python client and server, see
          _traffic.py)

Why both UDP loads: iperf3's server answers its client, so the
upstream-style ruleset's conntrack verdict map sees an established flow and
skips its rules; only the first datagram walks them. udp_blast sends one way
to a sink that never replies, so every datagram walks the rules (one run at
50000 entries: upstream-style 0.055 of no firewall one way, 0.85 under
iperf3). The sink spins instead of sleeping so that the sender never has to
wake it: waking a receiver costs the sender more than the firewall does.

    tools/bench/datapath.py [--quick] [--entries 50000] [--rounds 7]
                            [--no-probe] [--no-oneway]
"""

import json
import os
import select
import sys

import _common

from sriov_octavia_testbed import netlab

TARGET_RATIO = 0.95
LINEAR_RULES = 1000
CONNTRACK_COUNT = '/proc/sys/net/netfilter/nf_conntrack_count'
CONNTRACK_MAX = '/proc/sys/net/netfilter/nf_conntrack_max'


def _read_int(namespace, path):
    # /proc/sys/net shows the reading process's namespace.
    return int(netlab.run(namespace, ['cat', path]).stdout)


class Config:
    def __init__(self, name, client, amphora):
        self.name = name
        self.client = client
        self.amphora = amphora
        self.iperf_server = None
        self.udp = []
        self.oneway = []
        self.tcp = []


def _setup(bench, name, request):
    client, amphora = bench.pair(name[:2])
    config = Config(name, client, amphora)
    if name == 'ours':
        bench.firewall('ours', amphora).apply(request)
    elif name == 'upstream':
        bench.firewall('upstream', amphora).apply(request)
    elif name == 'linear':
        path = os.path.join(bench.workdir, 'linear.nft')
        with open(path, 'w') as rules:
            rules.write(_common.linear_ruleset_text(LINEAR_RULES))
        _common.run_nft_file(amphora, path, optimize=False)
    config.iperf_server = bench.popen(
        amphora, ['iperf3', '-s', '-B', _common.VIP,
                  '-p', str(_common.UDP_FLOW_PORT)])
    tcp_server = bench.traffic(amphora, 'tcp-server', _common.VIP,
                               str(_common.TCP_FLOW_PORT))
    _common.wait_for_port(amphora, _common.UDP_FLOW_PORT,
                          proc=config.iperf_server)
    _common.wait_for_port(amphora, _common.TCP_FLOW_PORT, proc=tcp_server)
    return config


def udp_rate(config, seconds):
    """Datagrams per second past the firewall, and per second sent."""
    before, _ = _common.udp_delivered(config.iperf_server.pid)
    done = netlab.run(
        config.client,
        ['iperf3', '-c', _common.VIP, '-p', str(_common.UDP_FLOW_PORT),
         '-u', '-l', '64', '-b', '0', '-t', str(seconds), '-J'],
        check=False, timeout=seconds + 30)
    after, _ = _common.udp_delivered(config.iperf_server.pid)
    try:
        report = json.loads(done.stdout)
        total = report['end']['sum']
    except (ValueError, KeyError):
        raise RuntimeError(f'iperf3 in {config.name}: {done.stdout[-300:]} '
                           f'{done.stderr[-300:]}')
    return (after - before) / total['seconds'], \
        total['packets'] / total['seconds']


def oneway_rate(bench, config, seconds, binary):
    """Datagrams per second past the firewall from udp_blast, one way.

    The sink holds the UDP port only while this runs: iperf3's server binds
    the same port for its own UDP tests.
    """
    port = str(_common.UDP_FLOW_PORT)
    sink = bench.popen(config.amphora, [binary, 'sink', _common.VIP, port])
    ready, _, _ = select.select([sink.stdout], [], [], 10)
    if not ready or sink.stdout.readline().strip() != 'ready':
        _, err = bench.stop(sink)
        raise RuntimeError(f'udp_blast sink in {config.name} not ready: '
                           f'{err[-300:]}')
    try:
        before, _ = _common.udp_delivered(sink.pid)
        done = netlab.run(config.client,
                          [binary, 'send', _common.VIP, port, str(seconds)],
                          check=False, timeout=seconds + 30)
        after, _ = _common.udp_delivered(sink.pid)
    finally:
        bench.stop(sink)
    try:
        report = json.loads(done.stdout)
        sent, elapsed = report['sent'], report['seconds']
    except (ValueError, KeyError):
        raise RuntimeError(f'udp_blast send in {config.name}: '
                           f'{done.stdout[-300:]} {done.stderr[-300:]}')
    if report['errors']:
        _common.print_note(f'{config.name}: udp_blast send failed '
                           f'{report["errors"]} times (one way)')
    delivered = after - before
    if delivered < 0.99 * sent:
        _common.print_note(
            f'{config.name}: only {delivered} of {sent} datagrams got past '
            'the firewall (one way)')
    return delivered / elapsed


def tcp_rate(bench, config, seconds):
    proc = bench.traffic(config.client, 'tcp-connect', _common.VIP,
                         str(_common.TCP_FLOW_PORT), '--seconds',
                         str(seconds))
    proc.wait(timeout=seconds + 30)
    report = bench.finish(proc)
    if report['failures']:
        _common.print_note(f'{config.name}: {report["failures"]} '
                           'connections failed')
    return report['rate']


def main(argv=None):
    parser = _common.argument_parser(
        __doc__, 'tiny sizes and durations, for the smoke test')
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--seconds', type=int,
                        help='length of each measurement')
    parser.add_argument('--no-probe', action='store_true',
                        help='leave out the linear-rules probe')
    parser.add_argument('--no-oneway', action='store_true',
                        help='leave out the one-way UDP load (udp_blast)')
    args = parser.parse_args(argv)
    entries = args.entries or (500 if args.quick else 50000)
    rounds = args.rounds or (1 if args.quick else 7)
    seconds = args.seconds or (1 if args.quick else 2)
    names = ['none', 'ours', 'upstream']
    if not args.no_probe:
        names.append('linear')

    request = _common.make_request(entries, args.seed)
    with _common.Bench('dp') as bench:
        blast = (None if args.no_oneway
                 else _common.build_udp_blast(bench.workdir))
        configs = [_setup(bench, name, request) for name in names]
        if not args.quick:
            # Unrecorded: the first run of each pays for cold caches,
            # neighbour resolution and page faults.
            for config in configs:
                udp_rate(config, 1)
                if blast:
                    oneway_rate(bench, config, 1, blast)
                tcp_rate(bench, config, 1)
        for round_no in range(rounds):
            shift = round_no % len(configs)
            order = configs[shift:] + configs[:shift]
            # One load across all configurations, then the other: what is
            # compared is measured close together in time.
            for config in order:
                delivered, sent = udp_rate(config, seconds)
                if delivered < 0.99 * sent:
                    _common.print_note(
                        f'{config.name}: only {delivered:.0f} of {sent:.0f} '
                        'datagrams/s got past the firewall')
                config.udp.append(delivered)
            if blast:
                for config in order:
                    config.oneway.append(
                        oneway_rate(bench, config, seconds, blast))
            for config in order:
                config.tcp.append(tcp_rate(bench, config, seconds))
        # Only the upstream style tracks connections; a full table would
        # drop its new connections and make it look worse than it is.
        upstream = [c for c in configs if c.name == 'upstream'][0]
        _common.print_note(
            'conntrack entries in the upstream-style amphora after the run: '
            f'{_read_int(upstream.amphora, CONNTRACK_COUNT)} of '
            f'{_read_int(upstream.amphora, CONNTRACK_MAX)}')
        reference = configs[0]
        _common.print_note(f'{entries} entries, {rounds} rounds of '
                           f'{seconds} s per load and configuration')
        for config in configs:
            _common.print_value(f'udp_pps_{config.name}',
                                _common.median(config.udp), 'pkt/s')
            if blast:
                _common.print_value(f'udp_oneway_pps_{config.name}',
                                    _common.median(config.oneway), 'pkt/s')
            _common.print_value(f'tcp_conn_per_s_{config.name}',
                                _common.median(config.tcp), 'conn/s')
        for config in configs[1:]:
            for load in ('udp', 'oneway', 'tcp'):
                if load == 'oneway' and not blast:
                    continue
                ratio = _common.median(
                    [mine / ref for mine, ref in
                     zip(getattr(config, load), getattr(reference, load))])
                prefix = 'udp_oneway' if load == 'oneway' else load
                name = f'{prefix}_{config.name}_over_none_{entries}'
                if config.name == 'ours' and load != 'oneway':
                    _common.print_ratio(name, ratio,
                                        f'target >= {TARGET_RATIO}',
                                        ratio >= TARGET_RATIO)
                else:
                    _common.print_ratio(name, ratio)
    return 0


if __name__ == '__main__':
    sys.exit(main())
