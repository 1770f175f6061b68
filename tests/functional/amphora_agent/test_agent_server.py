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
"""The agent's HTTPS server in-process, with a tiny WSGI app.

What is tested here is the transport: dual-stack binding, client
certificates, the handshake in a worker thread, read timeouts.
"""

import socket
import threading

import pytest
import requests

from amphora_agent.api import middleware
from amphora_agent import server
from tests.functional.amphora_agent import conftest


def plain(start_response, text):
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(text)))])
    return [text]


def hello_app(environ, start_response):
    return plain(start_response,
                 f'hello {environ.get("SSL_CLIENT_S_DN_CN")} over '
                 f'{environ["wsgi.url_scheme"]}'.encode())


@pytest.fixture
def serve(pki):
    """Run AgentServer(host) in a thread; stopped after the test."""
    running = []

    def start(host, read_timeout=30):
        httpd = server.AgentServer(
            host, conftest.free_port(conftest.IN_PROCESS_PORTS),
            server.make_ssl_context(pki.server, pki.ca), read_timeout,
            hello_app)
        stop = threading.Event()
        thread = threading.Thread(target=server.serve_until,
                                  args=(httpd, stop))
        thread.start()
        running.append((stop, thread))
        return httpd

    yield start
    for stop, thread in running:
        stop.set()
        thread.join()


def get(pki, host, port, **kwargs):
    return requests.get(f'https://{host}:{port}/', cert=pki.client,
                        verify=pki.ca, timeout=30, **kwargs)


def test_ipv6_any_serves_ipv4_and_ipv6_clients(serve, pki):
    port = serve('::').server_port

    assert get(pki, '127.0.0.1', port).text == 'hello controller over https'
    assert get(pki, '[::1]', port).text == 'hello controller over https'


def test_ipv4_bind_address(serve, pki):
    httpd = serve('127.0.0.1')

    assert httpd.socket.family == socket.AF_INET
    assert get(pki, '127.0.0.1', httpd.server_port).status_code == 200


def test_stalled_handshake_does_not_block_other_clients(serve, pki):
    # Were handshakes done by the accepting thread, the stalled one would
    # hold the next client for longer than its 30 s timeout.
    port = serve('127.0.0.1', read_timeout=120).server_port
    # A client that connects and never starts its TLS handshake.
    with socket.create_connection(('127.0.0.1', port), 30):
        assert get(pki, '127.0.0.1', port).status_code == 200


def test_idle_connection_is_closed_after_the_read_timeout(serve, pki):
    port = serve('127.0.0.1', read_timeout=1).server_port
    with conftest.tls_connection(pki, port) as tls:
        # Handshake done, request never sent: the server gives up and
        # closes, which the client sees as the end of the stream.
        assert tls.recv(1) == b''


def test_a_connection_serves_the_next_request_until_idle(serve, pki):
    # The controller's health check comes back on the same connection.
    port = serve('127.0.0.1', read_timeout=2).server_port
    with conftest.tls_connection(pki, port) as tls:
        for _request in range(3):
            tls.sendall(b'GET / HTTP/1.1\r\nHost: agent\r\n\r\n')
            answer = b''
            while not answer.endswith(b'hello controller over https'):
                chunk = tls.recv(4096)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b'HTTP/1.1 200')
        # Idle for a read timeout, it is closed as a silent client's is.
        assert tls.recv(1) == b''


def test_handshake_without_client_certificate_fails(serve, pki):
    port = serve('127.0.0.1').server_port

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f'https://127.0.0.1:{port}/', verify=pki.ca,
                     timeout=30)


def body_length_app(environ, start_response):
    body = environ['wsgi.input'].read(int(environ['CONTENT_LENGTH']))
    return plain(start_response, str(len(body)).encode())


# Connection: close, so that reading the answer to its end does not wait
# for the server's idle timeout (the client's own is no longer).
def _expect_continue_head(length):
    return (b'POST / HTTP/1.1\r\nHost: agent\r\nExpect: 100-continue\r\n'
            b'Connection: close\r\nContent-Length: %d\r\n\r\n' % length)


@pytest.fixture
def serve_limited(pki):
    httpd = server.AgentServer(
        '127.0.0.1', conftest.free_port(conftest.IN_PROCESS_PORTS),
        server.make_ssl_context(pki.server, pki.ca), 30,
        middleware.BodySizeLimit(body_length_app, 4096))
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_until, args=(httpd, stop))
    thread.start()
    yield httpd
    stop.set()
    thread.join()


def test_expect_continue_invites_the_body(serve_limited, pki):
    with conftest.tls_connection(pki, serve_limited.server_port) as tls:
        tls.sendall(_expect_continue_head(100))
        replies = tls.makefile('rb')
        # Only now does a waiting client send its body.
        assert replies.readline() == b'HTTP/1.1 100 Continue\r\n'
        assert replies.readline() == b'\r\n'
        tls.sendall(b'x' * 100)
        assert b' 200 ' in replies.readline()
        assert replies.read().endswith(b'\r\n\r\n100')


def test_expect_continue_with_oversized_body_is_413_at_once(serve_limited,
                                                            pki):
    with conftest.tls_connection(pki, serve_limited.server_port) as tls:
        tls.sendall(_expect_continue_head(10 ** 9))
        replies = tls.makefile('rb')

        # gunicorn invites the body as soon as the head is parsed; the
        # refusal follows at once, without waiting for any of it.
        assert replies.readline() == b'HTTP/1.1 100 Continue\r\n'
        assert replies.readline() == b'\r\n'
        assert b' 413 ' in replies.readline()


def test_expect_continue_with_a_chunked_body(serve_limited, pki):
    head = (b'POST / HTTP/1.1\r\nHost: agent\r\nExpect: 100-continue\r\n'
            b'Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n')
    with conftest.tls_connection(pki, serve_limited.server_port) as tls:
        tls.sendall(head)
        replies = tls.makefile('rb')
        assert replies.readline() == b'HTTP/1.1 100 Continue\r\n'
        assert replies.readline() == b'\r\n'
        tls.sendall(b'3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n')
        assert b' 200 ' in replies.readline()
        assert replies.read().endswith(b'\r\n\r\n7')
