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
"""Hitless replacement: packets lost while the ruleset is replaced.

A client sends sequence-numbered 64-byte UDP datagrams at a steady rate to a
receiver on the VIP inside the amphora namespace while the ruleset is
replaced back to back, alternating two different requests of N entries that
both allow the flow. Losses are what the sender sent less what the receiver
got, less what the receiver's full socket buffer dropped (counted by the
kernel, not the firewall's doing). The engine and the upstream-style file
replace are measured in the same run.

    tools/bench/hitless.py [--quick] [--entries 10000] [--replacements 100]
"""

import sys
import time

import _common

from sriov_octavia_testbed import netlab


def run_one(bench, kind, requests, replacements, rate):
    client, amphora = bench.pair(kind[:2])
    fw = bench.firewall(kind, amphora)
    fw.apply(requests[0])
    port = str(_common.UDP_FLOW_PORT)
    receiver = bench.traffic(amphora, 'udp-recv', _common.VIP, port)
    _common.wait_for_port(amphora, _common.UDP_FLOW_PORT, protocol='udp',
                          proc=receiver)
    # Resolve the VIP's MAC first: a neighbour queue overflow at the start
    # would count as loss. The echo itself may well be dropped.
    netlab.run(client, ['ping', '-c', '1', '-W', '1', _common.VIP],
               check=False)
    _, buffer_drops_before = _common.udp_delivered(receiver.pid)
    sender = bench.traffic(client, 'udp-send', _common.VIP, port,
                           '--rate', str(rate))
    # Let the flow settle before the first replacement.
    time.sleep(0.5)
    start = time.perf_counter()
    for i in range(replacements):
        fw.apply(requests[(i + 1) % 2])
    replacing = time.perf_counter() - start
    time.sleep(0.3)
    sent = bench.finish(sender)
    # What is still on the way arrives well within this.
    time.sleep(0.3)
    _, buffer_drops_after = _common.udp_delivered(receiver.pid)
    got = bench.finish(receiver)
    buffer_drops = buffer_drops_after - buffer_drops_before
    return {
        'sent': sent['sent'],
        'rate': sent['rate'],
        'received': got['received'],
        'longest_gap': got['longest_gap'],
        'buffer_drops': buffer_drops,
        'lost': sent['sent'] - got['received'] - buffer_drops,
        'replacing_s': replacing,
    }


def main(argv=None):
    parser = _common.argument_parser(__doc__, 'tiny sizes, for the smoke test')
    parser.add_argument('--replacements', type=int)
    parser.add_argument('--rate', type=int, default=20000,
                        help='datagrams per second (default 20000)')
    args = parser.parse_args(argv)
    entries = args.entries or (300 if args.quick else 10000)
    replacements = args.replacements or (6 if args.quick else 100)
    requests = [_common.make_request(entries, args.seed),
                _common.make_request(entries, args.seed + 1)]

    with _common.Bench('hl') as bench:
        results = {kind: run_one(bench, kind, requests, replacements,
                                 args.rate)
                   for kind in ('ours', 'upstream')}
    _common.print_note(f'{replacements} replacements of {entries} entries '
                       f'under a {args.rate} pkt/s UDP flow')
    for kind, result in results.items():
        if result['rate'] < 0.9 * args.rate:
            _common.print_note(f'{kind}: the sender reached only '
                               f'{result["rate"]:.0f} pkt/s')
        if result['buffer_drops']:
            _common.print_note(f'{kind}: {result["buffer_drops"]} datagrams '
                               "dropped by the receiver's full buffer "
                               '(not counted as lost)')
        _common.print_value(f'hitless_sent_{kind}', result['sent'], 'pkt')
        _common.print_value(f'hitless_lost_{kind}', result['lost'], 'pkt')
        _common.print_value(f'hitless_longest_gap_{kind}',
                            result['longest_gap'], 'pkt')
        _common.print_value(f'hitless_replace_s_{kind}',
                            result['replacing_s'], 's')
        fraction = result['lost'] / result['sent'] if result['sent'] else 1.0
        if kind == 'ours':
            _common.print_ratio(f'hitless_lost_fraction_{kind}', fraction,
                                'target 0 lost', result['lost'] == 0)
        else:
            _common.print_ratio(f'hitless_lost_fraction_{kind}', fraction)
    return 0


if __name__ == '__main__':
    sys.exit(main())
