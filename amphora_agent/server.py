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

A threaded wsgiref server: the agent answers a handful of requests from one
controller, so a thread per connection is plenty, and the standard library
keeps the amphora image small. Each connection's TLS handshake runs in its
own worker thread, so a client that stalls mid-handshake holds up nobody
but itself, and every socket read is bounded by
``[amphora_agent] agent_request_read_timeout``.
"""

import socket
import socketserver
import ssl
import threading
from wsgiref import simple_server

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# An HTTP request line longer than this is refused, as wsgiref does.
_MAX_REQUEST_LINE = 65536
# A chunk-size line is a hex number and optional extensions.
_MAX_CHUNK_LINE = 1024
SERVER_SOFTWARE = 'amphora-sriov-agent'


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


class ChunkedFramingError(ValueError):
    def __init__(self, problem):
        super().__init__(f'chunked body: {problem}')


class ChunkedReader:
    """A file-like view of a chunked request body, decoded.

    Reading stops at the last chunk; a malformed frame raises
    ChunkedFramingError, a ValueError.
    The caller bounds how much it reads (BodySizeLimit does).
    """

    def __init__(self, stream):
        self._stream = stream
        self._left_in_chunk = 0
        self._done = False

    def _next_chunk(self):
        line = self._stream.readline(_MAX_CHUNK_LINE + 1)
        if not line.endswith(b'\n') or len(line) > _MAX_CHUNK_LINE:
            raise ChunkedFramingError(problem='bad or missing chunk size line')
        try:
            size = int(line.split(b';', 1)[0].strip(), 16)
        except ValueError as error:
            raise ChunkedFramingError(f'bad chunk size {line!r}') from error
        if size < 0:
            raise ChunkedFramingError(f'bad chunk size {line!r}')
        if size == 0:
            # Trailer fields up to the blank line end the body; they are
            # read to keep the framing right and are otherwise ignored.
            while True:
                trailer = self._stream.readline(_MAX_CHUNK_LINE + 1)
                if not trailer.endswith(b'\n'):
                    raise ChunkedFramingError(problem='truncated trailer')
                if trailer in (b'\r\n', b'\n'):
                    break
            self._done = True
        self._left_in_chunk = size

    def _end_chunk(self):
        if self._stream.readline(3) not in (b'\r\n', b'\n'):
            raise ChunkedFramingError(problem='chunk not followed by CRLF')

    def read(self, size=-1):
        parts = []
        wanted = size if size is not None and size >= 0 else None
        while not self._done and (wanted is None or wanted > 0):
            if self._left_in_chunk == 0:
                self._next_chunk()
                continue
            step = self._left_in_chunk
            if wanted is not None:
                step = min(step, wanted)
            data = self._stream.read(step)
            if not data:
                raise ChunkedFramingError(
                    problem='connection closed mid-chunk')
            parts.append(data)
            self._left_in_chunk -= len(data)
            if wanted is not None:
                wanted -= len(data)
            if self._left_in_chunk == 0:
                self._end_chunk()
        return b''.join(parts)


class ContinueOnRead:
    """A request body that sends "100 Continue" when first read.

    A client that sent ``Expect: 100-continue`` holds its body back until
    it hears this (curl does, for large bodies); an application that
    answers without reading the body (413) never invites it.
    """

    def __init__(self, stream, wfile):
        self._stream = stream
        self._wfile = wfile

    def _invite(self):
        if self._wfile is not None:
            self._wfile.write(b'HTTP/1.1 100 Continue\r\n\r\n')
            self._wfile.flush()
            self._wfile = None

    def read(self, size=-1):
        self._invite()
        return self._stream.read(size)

    def readline(self, size=-1):
        self._invite()
        return self._stream.readline(size)


class _ServerHandler(simple_server.ServerHandler):
    # wsgiref would announce its own and Python's versions.
    server_software = SERVER_SOFTWARE

    def log_exception(self, exc_info):
        LOG.error('Request failed', exc_info=exc_info)


class AgentRequestHandler(simple_server.WSGIRequestHandler):
    """One request per TLS connection, logged through oslo.log."""

    server_version = SERVER_SOFTWARE
    sys_version = ''

    def setup(self):
        self.timeout = self.server.read_timeout
        super().setup()

    def get_environ(self):
        environ = super().get_environ()
        environ['HTTPS'] = 'on'
        peer = self.connection.getpeercert() or {}
        for rdn in peer.get('subject', ()):
            for key, value in rdn:
                if key == 'commonName':
                    environ['SSL_CLIENT_S_DN_CN'] = value
        return environ

    def handle(self):
        # wsgiref's own handle(), except that a chunked body reaches the
        # application decoded (wsgiref passes chunk framing through) and
        # "Expect: 100-continue" is honoured.
        self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
        if len(self.raw_requestline) > _MAX_REQUEST_LINE:
            self.requestline = ''
            self.request_version = ''
            self.command = ''
            self.send_error(414)
            return
        if not self.parse_request():
            return
        environ = self.get_environ()
        body = self.rfile
        if environ.get('HTTP_EXPECT', '').lower() == '100-continue':
            body = ContinueOnRead(body, self.wfile)
        encoding = environ.get('HTTP_TRANSFER_ENCODING', '').lower()
        if 'chunked' in encoding:
            body = ChunkedReader(body)
            environ['wsgi.input_terminated'] = True
            environ.pop('CONTENT_LENGTH', None)
        handler = _ServerHandler(body, self.wfile, self.get_stderr(),
                                 environ, multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())

    def log_message(self, format, *args):
        LOG.info('%s %s', self.address_string(), format % args)


class AgentServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    # Shutdown does not wait for connections in progress: a client that
    # trickles its body could hold it for a whole read timeout, and an nft
    # transaction is atomic, so abandoning a request mid-way is safe.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

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
        self.address_family = info[0]
        self.ssl_context = ssl_context
        self.read_timeout = read_timeout
        super().__init__(info[4], AgentRequestHandler)
        self.set_app(app)

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

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            # '::' then serves IPv4 clients too, whatever the sysctl says.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                                   0)
        socketserver.TCPServer.server_bind(self)
        # HTTPServer.server_bind would resolve the bind address to a FQDN,
        # a DNS query an amphora without DNS can hang on.
        self.server_name = socket.gethostname()
        self.server_port = self.server_address[1]
        self.setup_environ()

    def finish_request(self, request, client_address):
        # Runs in the connection's worker thread.
        request.settimeout(self.read_timeout)
        # Read once: the connection keeps this context whatever replaces
        # it while the connection lasts.
        context = self.ssl_context
        try:
            tls = context.wrap_socket(request, server_side=True)
        except OSError as error:  # ssl.SSLError and timeouts included
            LOG.warning('TLS handshake with %s refused: %s',
                        client_address[0], error)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except TimeoutError:
            LOG.warning('Connection from %s idle for %d s, closed',
                        client_address[0], self.read_timeout)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        LOG.exception('Connection from %s failed', client_address[0])


def serve_until(server, stop_event):
    """Serve in a thread until ``stop_event`` is set, then stop serving."""
    thread = threading.Thread(target=server.serve_forever,
                              name='agent-server', daemon=True)
    thread.start()
    try:
        stop_event.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
