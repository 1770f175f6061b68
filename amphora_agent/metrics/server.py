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
"""127.0.0.1:9102 in the data namespace: where PROMETHEUS listeners go.

Octavia's template routes a PROMETHEUS listener to ``server
prometheus-internal 127.0.0.1:9102``, in the data namespace where haproxy
runs. One thread enters that namespace (``setns`` moves only the calling
thread, and the threads it starts inherit its namespace) and serves HTTP
there with a ThreadingHTTPServer: every GET answers haproxy's metrics,
renamed as upstream's prometheus proxy does, followed by the SR-IOV
firewall's. Like upstream's proxy it answers 502 when haproxy's exporter
cannot be read: without haproxy nothing reaches this port from outside
anyway.

The namespace may not exist yet when the agent starts, and the port may
be taken (by upstream's proxy in an image that has it): the thread tries
again every ``retry_interval`` seconds until it serves or is stopped.
"""

import http.server
import threading

from oslo_log import log as logging

from amphora_agent.metrics import firewall_metrics
from amphora_agent.metrics import haproxy_metrics
from amphora_agent.metrics import l4_metrics
from amphora_agent.metrics import text_format
from amphora_agent import netns

LOG = logging.getLogger(__name__)

ADDRESS = '127.0.0.1'
DEFAULT_PORT = 9102
# haproxy gives the whole scrape 5 s (the template's timeout server).
_REQUEST_TIMEOUT = 5


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    # A client that sends nothing holds one thread for this long at most.
    timeout = _REQUEST_TIMEOUT

    def do_GET(self):
        status, body = self.server.metrics.scrape()
        data = body.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', text_format.CONTENT_TYPE)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format, *args):
        LOG.debug('Metrics request from %s: ' + format,
                  self.client_address[0], *args)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # socketserver would print the traceback to stderr.
        LOG.exception('Metrics request from %s failed', client_address[0])


class MetricsServer:
    """The metrics of PROMETHEUS listeners, served from a thread.

    ``namespace``: the data namespace (None or '': the agent's own);
    ``firewall``: the firewall engine, whose counters() are added;
    ``exporter_url``: haproxy's exporter as the template configures it;
    ``l4``: the UDP and SCTP engine, whose counters() are added (None:
    none).
    """

    def __init__(self, namespace, firewall, port=DEFAULT_PORT,
                 address=ADDRESS, exporter_url=haproxy_metrics.EXPORTER_URL,
                 retry_interval=5.0, l4=None):
        self.namespace = namespace or None
        self.firewall = firewall
        self.l4 = l4
        self.address = address
        self.port = port
        self.exporter_url = exporter_url
        self.retry_interval = retry_interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None
        self.serving = threading.Event()

    # What a GET answers ----------------------------------------------------

    def scrape(self):
        """``(HTTP status, text)`` of one scrape."""
        try:
            lines = haproxy_metrics.fetch(self.exporter_url)
        except Exception as error:
            LOG.warning('Cannot read haproxy\'s Prometheus exporter at %s: '
                        '%s', self.exporter_url, error)
            return 502, f'cannot read haproxy\'s metrics: {error}\n'
        try:
            return 200, (
                text_format.render(haproxy_metrics.host_families()) +
                ''.join(haproxy_metrics.rename(lines)) +
                firewall_metrics.render(self._firewall_counters()) +
                self._l4_metrics())
        except Exception:
            LOG.exception('Cannot put the metrics together')
            return 500, ('cannot put the metrics together; see the amphora '
                         'agent log\n')

    def _firewall_counters(self):
        try:
            return self.firewall.counters()
        except Exception as error:
            LOG.warning('Cannot read the firewall counters for the '
                        'metrics: %s', error)
            return None

    def _l4_metrics(self):
        if self.l4 is None:
            return ''
        try:
            counters = self.l4.counters()
        except Exception as error:
            LOG.warning('Cannot read the L4 counters for the metrics: %s',
                        error)
            return l4_metrics.render(None, failed=True)
        return l4_metrics.render(counters)

    # The serving thread ----------------------------------------------------

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='metrics-server')
        self._thread.start()

    def stop(self):
        self._stop.set()
        with self._lock:
            httpd = self._httpd
        if httpd is not None:
            httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def server_port(self):
        """The port served (the one bound when ``port`` is 0), or None."""
        httpd = self._httpd
        return httpd.server_address[1] if httpd else None

    def _run(self):
        entered = not self.namespace
        failures = 0
        while not self._stop.is_set():
            try:
                if not entered:
                    netns.enter(self.namespace)
                    entered = True
                httpd = _Server((self.address, self.port), _Handler)
            except Exception as error:
                # Said once at warning level, then quietly until it works.
                log = LOG.warning if failures == 0 else LOG.debug
                log('Cannot serve metrics on %s:%d in namespace %s yet (%s); '
                    'trying again every %s s', self.address, self.port,
                    self.namespace or '(own)', error, self.retry_interval)
                failures += 1
                self._stop.wait(self.retry_interval)
                continue
            httpd.metrics = self
            with self._lock:
                if self._stop.is_set():
                    httpd.server_close()
                    return
                self._httpd = httpd
            self.serving.set()
            LOG.info('Serving the metrics of PROMETHEUS listeners on %s:%d '
                     'in namespace %s', self.address, httpd.server_address[1],
                     self.namespace or '(own)')
            try:
                httpd.serve_forever(poll_interval=0.5)
            finally:
                httpd.server_close()
                self.serving.clear()
