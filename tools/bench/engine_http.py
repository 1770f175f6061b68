#!/usr/bin/env python3
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
"""HTTP through the VIP: the amphora firewall's cost to a load balancer.

Each configuration gets a client namespace and an amphora namespace joined
by a veth (the VF). The amphora runs haproxy with the configuration the
worker renders (upstream Octavia's templater, an HTTP listener on the VIP
with a pool of one member); the member is a second haproxy answering 200
itself, on another address of the client's side, so it sits on the VIP
subnet and its replies cross the VF as well (the case a stateless firewall
has to get right). wrk sends the requests.

  none      no ruleset (the reference every ratio is taken against)
  ours      the engine with a request of N entries, the client's /32 among
            the HTTP listener's CIDRs, the member among the members
  upstream  the upstream-style ruleset of the same request (input hook,
            conntrack for the replies)

Two loads, each configuration measured in turn and the order rotated from
round to round; medians of the per-round ratios to ``none`` are printed:

  keepalive  requests on persistent connections (wrk's default)
  close      one connection per request (``Connection: close``), where
             every request pays for a handshake through the firewall

    tools/bench/engine_http.py [--quick] [--entries 10000] [--rounds 5]
"""

import re
import sys

import _common

from sriov_octavia.engine import haproxy_config
from sriov_octavia_testbed import netlab

LISTENER_PORT = 80
MEMBER_PORT = 8080
CONNECTIONS = 32
# Requests per second with one connection per request, against none.
CLOSE_TARGET = 0.97
LOADBALANCER_ID = '5e1b7f9a-0000-4000-8000-00000000be01'
LISTENER_ID = '5e1b7f9a-0000-4000-8000-00000000be02'
POOL_ID = '5e1b7f9a-0000-4000-8000-00000000be03'
MEMBER_ID = '5e1b7f9a-0000-4000-8000-00000000be04'
AMPHORA = {'id': '5e1b7f9a-0000-4000-8000-00000000be05',
           'role': 'STANDALONE'}
# What a member serves: a 200 haproxy writes itself, so the member is
# never the bottleneck being measured.
MEMBER_CONFIG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend member
    bind {address}:{port}
    http-request return status 200 content-type text/plain string ok
"""
_UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1e3}
_LATENCY = re.compile(r'^\s*99%\s+([\d.]+)(us|ms|s)\s*$', re.MULTILINE)
_RATE = re.compile(r'^Requests/sec:\s+([\d.]+)', re.MULTILINE)


def loadbalancer_state():
    """The provider-dict state the worker would render for this LB."""
    member = {'member_id': MEMBER_ID, 'pool_id': POOL_ID,
              'address': _common.MEMBER, 'protocol_port': MEMBER_PORT,
              'weight': 1}
    return {
        'loadbalancer_id': LOADBALANCER_ID, 'project_id': 'bench',
        'vip_address': _common.VIP,
        'listeners': [{'listener_id': LISTENER_ID, 'protocol': 'HTTP',
                       'protocol_port': LISTENER_PORT,
                       'default_pool_id': POOL_ID,
                       'connection_limit': 4096}],
        'pools': [{'pool_id': POOL_ID, 'protocol': 'HTTP',
                   'lb_algorithm': 'ROUND_ROBIN', 'listener_id': LISTENER_ID,
                   'members': [member]}],
    }


def firewall_request(entries, seed):
    """``entries`` CIDRs over the listeners; the client may reach port 80."""
    request = _common.make_request(entries, seed)
    for listener in request['listeners']:
        if (listener['protocol'], listener['port']) == ('TCP',
                                                        LISTENER_PORT):
            listener['allowed_cidrs'].append(f'{_common.CLIENT}/32')
    return request


class Config:
    def __init__(self, bench, name, request):
        self.name = name
        self.client, self.amphora = bench.pair(name[:2])
        self.results = {'keepalive': [], 'close': []}
        # The member on the VIP subnet, on the client's side of the VF.
        netlab.add_address(self.client, _common.CLIENT_IFNAME,
                           f'{_common.MEMBER}/{_common.PREFIXLEN}')
        if name == 'ours':
            bench.firewall('ours', self.amphora).apply(request)
        elif name == 'upstream':
            bench.firewall('upstream', self.amphora).apply(request)
        self._haproxy(bench, self.client, 'member', MEMBER_CONFIG.format(
            address=_common.MEMBER, port=MEMBER_PORT), MEMBER_PORT)
        info = {'haproxy_version': _haproxy_version(),
                'haproxy_base_path': bench.workdir}
        self._haproxy(bench, self.amphora, f'lb-{name}',
                      haproxy_config.render(loadbalancer_state(), AMPHORA,
                                            info), LISTENER_PORT)

    @staticmethod
    def _haproxy(bench, namespace, name, text, port):
        path = f'{bench.workdir}/{name}.cfg'
        with open(path, 'w') as config:
            config.write(text)
        # -db: in the foreground, so the bench owns (and ends) the process.
        proc = bench.popen(namespace, ['haproxy', '-db', '-f', path])
        _common.wait_for_port(namespace, port, proc=proc)


def _haproxy_version():
    out = netlab.run(None, ['haproxy', '-v']).stdout
    return re.search(r'version (\d+\.\d+\.\d+)', out).group(1)


def wrk(config, seconds, close):
    argv = ['wrk', '-t', '1', '-c', str(CONNECTIONS), '-d', f'{seconds}s',
            '--latency', f'http://{_common.VIP}:{LISTENER_PORT}/']
    if close:
        argv[1:1] = ['-H', 'Connection: close']
    out = netlab.run(config.client, argv, timeout=seconds + 60).stdout
    rate, latency = _RATE.search(out), _LATENCY.search(out)
    if not rate or not latency or 'Non-2xx' in out:
        raise RuntimeError(f'wrk in {config.name}: {out[-500:]}')
    return float(rate.group(1)), (float(latency.group(1)) *
                                  _UNITS[latency.group(2)])


def main(argv=None):
    parser = _common.argument_parser(
        __doc__, 'few entries, short runs, for the smoke test')
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--seconds', type=int)
    args = parser.parse_args(argv)
    entries = args.entries or (500 if args.quick else 10000)
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (1 if args.quick else 4)

    request = firewall_request(entries, args.seed)
    with _common.Bench('eh') as bench:
        configs = [Config(bench, name, request)
                   for name in ('none', 'ours', 'upstream')]
        if not args.quick:
            for config in configs:
                wrk(config, 1, close=False)
        for round_no in range(rounds):
            shift = round_no % len(configs)
            order = configs[shift:] + configs[:shift]
            for load in ('keepalive', 'close'):
                for config in order:
                    config.results[load].append(
                        wrk(config, seconds, close=(load == 'close')))
        _common.print_note(f'{entries} firewall entries, {rounds} rounds of '
                           f'{seconds} s, {CONNECTIONS} connections')
        reference = configs[0]
        for load in ('keepalive', 'close'):
            for config in configs:
                runs = config.results[load]
                _common.print_value(f'http_{load}_rps_{config.name}',
                                    _common.median([r for r, _ in runs]),
                                    'req/s')
                _common.print_value(f'http_{load}_p99_ms_{config.name}',
                                    _common.median([p for _, p in runs]),
                                    'ms')
            for config in configs[1:]:
                pairs = list(zip(config.results[load],
                                 reference.results[load]))
                ratio = _common.median([mine[0] / ref[0]
                                        for mine, ref in pairs])
                if config.name == 'ours' and load == 'close':
                    _common.print_ratio(
                        f'http_{load}_rps_{config.name}_over_none', ratio,
                        f'target >= {CLOSE_TARGET}', ratio >= CLOSE_TARGET)
                else:
                    _common.print_ratio(
                        f'http_{load}_rps_{config.name}_over_none', ratio)
                _common.print_ratio(
                    f'http_{load}_p99_{config.name}_over_none',
                    _common.median([mine[1] / ref[1]
                                    for mine, ref in pairs]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
