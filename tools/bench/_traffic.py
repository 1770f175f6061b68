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
"""Small traffic endpoints the benchmarks start inside namespaces.

    _traffic.py udp-send ADDRESS PORT --rate PPS --max-seconds S
    _traffic.py udp-recv ADDRESS PORT --max-seconds S
    _traffic.py tcp-server ADDRESS PORT --max-seconds S
    _traffic.py tcp-connect ADDRESS PORT --seconds S

Each runs until SIGTERM or its time bound and then prints one JSON line.
"""

import argparse
import json
import signal
import socket
import struct
import sys
import time

_SEQ = struct.Struct('!Q')
# Not exported by Python's socket module; the Linux value.
_SO_RCVBUFFORCE = 33
PAYLOAD_BYTES = 64


class _Stop:
    requested = False


def _on_term(signum, frame):
    _Stop.requested = True


def udp_send(args):
    """Send sequence-numbered 64-byte datagrams at ``args.rate`` per second.

    The pace follows the clock, so a stall of the sender is caught up.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.address, args.port))
    padding = b'\0' * (PAYLOAD_BYTES - _SEQ.size)
    sent = errors = 0
    start = time.monotonic()
    deadline = start + args.max_seconds
    while not _Stop.requested:
        now = time.monotonic()
        if now >= deadline:
            break
        due = min(int((now - start) * args.rate) - sent, 2000)
        for _ in range(due):
            try:
                sock.send(_SEQ.pack(sent) + padding)
                sent += 1
            except OSError:
                errors += 1
        time.sleep(0.0005)
    elapsed = time.monotonic() - start
    return {'sent': sent, 'send_errors': errors, 'seconds': elapsed,
            'rate': sent / elapsed if elapsed else 0.0}


class _SequenceCounter:
    def __init__(self):
        self.received = 0
        self.expected = 0
        self.longest_gap = 0

    def count(self, seq):
        self.received += 1
        if seq >= self.expected:
            self.longest_gap = max(self.longest_gap, seq - self.expected)
            self.expected = seq + 1


def udp_recv(args):
    """Counts datagrams and the holes in their sequence numbers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Root may exceed rmem_max: a stall of the receiver must not turn into
    # losses that would be blamed on the firewall.
    sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 16 << 20)
    sock.bind((args.address, args.port))
    sock.settimeout(0.2)
    counter = _SequenceCounter()
    deadline = time.monotonic() + args.max_seconds
    buf = bytearray(2048)
    draining = False
    while True:
        if not draining and (_Stop.requested
                             or time.monotonic() >= deadline):
            # Take what was queued before the stop, then report.
            draining = True
            sock.setblocking(False)
        try:
            size = sock.recv_into(buf)
        except socket.timeout:
            continue
        except BlockingIOError:
            break
        if size >= _SEQ.size:
            counter.count(_SEQ.unpack_from(buf)[0])
    return {'received': counter.received,
            'highest_seq': counter.expected - 1,
            'missing_below_highest': counter.expected - counter.received,
            'longest_gap': counter.longest_gap}


def tcp_server(args):
    """Accept and close at once.

    The server side of a new-connection rate test, with as little
    user-space work as possible.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.address, args.port))
    sock.listen(4096)
    sock.settimeout(0.2)
    accepted = 0
    deadline = time.monotonic() + args.max_seconds
    while not _Stop.requested and time.monotonic() < deadline:
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        # The server closes first, so TIME_WAIT stays on this side and the
        # client can reuse its ports at once.
        conn.close()
        accepted += 1
    return {'accepted': accepted}


def tcp_connect(args):
    """Connect, wait for the server's FIN, close; as fast as possible."""
    addr = (args.address, args.port)
    count = failures = 0
    start = time.monotonic()
    deadline = start + args.seconds
    while not _Stop.requested and time.monotonic() < deadline:
        for _ in range(50):
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conn.settimeout(2)
            try:
                conn.connect(addr)
                conn.recv(1)
                count += 1
            except OSError:
                failures += 1
            finally:
                conn.close()
        if failures > 100:
            break
    elapsed = time.monotonic() - start
    return {'connections': count, 'failures': failures, 'seconds': elapsed,
            'rate': count / elapsed if elapsed else 0.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    for name, func in (('udp-send', udp_send), ('udp-recv', udp_recv),
                       ('tcp-server', tcp_server),
                       ('tcp-connect', tcp_connect)):
        cmd = sub.add_parser(name)
        cmd.set_defaults(func=func)
        cmd.add_argument('address')
        cmd.add_argument('port', type=int)
        if name == 'tcp-connect':
            cmd.add_argument('--seconds', type=float, required=True)
        else:
            cmd.add_argument('--max-seconds', type=float, default=600)
        if name == 'udp-send':
            cmd.add_argument('--rate', type=float, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_term)
    print(json.dumps(args.func(args)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
