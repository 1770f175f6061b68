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
"""Hostile requests, as raw bytes over mutual TLS, to the real agent app.

Each of these once got an answer that was no HTTP, HTML, a connection
reset, a 200 for framing RFC 9112 says to refuse, or a 500. Every answer
here must be a status line and the agent's JSON error shape.
"""

import json
import logging
import socket
import threading

import pytest

from amphora_agent import server
from tests.functional.amphora_agent import conftest
from tests.unit.amphora_agent import fakes

MAX_BODY = 4096
POST = (b'POST /1.0/security-group HTTP/1.1\r\nHost: agent\r\n'
        b'Content-Type: application/json\r\n')


@pytest.fixture
def agent_port(pki):
    app = fakes.make_app(max_body_size=MAX_BODY)
    httpd = server.AgentServer(
        '127.0.0.1', conftest.free_port(conftest.IN_PROCESS_PORTS),
        server.make_ssl_context(pki.server, pki.ca), 10, app)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_until, args=(httpd, stop))
    thread.start()
    yield httpd.server_port
    stop.set()
    thread.join()


def read_answer(tls):
    # Up to the end of the answer's body, as its Content-Length says, or
    # to the end of the connection: a lingering agent keeps reading what
    # the client might still send until the client closes.
    answer = b''
    while not _complete(answer):
        try:
            data = tls.recv(65536)
        except ConnectionResetError as error:
            raise AssertionError(f'reset after {answer!r}') from error
        if not data:
            break
        answer += data
    head, _, body = answer.partition(b'\r\n\r\n')
    status_line = head.split(b'\r\n')[0]
    assert status_line.startswith(b'HTTP/1.1 '), answer
    assert b'application/json' in head, answer
    return int(status_line.split()[1]), json.loads(body)


def _complete(answer):
    head, separator, body = answer.partition(b'\r\n\r\n')
    if not separator:
        return False
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            return len(body) >= int(value)
    return False


def send(pki, port, raw):
    with conftest.tls_connection(pki, port) as tls:
        tls.sendall(raw)
        return read_answer(tls)


def assert_error(answer, status, field):
    code, body = answer
    assert (code, body['code'], body['field']) == (status, status, field), (
        body)
    assert body['faultstring'] == f'{field}: {body["reason"]}'
    assert body['reason']


@pytest.mark.parametrize('raw', [
    b'GARBAGE\r\n\r\n',
    b'GET / HTTP/1.1 extra\r\n\r\n',
    b'GET / HTTP/9.9\r\nHost: agent\r\n\r\n',
    b'G\x00T / HTTP/1.1\r\n\r\n',
], ids=['no-method', 'extra-word', 'bad-version', 'nul-in-method'])
def test_malformed_request_line_is_400_json(agent_port, pki, raw):
    assert_error(send(pki, agent_port, raw), 400, 'request_line')


def test_long_request_line_is_414_json(agent_port, pki):
    raw = b'GET /' + b'a' * 70000 + b' HTTP/1.1\r\nHost: agent\r\n\r\n'

    assert_error(send(pki, agent_port, raw), 414, 'request_line')


@pytest.mark.parametrize('headers', [
    b'X-Long: ' + b'a' * 70000 + b'\r\n',
    b''.join(b'X-Many-%d: a\r\n' % n for n in range(200)),
], ids=['long-field', 'many-fields'])
def test_large_head_is_431_json(agent_port, pki, headers):
    raw = b'GET / HTTP/1.1\r\nHost: agent\r\n' + headers + b'\r\n'

    assert_error(send(pki, agent_port, raw), 431, 'headers')


def test_whole_oversized_body_sent_at_once_gets_the_413(agent_port, pki):
    # Far more than the socket buffers hold: the agent answers after the
    # head, and must read what follows rather than reset the connection.
    # The client sends it all before it reads: one TLS connection must not
    # be written and read from two threads at once (OpenSSL does not allow
    # it), and an agent that stopped reading would leave sendall() waiting
    # until the socket's timeout.
    body = b' ' * (8 * 1024 * 1024)
    with conftest.tls_connection(pki, agent_port) as tls:
        tls.sendall(POST + b'Content-Length: %d\r\n\r\n' % len(body) + body)
        answer = read_answer(tls)

    assert_error(answer, 413, 'body')


@pytest.mark.parametrize('framing, field', [
    (b'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}', 'headers'),
    (b'Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ', 'headers'),
    (b'Content-Length: +2\r\n\r\n{}', 'headers'),
    (b'Content-Length: -2\r\n\r\n{}', 'headers'),
    (b'Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
     'Transfer-Encoding'),
    (b'Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
     'headers'),
    (b'Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n'
     b'2\r\n{}\r\n0\r\n\r\n', 'headers'),
    (b'Transfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n', 'body'),
    (b'Transfer-Encoding: chunked\r\n\r\n0_2\r\n{}\r\n0\r\n\r\n', 'body'),
    (b'Transfer-Encoding: chunked\r\n\r\n 2\r\n{}\r\n0\r\n\r\n', 'body'),
    (b'Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n', 'body'),
], ids=['duplicate-length', 'conflicting-lengths', 'signed-length',
        'negative-length', 'xchunked', 'chunked-not-last',
        'chunked-and-length', 'plus-chunk-size', 'underscore-chunk-size',
        'space-chunk-size', 'no-crlf-after-chunk'])
def test_ambiguous_framing_is_400_json(agent_port, pki, framing, field):
    assert_error(send(pki, agent_port, POST + framing), 400, field)


def test_client_hanging_up_mid_body_is_a_warning(agent_port, pki, caplog):
    caplog.set_level(logging.INFO)
    with conftest.tls_connection(pki, agent_port) as tls:
        tls.sendall(POST + b'Content-Length: 1000\r\n\r\n{"vip_')
        tls.shutdown(socket.SHUT_WR)
        tls.recv(65536)
    # The server logs once the request is over.
    with conftest.tls_connection(pki, agent_port) as tls:
        tls.sendall(b'GET / HTTP/1.1\r\nHost: agent\r\n\r\n')
        read_answer(tls)

    assert 'Traceback' not in caplog.text
    assert not [record for record in caplog.records
                if record.levelno >= logging.ERROR]
    assert 'closed the connection before sending its whole body' in (
        caplog.text)


# Deep enough that building a schema message once recursed past Python's
# limit (a 500), shallow enough that the JSON decoder takes them.
@pytest.mark.parametrize('document, field', [
    ('{"vip_interfaces": ' + '[' * 600 + ']' * 600 + '}',
     'vip_interfaces' + '[0]' * 31),
    ('{"vip_interfaces": ["203.0.113.10"], "listeners": [' +
     '{"a":' * 500 + '1' + '}' * 500 + ']}',
     'listeners[0]' + '.a' * 30),
], ids=['lists', 'objects'])
def test_deep_nesting_is_400_naming_the_field(agent_port, pki, document,
                                              field):
    raw = document.encode()
    answer = send(pki, agent_port,
                  POST + b'Content-Length: %d\r\n\r\n' % len(raw) + raw)

    assert_error(answer, 400, field)
    assert 'nested deeper' in answer[1]['reason']
