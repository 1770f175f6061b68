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
"""UDP packets per second through a UDP listener's VIP, against direct.

One client namespace, one amphora namespace (VIP on the client's side, a
second link to the members), one member namespace with two member
addresses. The amphora forwards in both configurations, so what differs is
exactly what the UDP engine adds:

  direct  datagrams addressed to a member, routed through the amphora
          (no balancer table: no conntrack, no NAT)
  vip     datagrams addressed to the VIP, balanced by the agent's L4
          engine (amphora_agent.l4) over the two members: conntrack, the
          flow bound, DNAT and source NAT

The sender is socat writing 64-byte datagrams from /dev/zero as fast as it
can, ``--flows`` senders at once (one source port each, so several flows
spread over the members); the figure is datagrams per second received in
the member namespace. Rounds alternate the two configurations and the
median of each round's ratio is reported:

  ratio udp_pps_vip_over_direct  (no target: the cost of stateful NAT)

    tools/bench/udp_lb.py [--quick] [--rounds 7] [--seconds 3] [--flows 2]

Figures are only meaningful on a kernel where the engine runs natively,
never under emulation (qemu TCG).
"""

import os
import sys
import time

import _common

from sriov_octavia_testbed import netlab

PORT = 5201
MEMBER_SUBNET = '198.51.100.0/24'
AMPHORA_MEMBER_SIDE = '198.51.100.1'
MEMBERS = ('198.51.100.50', '198.51.100.51')
LISTENER_ID = '0b5e7a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c'
POOL_ID = '1c6f8b4d-2e3a-4f7b-9c0d-1e2f3a4b5c6d'
LOADBALANCER_ID = '2d7a9c5e-3f4b-4a8c-8d1e-2f3a4b5c6d7e'


def l4_document():
    return {
        'loadbalancer_id': LOADBALANCER_ID,
        'flow_limit': 65536,
        'listeners': [{
            'id': LISTENER_ID, 'protocol': 'UDP', 'port': PORT,
            'addresses': [_common.VIP], 'connection_limit': None,
            'pool': {
                'id': POOL_ID, 'algorithm': 'ROUND_ROBIN',
                'persistence': None, 'monitor': None,
                'members': [{
                    'id': f'3e8b0d6f-4a5c-4b9d-8e2f-3a4b5c6d7e{n:02d}',
                    'address': address, 'port': PORT, 'weight': 1,
                    'backup': False, 'enabled': True,
                    'monitor_address': None, 'monitor_port': None}
                    for n, address in enumerate(MEMBERS)]}}]}


class Topology:
    """client -- amphora -- members, with receivers on both members."""

    def __init__(self, bench):
        self.bench = bench
        self.client, self.amphora = bench.pair('l')
        lab = bench.lab
        self.members = lab.namespace('m')
        lab.veth(self.amphora, 'mb0', self.members, 'eth0')
        netlab.add_address(self.amphora, 'mb0', f'{AMPHORA_MEMBER_SIDE}/24')
        for address in MEMBERS:
            netlab.add_address(self.members, 'eth0', f'{address}/24')
        netlab.add_route(self.client, MEMBER_SUBNET, _common.VIP)
        netlab.add_route(self.members, 'default', AMPHORA_MEMBER_SIDE)
        netlab.run(self.amphora,
                   ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
        self.receivers = [
            bench.popen(self.members, ['socat', '-u',
                                       f'UDP4-RECV:{PORT},bind={address}',
                                       'OPEN:/dev/null'])
            for address in MEMBERS]
        for proc in self.receivers:
            _common.wait_for_port(self.members, PORT, protocol='udp',
                                  proc=proc)
        self.engine = None

    def start_engine(self):
        # Imported here: the direct figures need no agent code.
        from amphora_agent.l4 import engine
        from amphora_agent.l4 import model
        self.engine = engine.L4Engine(
            namespace=self.amphora,
            state_file=os.path.join(self.bench.workdir, 'l4-state.json'))
        self.engine.start()
        self.engine.apply(model.parse_document(l4_document()))

    def stop_engine(self):
        if self.engine is not None:
            self.engine.delete(LOADBALANCER_ID)
            self.engine.stop()
            self.engine = None

    def delivered(self):
        # One namespace holds both members: its UDP counters see both.
        return _common.udp_delivered(self.receivers[0].pid)[0]

    def send(self, destinations, seconds, flows):
        """Datagrams per second received; sender i aims at destination i.

        Direct senders take the members in turn, as the VIP's round robin
        does, so both configurations feed the same receiving sockets.
        """
        senders = [self.bench.popen(self.client, [
            'socat', '-u', '-b', '64', 'OPEN:/dev/zero',
            f'UDP4-SENDTO:{destinations[i % len(destinations)]}:{PORT}'])
            for i in range(flows)]
        before = self.delivered()
        start = time.monotonic()
        time.sleep(seconds)
        after = self.delivered()
        elapsed = time.monotonic() - start
        for proc in senders:
            self.bench.stop(proc)
        return (after - before) / elapsed


def main(argv=None):
    parser = _common.argument_parser(
        __doc__, 'tiny durations, for the smoke test')
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--seconds', type=float)
    parser.add_argument('--flows', type=int, default=2)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 7)
    seconds = args.seconds or (0.5 if args.quick else 3)

    with _common.Bench('ul') as bench:
        topology = Topology(bench)
        topology.start_engine()
        try:
            if not args.quick:
                # Unrecorded: neighbour resolution and cold caches.
                topology.send([_common.VIP], 1, args.flows)
                topology.send(MEMBERS, 1, args.flows)
            vip, direct = [], []
            for round_no in range(rounds):
                pair = [(vip, [_common.VIP]), (direct, MEMBERS)]
                if round_no % 2:
                    pair.reverse()
                for figures, destination in pair:
                    figures.append(topology.send(destination, seconds,
                                                 args.flows))
            counters = topology.engine.counters()
            shares = {member: values['flows'] for member, values
                      in counters['members'].items()}
        finally:
            topology.stop_engine()
        _common.print_note(f'{rounds} rounds of {seconds} s, {args.flows} '
                           'sender(s) of 64-byte datagrams')
        _common.print_note(f'flows per member through the VIP: {shares}')
        _common.print_value('udp_pps_direct', _common.median(direct),
                            'pkt/s')
        _common.print_value('udp_pps_vip', _common.median(vip), 'pkt/s')
        _common.print_ratio('udp_pps_vip_over_direct', _common.median(
            [v / d for v, d in zip(vip, direct)]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
