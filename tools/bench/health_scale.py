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
"""Health checks of many amphorae by 1, 2 and 3 controller processes.

Each health process runs the worker's real health round
(sriov_octavia.worker.health.HealthChecker) in a real tooz group on a real
redis-server, and asks real agent clients over mutual TLS. The amphorae
are light stand-ins: one process listening on 127.20.x.y:9443 for each of
them, answering haproxy's status of one listener (a killed amphora's
listener is closed: its agent is refused). Nova and Octavia's database are
stand-ins in each health process; a failover posted is recorded, not run::

    health_scale.py [--amphorae 2000] [--interval 5] [--timeout 15]
                    [--processes 1,2,3] [--quick]

For N processes it prints the CPU each spends per amphora check and per
round, the ratio of a process's work per round to that of one process
alone (target 1/N), and the time from killing one amphora to its failover
being posted (target: heartbeat_timeout plus one interval). It also prints
what one check costs the controller in each candidate design: a pull over
a new mutual-TLS connection, a pull over a connection kept from the last
round (this provider's), and a push, an HMAC-signed heartbeat received
over UDP and unwrapped with Octavia's own code (upstream's amphora
driver).
"""

import argparse
import collections
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid

_HERE = os.path.dirname(os.path.abspath(__file__))
_TOP = os.path.dirname(os.path.dirname(_HERE))
if _TOP not in sys.path:
    # The benchmarks run as plain scripts from a checkout.
    sys.path.append(_TOP)

import _common  # noqa: E402

REDIS_PORT = 59386
AGENT_PORT = 9443
HEARTBEAT_KEY = 'insecure-bench-key'


def address(index):
    return f'127.20.{index // 250}.{index % 250 + 1}'


def loadbalancer_id(index):
    return str(uuid.UUID(int=index + 1))


def listener_id(index):
    return str(uuid.UUID(int=10 ** 6 + index))


def status_view(index):
    return {'frontends': {listener_id(index): {
        'status': 'OPEN', 'scur': 1, 'stot': 10, 'bin': 100, 'bout': 200,
        'ereq': 0}}, 'backends': {}}


# --- the stand-in agents -------------------------------------------------

def _answer(tls_context, connection, index, open_connections):
    """Answer requests on one connection until the client closes it."""
    body = json.dumps(status_view(index)).encode()
    answer = (b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    tls = None
    try:
        with tls_context.wrap_socket(connection, server_side=True) as tls:
            open_connections[index].add(tls)
            tls.settimeout(120)
            pending = b''
            while True:
                while b'\r\n\r\n' not in pending:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    pending += chunk
                pending = pending.split(b'\r\n\r\n', 1)[1]
                tls.sendall(answer)
    except (OSError, ssl.SSLError):
        pass
    finally:
        open_connections[index].discard(tls)


def stand_in_agents(directory, count):
    """Serve ``count`` agents until stdin closes.

    "kill N" closes amphora N's listener, "revive N" opens it again.
    """
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(os.path.join(directory, 'agent.pem'))
    tls_context.load_verify_locations(os.path.join(directory, 'ca.pem'))
    tls_context.verify_mode = ssl.CERT_REQUIRED
    selector = selectors.DefaultSelector()
    listeners = {}
    open_connections = collections.defaultdict(set)

    def listen(index):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address(index), AGENT_PORT))
        listener.listen(64)
        listener.setblocking(False)
        # epoll: registering from another thread is safe.
        selector.register(listener, selectors.EVENT_READ, index)
        listeners[index] = listener

    for index in range(count):
        listen(index)

    def commands():
        for line in sys.stdin:
            verb, index = line.split()
            if verb == 'kill':
                # As a dead agent's: refused, and its connections gone.
                listener = listeners.pop(int(index))
                selector.unregister(listener)
                listener.close()
                for connection in list(open_connections[int(index)]):
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
            elif verb == 'revive':
                listen(int(index))
        os._exit(0)

    threading.Thread(target=commands, daemon=True).start()
    print('ready', flush=True)
    while True:
        for key, _mask in selector.select():
            try:
                connection, _peer = key.fileobj.accept()
            except (BlockingIOError, OSError):
                continue
            connection.setblocking(True)
            threading.Thread(target=_answer, args=(
                tls_context, connection, key.data, open_connections),
                daemon=True).start()


# --- one health process --------------------------------------------------

def _servers(count):
    return [types.SimpleNamespace(
            id=f'server-{index}', status='ACTIVE',
            metadata={'sriov_octavia_lb': loadbalancer_id(index),
                      'sriov_octavia_role': 'STANDALONE',
                      'sriov_octavia_amphora_id': f'amphora-{index}'})
            for index in range(count)]


class _Compute(object):
    """Nova as the health round asks it: one listing, one lookup each."""

    def __init__(self, count):
        self._servers = _servers(count)

    def servers(self, details=True):
        return list(self._servers)

    def server_interfaces(self, server_id):
        index = int(server_id.split('-')[1])
        return [types.SimpleNamespace(
            net_id='mgmt', fixed_ips=[{'ip_address': address(index)}])]


def health_process(directory, name, count, rounds_file):
    from oslo_config import cfg
    from unittest import mock

    from sriov_octavia import conf as sriov_conf
    from sriov_octavia.worker import health
    from sriov_octavia.worker import membership

    conf = cfg.CONF
    conf([], project='octavia')
    for group, options in json.load(
            open(os.path.join(directory, 'conf.json'))).items():
        for option, value in options.items():
            conf.set_override(option, value, group=group)
    sriov_conf.CONF.set_override('amp_boot_network_list', ['mgmt'],
                                 group='controller_worker')
    loadbalancers = [{'id': loadbalancer_id(index),
                      'provisioning_status': 'ACTIVE',
                      'flavor': {'loadbalancer_topology': 'SINGLE'}}
                     for index in range(count)]
    connection = types.SimpleNamespace(compute=_Compute(count))
    records = open(rounds_file, 'a', buffering=1)

    def failover(lb_id, amphora, reason=None, conf=None):
        records.write(json.dumps({'member': name, 'failover': lb_id,
                                  'time': time.time()}) + '\n')
        return 'job'

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    group = membership.HealthGroup(name, conf)
    patches = [
        mock.patch('sriov_octavia.clients.connection',
                   return_value=connection),
        mock.patch.object(health.octavia_db, 'provider_load_balancers',
                          return_value=loadbalancers),
        mock.patch.object(health.octavia_db, 'load_balancer_object_ids',
                          return_value={}),
        mock.patch.object(health.listener_counters, 'report'),
        mock.patch.object(health.failover, 'start', side_effect=failover),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        checker = health.HealthChecker(conf, group, reporter=mock.Mock())
        interval = conf.sriov_worker.health_interval
        round_number = 0
        try:
            while not stop.is_set():
                started, cpu = time.monotonic(), time.process_time()
                owned = checker.check_round()
                records.write(json.dumps({
                    'member': name, 'round': round_number,
                    'owned': len(owned), 'time': time.time(),
                    'cpu': time.process_time() - cpu,
                    'wall': time.monotonic() - started}) + '\n')
                round_number += 1
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
        finally:
            group.leave()


# --- the run -------------------------------------------------------------

def _certificates(directory):
    from sriov_octavia_testbed import certs
    ca = certs.CertificateAuthority.create(os.path.join(directory, 'ca.pem'))
    ca.issue_server(os.path.join(directory, 'agent.pem'),
                    hostnames=['agent.bench'])
    ca.issue_client(os.path.join(directory, 'controller.pem'), 'controller')


def _read(rounds_file):
    with open(rounds_file) as records:
        return [json.loads(line) for line in records if line.strip()]


def _steady_rounds(rounds_file, names, count, wanted):
    """The last ``wanted`` rounds of each member once they split evenly."""
    by_member = {name: [record for record in _read(rounds_file)
                        if record.get('member') == name and 'round' in record]
                 for name in names}
    if any(len(records) < wanted + 1 for records in by_member.values()):
        return None
    last = {name: records[-wanted:] for name, records in by_member.items()}
    for position in range(wanted):
        if sum(records[position]['owned']
               for records in last.values()) != count:
            return None
    return last


def _wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f'no {what} after {timeout} s')
        time.sleep(0.5)


def measure(directory, processes, count, interval, timeout, victim):
    """Start ``processes`` health processes; their figures."""
    rounds_file = os.path.join(directory, f'rounds-{processes}.jsonl')
    open(rounds_file, 'w').close()
    names = [f'health-{processes}-{n}' for n in range(processes)]
    children = [subprocess.Popen(
        [sys.executable, __file__, '--health', directory, name,
         str(count), rounds_file]) for name in names]
    try:
        steady = _wait('steady rounds', lambda: _steady_rounds(
            rounds_file, names, count, 3), 40 * interval)
        cpu_per_check = [
            sum(record['cpu'] for record in records) /
            max(1, sum(record['owned'] for record in records))
            for records in steady.values()]
        cpu_per_round = [_common.median([record['cpu'] for record in records])
                         for records in steady.values()]
        victim.stdin.write(f'kill {processes}\n')
        victim.stdin.flush()
        killed = time.time()
        lb_id = loadbalancer_id(processes)
        posted = _wait('a failover of the killed amphora', lambda: [
            record for record in _read(rounds_file)
            if record.get('failover') == lb_id], timeout + 10 * interval)
        detection = posted[0]['time'] - killed
        time.sleep(interval)
        failovers = len([record for record in _read(rounds_file)
                         if record.get('failover') == lb_id])
        victim.stdin.write(f'revive {processes}\n')
        victim.stdin.flush()
        return {'cpu_per_check': max(cpu_per_check),
                'cpu_per_round': max(cpu_per_round),
                'detection': detection, 'failovers': failovers}
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(timeout=60)


def pull_check_cpu(directory, count, checks, keep_clients):
    """Controller CPU of one pull: a GET over mutual TLS.

    With ``keep_clients`` each amphora's client (and its connection) is
    kept from one check to the next, as the health loop keeps them;
    otherwise every check makes a new connection and handshake.
    """
    from sriov_octavia.amphora import client as agent_client
    clients = {}

    def client(index):
        if index not in clients or not keep_clients:
            clients[index] = agent_client.AgentClient(
                (address(index), AGENT_PORT),
                os.path.join(directory, 'controller.pem'),
                os.path.join(directory, 'ca.pem'), retries=0,
                server_name=False)
        return clients[index]

    amphorae = [count - 1 - n for n in range(min(50, count - 4))]
    for index in amphorae:
        client(index).get_loadbalancer_status(loadbalancer_id(index))
    cpu = time.process_time()
    for n in range(checks):
        index = amphorae[n % len(amphorae)]
        client(index).get_loadbalancer_status(loadbalancer_id(index))
        if not keep_clients:
            clients.pop(index).close()
    spent = (time.process_time() - cpu) / checks
    for agent in clients.values():
        agent.close()
    return spent


def push_check_cpu(heartbeats):
    """Controller CPU of one push: a UDP heartbeat received and verified."""
    from octavia.amphorae.backends.health_daemon import status_message
    message = {'id': str(uuid.uuid4()), 'seq': 1, 'ver': 3,
               'listeners': {listener_id(0): {
                   'status': 'OPEN', 'stats': {
                       'conns': 1, 'totconns': 10, 'ereq': 0, 'rx': 100,
                       'tx': 200}, 'pools': {}}}}
    envelope = status_message.wrap_envelope(message, HEARTBEAT_KEY)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(('127.0.0.1', 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = receiver.getsockname()
    cpu_receiving = 0.0
    for _n in range(heartbeats):
        sender.sendto(envelope, target)
        cpu = time.process_time()
        data, _peer = receiver.recvfrom(65535)
        status_message.unwrap_envelope(data, HEARTBEAT_KEY)
        cpu_receiving += time.process_time() - cpu
    sender.close()
    receiver.close()
    return cpu_receiving / heartbeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--amphorae', type=int, default=2000)
    parser.add_argument('--interval', type=float, default=5.0)
    parser.add_argument('--timeout', type=float, default=15.0)
    parser.add_argument('--processes', default='1,2,3')
    parser.add_argument('--quick', action='store_true',
                        help='100 amphorae, 1 and 2 processes, 2 s rounds')
    parser.add_argument('--stand-in', nargs=2, metavar=('DIR', 'COUNT'))
    parser.add_argument('--health', nargs=4,
                        metavar=('DIR', 'NAME', 'COUNT', 'RECORDS'))
    args = parser.parse_args()
    if args.stand_in:
        return stand_in_agents(args.stand_in[0], int(args.stand_in[1]))
    if args.health:
        directory, name, count, records = args.health
        return health_process(directory, name, int(count), records)
    if args.quick:
        args.amphorae, args.interval, args.timeout = 100, 2.0, 6.0
        args.processes = '1,2'
    counts = [int(n) for n in args.processes.split(',')]
    directory = tempfile.mkdtemp(prefix='bench-health-')
    try:
        _certificates(directory)
        with open(os.path.join(directory, 'conf.json'), 'w') as conf_file:
            json.dump({
                'task_flow': {'jobboard_backend_hosts': ['127.0.0.1'],
                              'jobboard_backend_port': REDIS_PORT},
                'sriov_worker': {'health_interval': args.interval,
                                 'jobboard_name': 'bench_health'},
                'health_manager': {'heartbeat_timeout': args.timeout},
                'sriov_amphora': {'server_name_check': 'none',
                                  'agent_port': AGENT_PORT},
                'haproxy_amphora': {
                    'client_cert': os.path.join(directory, 'controller.pem'),
                    'server_ca': os.path.join(directory, 'ca.pem')},
            }, conf_file)
        with _common.redis_server(directory, REDIS_PORT):
            agents = subprocess.Popen(
                [sys.executable, __file__, '--stand-in', directory,
                 str(args.amphorae)], stdin=subprocess.PIPE, text=True,
                stdout=subprocess.PIPE)
            try:
                assert agents.stdout.readline().strip() == 'ready'
                handshake = pull_check_cpu(directory, args.amphorae, 200,
                                           keep_clients=False)
                kept = pull_check_cpu(directory, args.amphorae, 200,
                                      keep_clients=True)
                push = push_check_cpu(2000)
                _common.print_value(
                    'controller_cpu_us_per_pull_check_new_connection',
                    handshake * 1e6, 'us')
                _common.print_value(
                    'controller_cpu_us_per_pull_check_kept_connection',
                    kept * 1e6, 'us')
                _common.print_value('controller_cpu_us_per_push_heartbeat',
                                    push * 1e6, 'us')
                _common.print_ratio('new_over_kept_connection_cpu_per_check',
                                    handshake / kept)
                _common.print_ratio('pull_over_push_cpu_per_check',
                                    kept / push)
                results = {}
                for processes in counts:
                    results[processes] = measure(
                        directory, processes, args.amphorae, args.interval,
                        args.timeout, agents)
                    found = results[processes]
                    _common.print_value(
                        f'cpu_ms_per_check_{processes}_processes',
                        found['cpu_per_check'] * 1e3, 'ms')
                    _common.print_value(
                        f'cpu_s_per_round_per_process_{processes}',
                        found['cpu_per_round'], 's')
                    _common.print_value(f'detection_s_{processes}_processes',
                                        found['detection'], 's')
                    _common.print_value(
                        f'failovers_posted_{processes}_processes',
                        found['failovers'], 'jobs')
                    bound = args.timeout + args.interval
                    _common.print_ratio(
                        f'detection_over_bound_{processes}_processes',
                        found['detection'] / bound, '<= 1',
                        found['detection'] <= bound)
                    if processes != 1 and 1 in results:
                        ratio = (found['cpu_per_round'] /
                                 results[1]['cpu_per_round'])
                        _common.print_ratio(
                            f'work_per_process_{processes}_over_1', ratio,
                            f'<= 1/{processes} + 25%',
                            ratio <= 1.25 / processes)
            finally:
                agents.stdin.close()
                agents.wait(timeout=30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
