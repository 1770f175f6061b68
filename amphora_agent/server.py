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
"""HTTPS serving of the agent API with mandatory client certificates.

HTTP is gunicorn's: its threaded worker (``gthread``) parses requests,
decodes chunked bodies, answers ``Expect: 100-continue`` and refuses what
RFC 9112 says to refuse (duplicate or signed ``Content-Length``, a
``Transfer-Encoding`` that does not end in ``chunked``, malformed chunk
sizes). The worker runs inside the agent's own process, in a thread,
without gunicorn's arbiter: the agent holds state in memory (the firewall
engine and its netlink watcher, the load-balancing engine), so there is
exactly one process, nothing is forked and nothing is restarted.

What the agent adds around it:

- the TLS context is read anew for every connection from a holder
  (amphora_agent.tls.TLSCredentials), so a replaced certificate is
  presented from the next handshake on;
- every socket read, the handshake included, is bounded by
  ``[amphora_agent] agent_request_read_timeout``; the handshake runs in the
  connection's worker thread, so a slow client holds up nobody else;
- every error the server itself answers (malformed request line, headers
  too large, broken framing) is JSON in the agent's error shape;
- one request per connection, closed by lingering: what the client still
  sends after the answer is read and discarded (up to a bound) so that it
  receives the answer rather than a connection reset.
"""

from concurrent import futures
import json
import os
import queue
import selectors
import socket
import ssl
import sys
import threading

from gunicorn import config as gunicorn_config
from gunicorn.http import errors as http_errors
from gunicorn.workers import gthread
from oslo_log import log as logging

from amphora_agent.api import errors

LOG = logging.getLogger(__name__)

SERVER_SOFTWARE = 'amphora-sriov-agent'
# Limits of the request head: a request line, and the header fields
# (how many, how long each). The agent's requests are short.
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_SIZE = 8190
# Threads serving connections; the agent has one caller.
THREADS = 8
# Connections held at once, beyond which the listener waits.
MAX_CONNECTIONS = 64
REQUEST_QUEUE_SIZE = 64
# On stop, requests in progress get this long to finish.
GRACEFUL_STOP = 5

_REASONS = {400: 'Bad Request', 403: 'Forbidden', 414: 'URI Too Long',
            417: 'Expectation Failed',
            431: 'Request Header Fields Too Large',
            500: 'Internal Server Error', 501: 'Not Implemented'}


def make_ssl_context(server_pem, client_ca):
    """A TLS server context that accepts only clients ``client_ca`` signed.

    ``server_pem`` holds the server certificate followed by its private key
    (upstream Octavia's ``agent_server_cert`` layout).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(server_pem)
    context.load_verify_locations(cafile=client_ca)
    return context


def refusal(error):
    """``(status, field, reason)`` for a request gunicorn refused, or None.

    None: the error is not the client's (a bug, a failure below).
    """
    if isinstance(error, http_errors.LimitRequestLine):
        return 414, 'request_line', (
            f'longer than the {MAX_REQUEST_LINE} bytes accepted')
    if isinstance(error, http_errors.LimitRequestHeaders):
        return 431, 'headers', (
            f'{error.msg}: at most {MAX_HEADER_FIELDS} fields of '
            f'{MAX_HEADER_FIELD_SIZE} bytes each are accepted')
    if isinstance(error, (http_errors.InvalidRequestLine,
                          http_errors.InvalidRequestMethod,
                          http_errors.InvalidHTTPVersion)):
        return 400, 'request_line', str(error)
    if isinstance(error, http_errors.UnsupportedTransferCoding):
        codings = str(getattr(error, 'hdr', '')).lower().split(',')
        # RFC 9112 section 6.3: a request whose last coding is not
        # "chunked" has no length the server can know.
        status = 501 if codings[-1].strip() == 'chunked' else 400
        return status, 'Transfer-Encoding', str(error)
    if isinstance(error, (http_errors.InvalidHeader,
                          http_errors.InvalidHeaderName,
                          http_errors.ObsoleteFolding)):
        return 400, 'headers', str(error)
    if isinstance(error, (http_errors.InvalidChunkSize,
                          http_errors.ChunkMissingTerminator,
                          http_errors.InvalidChunkExtension)):
        return 400, 'body', f'chunked framing: {error}'
    if isinstance(error, http_errors.ExpectationFailed):
        return 417, 'Expect', str(error)
    if isinstance(error, http_errors.ParseException):
        return 400, 'request', str(error)
    return None


def error_answer(status, field, reason):
    """A whole HTTP/1.1 error answer in the agent's JSON error shape."""
    body = json.dumps(errors.error_body(status, field, reason)).encode()
    head = (f'HTTP/1.1 {status} {_REASONS.get(status, "Error")}\r\n'
            f'Server: {SERVER_SOFTWARE}\r\n'
            'Connection: close\r\n'
            'Content-Type: application/json\r\n'
            f'Content-Length: {len(body)}\r\n\r\n')
    return head.encode('latin-1') + body


class _DaemonThreadPool:
    """The little of an Executor the worker uses, on daemon threads.

    A client trickling its body holds a thread for up to a read timeout;
    it must not hold up the agent's exit (ThreadPoolExecutor's threads
    are joined at exit).
    """

    def __init__(self, size):
        self._jobs = queue.SimpleQueue()
        self._size = size
        for number in range(size):
            threading.Thread(target=self._work, daemon=True,
                             name=f'agent-http-{number}').start()

    def submit(self, function, *args):
        future = futures.Future()
        self._jobs.put((future, function, args))
        return future

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:
                future.set_exception(error)

    def shutdown(self, wait=False):
        for _ in range(self._size):
            self._jobs.put(None)


class _Log:
    """gunicorn's logger interface over oslo.log."""

    def __init__(self, read_timeout):
        self._read_timeout = read_timeout

    def critical(self, msg, *args, **kwargs):
        LOG.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        LOG.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        LOG.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        LOG.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        LOG.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        if isinstance(sys.exc_info()[1], TimeoutError):
            # A client silent for a whole read timeout (before its
            # handshake, its request or the rest of its body): not a bug.
            LOG.warning('A client sent nothing for %d s, connection '
                        'closed', self._read_timeout)
            return
        LOG.exception(msg, *args, **kwargs)

    def log(self, level, msg, *args, **kwargs):
        LOG.log(level, msg, *args, **kwargs)

    def access(self, resp, req, environ, request_time):
        LOG.info('%s "%s %s" %s %d.%03d s', environ.get('REMOTE_ADDR'),
                 environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'),
                 resp.status, request_time.seconds,
                 request_time.microseconds // 1000)

    def close_on_exec(self):
        pass

    def reopen_files(self):
        pass


class AgentWorker(gthread.ThreadWorker):
    """gunicorn's threaded worker, run in the agent's process."""

    def __init__(self, sockets, wsgi_app, cfg, log, read_timeout):
        super().__init__(0, os.getppid(), sockets, None, read_timeout, cfg,
                         log)
        self.wsgi = wsgi_app
        self.read_timeout = read_timeout
        # What init_process() would set up, minus what belongs to a
        # worker process of its own (signals, user, fds).
        self.tpool = self.get_thread_pool()
        self.poller = selectors.DefaultSelector()
        self.method_queue.init()

    def get_thread_pool(self):
        return _DaemonThreadPool(self.cfg.threads)

    def notify(self):
        # No arbiter watches this worker.
        pass

    def handle_error(self, req, client, addr, exc):
        addr = addr or ('', -1)
        if isinstance(exc, ssl.SSLError):
            LOG.warning('TLS handshake with %s refused: %s', addr[0], exc)
            return
        refused = refusal(exc)
        if refused is None:
            LOG.error('Request from %s failed', addr[0], exc_info=exc)
            refused = (500, 'agent', f'internal error '
                       f'({type(exc).__name__}); see the amphora agent log')
        else:
            LOG.warning('Request from %s refused (%d): %s: %s', addr[0],
                        refused[0], refused[1], refused[2])
        try:
            client.sendall(error_answer(*refused))
        except OSError as error:
            LOG.debug('Error answer to %s not sent: %s', addr[0], error)


class _TimedContext:
    """What gunicorn wraps a connection with: the holder's context now.

    The connection's socket gets the read timeout before the handshake,
    so the handshake and every later read are bounded by it.
    """

    def __init__(self, context, read_timeout):
        self._context = context
        self._read_timeout = read_timeout

    def wrap_socket(self, sock, **kwargs):
        sock.settimeout(self._read_timeout)
        return self._context.wrap_socket(sock, **kwargs)


def _with_client_identity(app):
    """Add the TLS environment (``HTTPS``, the client's CN) to requests."""

    def identified(environ, start_response):
        environ['HTTPS'] = 'on'
        connection = environ.get('gunicorn.socket')
        peer = {}
        if isinstance(connection, ssl.SSLSocket):
            peer = connection.getpeercert() or {}
        for rdn in peer.get('subject', ()):
            for key, value in rdn:
                if key == 'commonName':
                    environ['SSL_CLIENT_S_DN_CN'] = value
        return app(environ, start_response)
    return identified


class AgentServer:
    """The agent's HTTPS listener and the gunicorn worker serving it."""

    def __init__(self, host, port, ssl_context, read_timeout, app):
        """``ssl_context`` is an ssl.SSLContext or a holder of one.

        A holder (amphora_agent.tls.TLSCredentials) has the context in
        its ``context`` attribute, read anew for every connection: a
        certificate replaced there is presented from the next handshake
        on, while connections already established finish on the one they
        began with.
        """
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                  flags=socket.AI_PASSIVE)[0]
        self.ssl_context = ssl_context
        self.read_timeout = read_timeout
        self.socket = socket.socket(info[0], socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if info[0] == socket.AF_INET6:
                # '::' then serves IPv4 clients too, whatever the sysctl
                # says.
                self.socket.setsockopt(socket.IPPROTO_IPV6,
                                       socket.IPV6_V6ONLY, 0)
            self.socket.bind(info[4])
            self.socket.listen(REQUEST_QUEUE_SIZE)
        except OSError:
            self.socket.close()
            raise
        self.server_port = self.socket.getsockname()[1]
        self._worker = AgentWorker([self.socket], _with_client_identity(app),
                                   self._config(), _Log(read_timeout),
                                   read_timeout)

    @property
    def ssl_context(self):
        """The context the next connection's handshake uses."""
        source = self._tls_source
        if isinstance(source, ssl.SSLContext):
            return source
        return source.context

    @ssl_context.setter
    def ssl_context(self, context_or_holder):
        # One attribute assignment: a connection being accepted sees
        # either the old context or the new one, never a mix.
        self._tls_source = context_or_holder

    def _config(self):
        def context_for_connection(conf, default_factory):
            # Read once per connection: it keeps this context whatever
            # replaces it while it lasts.
            return _TimedContext(self.ssl_context, self.read_timeout)

        cfg = gunicorn_config.Config()
        for name, value in (
                ('threads', THREADS),
                ('worker_connections', MAX_CONNECTIONS),
                # The controller's health check comes back every interval
                # on the same connection, sparing both sides a handshake; a
                # connection idle for a read timeout is closed, as a silent
                # client's is.
                ('keepalive', self.read_timeout),
                ('graceful_timeout', GRACEFUL_STOP),
                ('limit_request_line', MAX_REQUEST_LINE),
                ('limit_request_fields', MAX_HEADER_FIELDS),
                ('limit_request_field_size', MAX_HEADER_FIELD_SIZE),
                # Marks the worker's connections as TLS; the context
                # itself comes from the hook.
                ('certfile', 'agent_server_cert'),
                ('ssl_context', context_for_connection),
                ('do_handshake_on_connect', True)):
            cfg.set(name, value)
        return cfg

    def serve_forever(self):
        """Serve until shutdown(); requests in progress get a grace time."""
        self._worker.run()

    def shutdown(self):
        """Make serve_forever() return; safe from any thread."""
        self._worker.handle_exit(None, None)

    def server_close(self):
        self.socket.close()
        self._worker.method_queue.close()
        self._worker.tmp.close()


def serve_until(server, stop_event):
    """Serve in a thread until ``stop_event`` is set, then stop serving."""
    thread = threading.Thread(target=server.serve_forever,
                              name='agent-server', daemon=True)
    thread.start()
    try:
        stop_event.wait()
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
