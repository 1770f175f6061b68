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
"""Decoding of chunked request bodies by the agent's HTTP server."""

import io

import pytest

from amphora_agent import server


def reader(raw):
    return server.ChunkedReader(io.BufferedReader(io.BytesIO(raw)))


def test_chunks_are_joined_and_the_end_is_found():
    raw = b'5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT'
    stream = io.BufferedReader(io.BytesIO(raw))

    assert server.ChunkedReader(stream).read() == b'hello, world'
    # Nothing past the body was consumed.
    assert stream.read() == b'NEXT'


def test_bounded_reads_cross_chunk_boundaries():
    body = reader(b'3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n')

    assert body.read(2) == b'ab'
    assert body.read(3) == b'cde'
    assert body.read(10) == b'f'
    assert body.read(10) == b''


def test_reading_stops_at_the_requested_size_even_in_a_huge_chunk():
    stream = io.BufferedReader(io.BytesIO(b'100000\r\n' + b'x' * 0x100000))

    assert len(server.ChunkedReader(stream).read(10)) == 10
    assert len(stream.read()) == 0x100000 - 10


@pytest.mark.parametrize('raw', [
    b'zz\r\nhello\r\n0\r\n\r\n',
    b'-1\r\nhello\r\n0\r\n\r\n',
    b'5\r\nhelloXX0\r\n\r\n',
    b'5\r\nhel',
    b'5\r\nhello\r\n',
    b'0\r\nTrailer: x',
    b'1' * 2000 + b'\r\n',
], ids=['not-hex', 'negative', 'no-crlf-after-chunk', 'truncated-chunk',
        'no-last-chunk', 'truncated-trailer', 'size-line-too-long'])
def test_malformed_framing_is_a_value_error(raw):
    with pytest.raises(ValueError):
        reader(raw).read()
