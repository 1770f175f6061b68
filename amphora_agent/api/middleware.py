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
"""WSGI middleware that bounds the size of request bodies.

It sits in front of pecan so that an oversized body is refused before any
of it is read into memory: a declared Content-Length is checked at once, and
a body of unknown length (chunked transfer encoding, which the server has
already decoded into a stream that ends) is read no further than one byte
past the limit.

Once the answer is sent, whatever the client still sends of its body is
read and discarded, up to DISCARD_LIMIT bytes: a client that sends its whole
body at once (without waiting for "100 Continue") is still sending when the
413 goes out, and closing the connection with its bytes unread would make
the kernel reset it, losing the 413 on the way.
"""

import io

from amphora_agent.api import errors

# What is read and discarded after an answer, at the most; each read is
# bounded by the server's read timeout.
DISCARD_LIMIT = 16 * 1024 * 1024
_DISCARD_STEP = 64 * 1024


def _refuse(start_response, status, field, reason):
    response = errors.error_response(status, field, reason)
    start_response(response.status, response.headerlist)
    return [response.body]


def discard(stream, limit=DISCARD_LIMIT):
    """Read ``stream`` to its end or ``limit`` bytes; True at its end."""
    left = limit
    try:
        while left > 0:
            data = stream.read(min(_DISCARD_STEP, left))
            if not data:
                return True
            left -= len(data)
    except Exception:  # noqa: BLE001 - a broken body: nothing to keep
        # Broken framing, a reset, a read timeout: the connection is
        # closed anyway.
        return False
    return False


class _DiscardRestOnClose:
    """An answer that, once sent, discards the rest of the request body."""

    def __init__(self, answer, body):
        self._answer = answer
        self._body = body

    def __iter__(self):
        return iter(self._answer)

    def close(self):
        try:
            close = getattr(self._answer, 'close', None)
            if close is not None:
                close()
        finally:
            discard(self._body)


class BodySizeLimit:
    def __init__(self, app, max_body_size):
        self.app = app
        self.max_body_size = max_body_size

    def __call__(self, environ, start_response):
        return _DiscardRestOnClose(self._limited(environ, start_response),
                                   environ['wsgi.input'])

    def _limited(self, environ, start_response):
        declared = environ.get('CONTENT_LENGTH')
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return _refuse(start_response, 400, 'Content-Length',
                               f'{declared!r} is not a length')
            if length > self.max_body_size:
                return _refuse(start_response, 413, 'body',
                               f'{length} bytes is larger than the '
                               f'{self.max_body_size} bytes accepted')
        elif environ.get('wsgi.input_terminated'):
            try:
                body = environ['wsgi.input'].read(self.max_body_size + 1)
            except ValueError as error:
                # The server found the chunked framing broken.
                return _refuse(start_response, 400, 'body', str(error))
            if len(body) > self.max_body_size:
                return _refuse(start_response, 413, 'body',
                               f'more than the {self.max_body_size} bytes '
                               'accepted')
            # Hand pecan an ordinary body of known length.
            environ['wsgi.input'] = io.BytesIO(body)
            environ['CONTENT_LENGTH'] = str(len(body))
            del environ['wsgi.input_terminated']
        return self.app(environ, start_response)
