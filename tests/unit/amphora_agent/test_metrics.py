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
"""The metrics of PROMETHEUS listeners: their text and their server.

haproxy's exporter is a stub HTTP server answering a sample of what
haproxy 2.6 says; the server runs in the test's own namespace on a free
port. The real thing, through a PROMETHEUS listener, is in
tests/functional/amphora_agent/test_engine_prometheus.py.
"""

import http.server
import threading
import time
import urllib.request

import pytest

from amphora_agent.metrics import firewall_metrics
from amphora_agent.metrics import haproxy_metrics
from amphora_agent.metrics import server as metrics_server
from amphora_agent.metrics import text_format
from tests.unit.amphora_agent import fakes
from tests.unit.amphora_agent.prometheus_text import parse

# What Firewall.counters() returns (amphora_agent.firewall.engine).
COUNTERS = {
    'interfaces': {'vf0': {'dropped': {'packets': 7, 'bytes': 420}},
                   'eth"1': {'dropped': {'packets': 1, 'bytes': 60}}},
    'listeners': {
        'TCP:443': {'accepted': {'packets': 10, 'bytes': 600},
                    'dropped': {'packets': 2, 'bytes': 120}},
        'TCP:80': {'accepted': {'packets': 3, 'bytes': 180},
                   'dropped': {'packets': 0, 'bytes': 0}},
        'UDP:53': {'accepted': {'packets': 4, 'bytes': 256}}},
    'vrrp': {'accepted': {'packets': 50, 'bytes': 2000}},
    'members': {'accepted': {'packets': 30, 'bytes': 9000}},
    'essentials': {'accepted': {'packets': 5, 'bytes': 300}},
    'fragments': {'accepted': {'packets': 0, 'bytes': 0}},
    'repairs': {'count': 2, 'failed': 0, 'last_repair_at': None,
                'last_difference': None, 'last_verified_at': None,
                'verify_interval': 30},
}

HAPROXY_TEXT = '''\
# HELP haproxy_process_current_connections Number of active sessions
# TYPE haproxy_process_current_connections gauge
haproxy_process_current_connections 3
# HELP haproxy_process_nbthread Number of started threads
# TYPE haproxy_process_nbthread gauge
haproxy_process_nbthread 1
# HELP haproxy_frontend_bytes_in_total Current total of incoming bytes.
# TYPE haproxy_frontend_bytes_in_total counter
haproxy_frontend_bytes_in_total{proxy="listener-1"} 1234
haproxy_frontend_bytes_in_total{proxy="prometheus-exporter-internal-endpoint"} 9
# HELP haproxy_backend_last_session_seconds Seconds since last session.
# TYPE haproxy_backend_last_session_seconds gauge
haproxy_backend_last_session_seconds{proxy="pool-1:listener-1"} 12
# HELP haproxy_server_status Current status of the server.
# TYPE haproxy_server_status gauge
haproxy_server_status{proxy="pool-1:listener-1",server="member-1",state="UP"} 1
'''  # noqa: E501


def test_text_format_escapes_labels_and_help():
    family = text_format.Family('m_total', text_format.COUNTER,
                                'Help with \\ and\nnewline.')
    family.add(3, name='a "quoted" \\ value\n')
    family.add(1.5)

    assert text_format.render([family]) == (
        '# HELP m_total Help with \\\\ and\\nnewline.\n'
        '# TYPE m_total counter\n'
        'm_total{name="a \\"quoted\\" \\\\ value\\n"} 3\n'
        'm_total 1.5\n')


def test_firewall_counters_as_metrics():
    families, types = parse(firewall_metrics.render(COUNTERS))

    prefix = 'octavia_sriov_firewall_'
    assert families[prefix + 'up'] == {(): 1}
    assert families[prefix + 'listener_accepted_packets_total'] == {
        (('protocol', 'TCP'), ('port', '80')): 3,
        (('protocol', 'TCP'), ('port', '443')): 10,
        (('protocol', 'UDP'), ('port', '53')): 4}
    assert families[prefix + 'listener_dropped_bytes_total'] == {
        (('protocol', 'TCP'), ('port', '80')): 0,
        (('protocol', 'TCP'), ('port', '443')): 120}
    assert families[prefix + 'interface_dropped_packets_total'] == {
        (('interface', 'vf0'),): 7, (('interface', 'eth\\"1'),): 1}
    assert families[prefix + 'vrrp_accepted_packets_total'] == {(): 50}
    assert families[prefix + 'members_accepted_bytes_total'] == {(): 9000}
    assert families[prefix + 'drift_repairs_total'] == {(): 2}
    assert all(kind == 'counter' for name, kind in types.items()
               if name.endswith('_total'))
    assert types[prefix + 'up'] == 'gauge'


def test_ports_sort_as_numbers():
    text = firewall_metrics.render(COUNTERS)

    assert text.index('port="80"') < text.index('port="443"')


def test_without_counters_only_up_is_zero():
    families, _ = parse(firewall_metrics.render(None))

    assert families == {'octavia_sriov_firewall_up': {(): 0}}


def test_haproxy_metrics_renamed_as_upstream_does():
    lines = list(haproxy_metrics.rename(
        HAPROXY_TEXT.splitlines(keepends=True)))
    text = ''.join(lines)

    # Renamed, with upstream's labels.
    assert 'octavia_loadbalancer_current_connections 3\n' in text
    assert ('octavia_listener_bytes_in_total{listener="listener-1"} 1234\n'
            in text)
    assert ('octavia_member_status{pool="pool-1:listener-1",'
            'member="member-1",state="UP"} 1\n' in text)
    assert ('octavia_pool_last_session_seconds{pool="pool-1:listener-1"} 12'
            '\n' in text)
    # Dropped: what upstream does not map, and the scrape's own proxy.
    assert 'nbthread' not in text
    assert 'prometheus-exporter' not in text
    assert 'haproxy_' not in text
    parse(text)


def test_host_gauges():
    families, types = parse(text_format.render(
        haproxy_metrics.host_families()))

    assert set(families) == {'octavia_loadbalancer_cpu',
                             'octavia_loadbalancer_memory'}
    assert 0 < families['octavia_loadbalancer_memory'][()] <= 100
    assert set(types.values()) == {'gauge'}


class _Exporter(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data = HAPROXY_TEXT.encode()
        self.send_response(200 if self.path == '/metrics' else 404)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def exporter():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/metrics'
    server.shutdown()
    server.server_close()


class CountingFirewall(fakes.FakeFirewall):
    def __init__(self, broken=False):
        super().__init__()
        self.broken = broken

    def counters(self):
        if self.broken:
            raise RuntimeError('firewall not started')
        return COUNTERS


@pytest.fixture
def serve():
    started = []

    def start(firewall, exporter_url, namespace=None, retry_interval=5.0):
        server = metrics_server.MetricsServer(
            namespace, firewall, port=0, exporter_url=exporter_url,
            retry_interval=retry_interval)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def scrape(server, path='/metrics'):
    assert server.serving.wait(10)
    url = f'http://127.0.0.1:{server.server_port}{path}'
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.request.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_server_answers_haproxy_and_firewall_metrics(serve, exporter):
    server = serve(CountingFirewall(), exporter)

    status, headers, text = scrape(server)

    assert status == 200
    assert headers['Content-Type'].startswith('text/plain; version=0.0.4')
    families, _ = parse(text)
    assert families['octavia_loadbalancer_current_connections'] == {(): 3}
    assert families['octavia_sriov_firewall_up'] == {(): 1}
    assert 'octavia_sriov_firewall_listener_accepted_packets_total' in (
        families)
    assert 'octavia_loadbalancer_cpu' in families


def test_a_firewall_that_cannot_answer_leaves_haproxy_metrics(serve,
                                                              exporter):
    server = serve(CountingFirewall(broken=True), exporter)

    status, _, text = scrape(server)

    assert status == 200
    families, _ = parse(text)
    assert families['octavia_sriov_firewall_up'] == {(): 0}
    assert 'octavia_loadbalancer_current_connections' in families


def test_without_haproxy_the_answer_is_502(serve):
    server = serve(CountingFirewall(), 'http://127.0.0.1:9/metrics')

    status, _, text = scrape(server)

    assert status == 502
    assert "cannot read haproxy's metrics" in text


def test_a_missing_namespace_is_tried_again_and_stop_is_prompt(serve):
    server = serve(CountingFirewall(), 'http://127.0.0.1:9/metrics',
                   namespace='no-such-namespace-tmetrics',
                   retry_interval=0.1)
    time.sleep(0.5)

    assert not server.serving.is_set()
    assert server._thread.is_alive()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5


def test_a_taken_port_is_tried_again(exporter):
    first = metrics_server.MetricsServer(None, CountingFirewall(), port=0,
                                         exporter_url=exporter)
    first.start()
    try:
        assert first.serving.wait(10)
        second = metrics_server.MetricsServer(
            None, CountingFirewall(), port=first.server_port,
            exporter_url=exporter, retry_interval=0.1)
        second.start()
        time.sleep(0.3)
        assert not second.serving.is_set()
        port = first.server_port
        first.stop()
        assert second.serving.wait(10)
        assert second.server_port == port
        assert scrape(second)[0] == 200
        second.stop()
    finally:
        first.stop()
