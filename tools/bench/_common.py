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
"""What the firewall benchmarks share.

Every benchmark compares the amphora agent's firewall engine with an
upstream-style baseline measured in the same run: a text rules file with one
rule per (cidr, protocol, port), a conntrack verdict map on an input hook,
loaded with ``nft -o -f`` as an atomic table replacement. That is the shape
upstream Octavia's amphora writes; the generator here is written from the
description, not from upstream's code.

Results are printed as lines the smoke test and the documentation rely on::

    value <name> = <number> <unit>
    ratio <name> = <number>  (<target>: met|MISSED)
"""

import argparse
import collections
import contextlib
import ipaddress
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

_TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if _TOP not in sys.path:
    # The benchmarks run as plain scripts from a checkout.
    sys.path.append(_TOP)

from pyroute2 import netns as pyroute2_netns  # noqa: E402

from sriov_octavia_testbed import netlab  # noqa: E402

TRAFFIC_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              '_traffic.py')

VIP = '203.0.113.10'
CLIENT = '203.0.113.100'
VRRP_PEER = '203.0.113.11'
MEMBER = '203.0.113.50'
PREFIXLEN = 24
CLIENT_IFNAME = 'eth0'
VF_IFNAME = 'vf0'

# Ports the benchmark flows use; the client's address is allowed on exactly
# these listeners, somewhere among the random CIDRs. iperf3 runs its control
# connection over TCP on the same port as its UDP data.
UDP_FLOW_PORT = 5201
TCP_FLOW_PORT = 5301
FLOW_LISTENERS = (('UDP', UDP_FLOW_PORT), ('TCP', UDP_FLOW_PORT),
                  ('TCP', TCP_FLOW_PORT))
OTHER_LISTENERS = (('TCP', 80), ('TCP', 443), ('UDP', 53), ('TCP', 8080),
                   ('UDP', 5060), ('TCP', 8443), ('UDP', 1812))

UPSTREAM_TABLE = 'upstream_style'

UDP_BLAST_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'udp_blast.c')


# --- command line -------------------------------------------------------

def argument_parser(doc, quick_help):
    """A parser with the options the firewall benchmarks share.

    ``--quick`` (tiny sizes for the smoke test), ``--entries`` (the rule set's
    size; each benchmark has its own default) and ``--seed``.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help=quick_help)
    parser.add_argument('--entries', type=int)
    parser.add_argument('--seed', type=int, default=1)
    return parser


# --- result lines ---------------------------------------------------------

def print_value(name, value, unit):
    number = str(value) if isinstance(value, int) else f'{value:.6g}'
    print(f'value {name} = {number} {unit}', flush=True)


def print_ratio(name, value, target=None, met=None):
    line = f'ratio {name} = {value:.4g}'
    if target:
        line += f'  ({target}: {"met" if met else "MISSED"})'
    print(line, flush=True)


def print_note(text):
    print(f'# {text}', flush=True)


def median(values):
    return statistics.median(values)


# --- rule sets ------------------------------------------------------------

def _random_ipv4_blocks(rng, count):
    """``count`` distinct /24 blocks, none of them the test link's."""
    reserved = {int(ipaddress.ip_address(VIP)) >> 8}
    blocks = set()
    while len(blocks) < count:
        # 1.0.0.0 up to 223.255.255.0: unicast space outside 0/8.
        block = rng.randrange(1 << 16, 224 << 16)
        if block >> 16 == 127 or block in reserved:
            continue
        blocks.add(block)
    return list(blocks)


def _ipv4_cidr_in_block(rng, block):
    prefixlen = rng.choice((24, 24, 25, 26, 28, 30, 32))
    offset = rng.randrange(0, 256) & ~((1 << (32 - prefixlen)) - 1) & 0xff
    address = ipaddress.IPv4Address((block << 8) | offset)
    return f'{address}/{prefixlen}'


def _random_ipv6_cidrs(rng, count):
    cidrs = set()
    base = int(ipaddress.IPv6Address('2001:db8::'))
    while len(cidrs) < count:
        # Distinct /64s (and a few /56s) inside the documentation /32.
        network = base | (rng.getrandbits(24) << 72)
        prefixlen = rng.choice((64, 64, 64, 56))
        network &= ~((1 << (128 - prefixlen)) - 1)
        cidrs.add(f'{ipaddress.IPv6Address(network)}/{prefixlen}')
    return list(cidrs)


def listener_specs(count=10):
    specs = list(FLOW_LISTENERS + OTHER_LISTENERS)
    if count > len(specs):
        raise ValueError(f'at most {len(specs)} listeners')
    return specs[:count]


def make_request(entries, seed, listeners=10, ipv6_share=0.1,
                 overlap_share=0.03):
    """A security-group request with ``entries`` (cidr, proto, port) pairs.

    The entries are spread evenly over the listeners. Each listener's list
    holds random non-overlapping IPv4 prefixes, some IPv6 prefixes, a few
    /16 supernets of its own prefixes (overlapping CIDRs are legal in the
    API) and, on the flow listeners, the benchmark client's /32.
    """
    rng = random.Random(seed)
    specs = listener_specs(listeners)
    per_listener = [entries // len(specs)] * len(specs)
    for i in range(entries % len(specs)):
        per_listener[i] += 1
    result = []
    for (protocol, port), count in zip(specs, per_listener):
        cidrs = []
        if (protocol, port) in FLOW_LISTENERS and count:
            cidrs.append(f'{CLIENT}/32')
        remaining = count - len(cidrs)
        n_v6 = int(remaining * ipv6_share)
        n_overlap = int(remaining * overlap_share)
        n_v4 = remaining - n_v6 - n_overlap
        blocks = _random_ipv4_blocks(rng, n_v4)
        cidrs.extend(_ipv4_cidr_in_block(rng, b) for b in blocks)
        supernets = set()
        while len(supernets) < n_overlap:
            block = rng.choice(blocks) if blocks else rng.randrange(
                1 << 16, 224 << 16)
            supernets.add(
                f'{ipaddress.IPv4Address((block >> 8) << 16)}/16')
            if len(supernets) >= len(blocks):
                break
        cidrs.extend(supernets)
        cidrs.extend(_random_ipv6_cidrs(rng, n_v6 + n_overlap
                                        - len(supernets)))
        rng.shuffle(cidrs)
        result.append({'protocol': protocol, 'port': port,
                       'allowed_cidrs': cidrs})
    return {
        'vip_interfaces': [VIP],
        'listeners': result,
        'vrrp_peers': [VRRP_PEER],
        'members': [{'address': MEMBER, 'protocol': 'TCP', 'port': 8080}],
    }


# --- the two firewalls under comparison -----------------------------------

# Wall-clock seconds preparing and applying, and the CPU seconds both took.
Timing = collections.namedtuple('Timing', 'prepare apply cpu')


def cpu_seconds():
    """User and system CPU of this process and its waited-for children.

    The kernel's work on a netlink batch is system time of the process that
    sent it (the agent, or nft), so this covers both sides of an apply and,
    unlike wall time, hardly depends on what else runs on the machine.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime
            + children.ru_utime + children.ru_stime)


class OurFirewall:
    """The amphora agent's engine (amphora_agent.firewall)."""

    label = 'ours'

    def __init__(self, namespace, workdir):
        # Imported here so that the upstream-style baseline and the
        # no-firewall numbers can be measured without the engine.
        from amphora_agent.firewall import engine
        from amphora_agent.firewall import model
        self._model = model
        self._fw = engine.Firewall(
            namespace=namespace,
            state_file=os.path.join(workdir, f'{namespace}-state.json'),
            vf_link_kinds=('veth',))
        self._fw.start()

    def apply(self, request):
        self._fw.apply(self._model.parse_security_group(request))

    def timed_apply(self, request):
        """Seconds for parsing the request, for applying it, and CPU."""
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        sg = self._model.parse_security_group(request)
        t1 = time.perf_counter()
        self._fw.apply(sg)
        t2 = time.perf_counter()
        return Timing(t1 - t0, t2 - t1, cpu_seconds() - cpu0)

    def close(self):
        self._fw.stop()


def _without_covered(cidrs):
    """``cidrs`` in their order, less those inside another one of them."""
    networks = [ipaddress.ip_network(c) for c in cidrs]
    by_length = {}
    for net in networks:
        by_length.setdefault((net.version, net.prefixlen), set()).add(
            int(net.network_address) >> (net.max_prefixlen - net.prefixlen))
    kept = []
    seen = set()
    for cidr, net in zip(cidrs, networks):
        address = int(net.network_address)
        covered = any(
            (address >> (net.max_prefixlen - length)) in starts
            for (version, length), starts in by_length.items()
            if version == net.version and length < net.prefixlen)
        if not covered and net not in seen:
            seen.add(net)
            kept.append(cidr)
    return kept


def upstream_rules(request, drop_covered=True):
    """The request as upstream's flat rule list: one (cidr, proto, port).

    ``nft -o`` merges consecutive rules into one anonymous interval set and
    fails on overlapping prefixes ("File exists"), so by default prefixes
    covered by another one of the same listener are left out: the baseline
    then does slightly less work than the engine, never more.
    """
    rules = []
    for listener in request['listeners']:
        cidrs = listener['allowed_cidrs']
        if drop_covered:
            cidrs = _without_covered(cidrs)
        for cidr in cidrs or [None]:
            rules.append((cidr, listener['protocol'], listener['port']))
    for peer in request.get('vrrp_peers', ()):
        rules.append((peer, 'VRRP', None))
    return rules


def _upstream_rule_line(cidr, protocol, port):
    match = ''
    if cidr:
        family = 'ip6' if ':' in cidr else 'ip'
        match = f'{family} saddr {cidr} '
    if protocol == 'VRRP':
        return f'{match}ip protocol 112 accept'
    return f'{match}{protocol.lower()} dport {port} accept'


def upstream_ruleset_text(rules, vf_ifname=VF_IFNAME, table=UPSTREAM_TABLE):
    """An nft script that replaces ``table`` in one transaction."""
    lines = [
        # Declaring the table first makes the delete valid on first load.
        f'table inet {table} {{}}',
        f'delete table inet {table}',
        f'table inet {table} {{',
        '  chain input {',
        '    type filter hook input priority filter; policy drop;',
        '    ct state vmap { established : accept, related : accept, '
        'invalid : drop }',
        '    iif lo accept',
        '    ip saddr 127.0.0.0/8 drop',
        '    ip6 saddr ::1 drop',
        '    icmp type destination-unreachable accept',
        '    icmpv6 type { nd-neighbor-solicit, nd-router-advert, '
        'nd-neighbor-advert, packet-too-big, destination-unreachable } '
        'accept',
        '    udp sport 67 udp dport 68 accept',
        '    udp sport 547 udp dport 546 accept',
        f'    iifname "{vf_ifname}" goto vip',
        '  }',
        '  chain vip {',
    ]
    lines.extend('    ' + _upstream_rule_line(*rule) for rule in rules)
    lines.extend(['  }', '}', ''])
    return '\n'.join(lines)


def _enter(namespace):
    def preexec():
        pyroute2_netns.setns(namespace)
    return preexec


def run_nft_file(namespace, path, optimize=True):
    """Run ``nft [-o] -f path`` inside the namespace.

    The namespace is entered with setns, as an agent does, so no
    ``ip netns exec`` start-up is measured.
    """
    argv = ['nft'] + (['-o'] if optimize else []) + ['-f', path]
    done = subprocess.run(argv, preexec_fn=_enter(namespace),
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        # nft lists every merged rule: the cause is at the end.
        raise RuntimeError(f'nft -f {path} failed: '
                           f'{done.stderr.strip()[-300:]}')


class UpstreamStyleFirewall:
    """Text rules file + ``nft -o -f`` atomic replace, as upstream does."""

    label = 'upstream'

    def __init__(self, namespace, workdir, drop_covered=True):
        self._namespace = namespace
        self._path = os.path.join(workdir, f'{namespace}-upstream.nft')
        self._drop_covered = drop_covered

    def apply(self, request):
        text = upstream_ruleset_text(
            upstream_rules(request, self._drop_covered))
        with open(self._path, 'w') as rules_file:
            rules_file.write(text)
        run_nft_file(self._namespace, self._path)

    def timed_apply(self, request):
        """Seconds for writing the rules file, for loading it, and CPU.

        Upstream receives the flat rule list ready-made, and leaving out the
        covered prefixes is the benchmark's doing: neither is timed.
        """
        rules = upstream_rules(request, self._drop_covered)
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        text = upstream_ruleset_text(rules)
        with open(self._path, 'w') as rules_file:
            rules_file.write(text)
        t1 = time.perf_counter()
        run_nft_file(self._namespace, self._path)
        t2 = time.perf_counter()
        return Timing(t1 - t0, t2 - t1, cpu_seconds() - cpu0)

    def close(self):
        netlab.run(self._namespace,
                   ['nft', 'delete', 'table', 'inet', UPSTREAM_TABLE],
                   check=False)


def linear_ruleset_text(count, table='linear'):
    """``count`` unoptimised rules on an input hook, none for the client.

    The chain's policy accepts the benchmark client after every rule missed:
    the cost each packet pays when classification is a linear walk. The
    data-path benchmark loads it to show that it can see a firewall's cost.
    """
    rng = random.Random(7)
    lines = [f'table inet {table} {{', '  chain input {',
             '    type filter hook input priority filter; policy accept;']
    for block in _random_ipv4_blocks(rng, count):
        lines.append(f'    ip saddr {ipaddress.IPv4Address(block << 8)}/24 '
                     'accept')
    lines.extend(['  }', '}', ''])
    return '\n'.join(lines)


# --- namespaces, processes, clean-up --------------------------------------

class Bench:
    """Owns a run's namespaces, processes and files.

    ``close()`` (also reached on SIGTERM) removes exactly those.
    """

    def __init__(self, tag):
        # The PID keeps concurrent runs (a smoke test beside a full run)
        # apart; "tbn-" is this area's namespace prefix.
        self.lab = netlab.Lab(f'tbn-{tag}{os.getpid() % 100000}')
        print_note(f'namespaces {self.lab.prefix}-*')
        self.workdir = tempfile.mkdtemp(prefix='tbn-')
        self._processes = []
        self._firewalls = []
        signal.signal(signal.SIGTERM, _exit_on_signal)

    def pair(self, suffix):
        """Client namespace <-> amphora namespace over a veth (the VF).

        Returns (client namespace, amphora namespace).
        """
        client = self.lab.namespace(f'c{suffix}')
        amphora = self.lab.namespace(f'a{suffix}')
        self.lab.veth(client, CLIENT_IFNAME, amphora, VF_IFNAME)
        netlab.add_address(client, CLIENT_IFNAME, f'{CLIENT}/{PREFIXLEN}')
        netlab.add_address(amphora, VF_IFNAME, f'{VIP}/{PREFIXLEN}')
        return client, amphora

    def firewall(self, kind, namespace, **kwargs):
        cls = {'ours': OurFirewall, 'upstream': UpstreamStyleFirewall}[kind]
        fw = cls(namespace, self.workdir, **kwargs)
        self._firewalls.append(fw)
        return fw

    def popen(self, namespace, argv, **kwargs):
        kwargs.setdefault('stdout', subprocess.PIPE)
        kwargs.setdefault('stderr', subprocess.PIPE)
        kwargs.setdefault('text', True)
        proc = netlab.popen(namespace, argv, **kwargs)
        self._processes.append(proc)
        return proc

    def traffic(self, namespace, *args, **kwargs):
        """Start tools/bench/_traffic.py inside ``namespace``."""
        return self.popen(namespace,
                          [sys.executable, TRAFFIC_SCRIPT] + list(args),
                          **kwargs)

    def stop(self, proc, timeout=30):
        """Stop ``proc`` (SIGTERM); its standard output and error."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=timeout)
        self._processes.remove(proc)
        return out, err

    def finish(self, proc, timeout=30):
        """Stop ``proc`` (SIGTERM) and return its parsed JSON report."""
        out, err = self.stop(proc, timeout)
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f'{proc.args}: no report; stderr: {err}')

    def close(self):
        for proc in self._processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self._processes = []
        for fw in self._firewalls:
            try:
                fw.close()
            except Exception as exc:  # keep cleaning up whatever happened
                print_note(f'closing {fw.label}: {exc}')
        self._firewalls = []
        self.lab.close()
        subprocess.run(['rm', '-rf', self.workdir], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_OWNER_PID = os.getpid()


def _exit_on_signal(signum, frame):
    if os.getpid() != _OWNER_PID:
        # A child forked by a library (pyroute2 does so for namespaces)
        # must die as by default: unwinding the inherited stack would run
        # the parent's clean-up and remove its namespaces.
        os._exit(128 + signum)
    raise SystemExit(128 + signum)


def udp_delivered(pid):
    """Datagrams past the firewall into the UDP layer of ``pid``'s netns.

    Returns (delivered plus dropped for a full socket buffer, the latter
    alone): the firewall is not to blame for a full socket buffer.
    """
    with open(f'/proc/{pid}/net/snmp') as snmp:
        rows = [line.split() for line in snmp if line.startswith('Udp:')]
    fields = dict(zip(rows[0][1:], (int(v) for v in rows[1][1:])))
    return fields['InDatagrams'] + fields['RcvbufErrors'], \
        fields['RcvbufErrors']


def build_udp_blast(workdir):
    """Compile udp_blast.c (the one-way UDP load) into ``workdir``.

    Returns the binary's path. Call it once per run.
    """
    if shutil.which('cc') is None:
        raise RuntimeError('no C compiler: cc is not on PATH '
                           '(tools/install.sh installs gcc)')
    binary = os.path.join(workdir, 'udp_blast')
    done = subprocess.run(['cc', '-O2', '-Wall', '-o', binary,
                           UDP_BLAST_SOURCE],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f'cc {UDP_BLAST_SOURCE} failed: '
                           f'{done.stderr.strip()[-500:]}')
    return binary


def wait_for_port(namespace, port, protocol='tcp', proc=None, timeout=10):
    """Wait until something listens on ``port``, or ``proc`` has died."""
    flag = '-lnt' if protocol == 'tcp' else '-lnu'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'{proc.args} exited: '
                               f'{proc.stderr.read()[-500:]}')
        out = netlab.run(namespace, ['ss', '-H', flag, f'sport = :{port}'],
                         check=False).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f'nothing listens on {protocol}/{port} in '
                       f'{namespace}')


# --- services the worker benchmarks start ---------------------------------

@contextlib.contextmanager
def redis_server(directory, port):
    """A private redis-server on 127.0.0.1:``port``, once it listens."""
    process = subprocess.Popen(
        [shutil.which('redis-server') or '/usr/bin/redis-server',
         '--port', str(port), '--bind', '127.0.0.1', '--save', '',
         '--appendonly', 'no', '--dir', directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f'redis-server did not listen on {port}')
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(('127.0.0.1', port)) == 0
