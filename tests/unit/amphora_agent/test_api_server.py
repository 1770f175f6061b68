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
"""The JSON answers the agent's server gives to requests gunicorn refuses."""

import json

from gunicorn.http import errors as http_errors
import pytest

from amphora_agent import server


@pytest.mark.parametrize('error, status, field', [
    (http_errors.LimitRequestLine(9000, 8190), 414, 'request_line'),
    (http_errors.LimitRequestHeaders('limit request headers fields'), 431,
     'headers'),
    (http_errors.InvalidRequestLine('GARBAGE'), 400, 'request_line'),
    (http_errors.InvalidHeader('CONTENT-LENGTH'), 400, 'headers'),
    (http_errors.UnsupportedTransferCoding('xchunked'), 400,
     'Transfer-Encoding'),
    (http_errors.UnsupportedTransferCoding('gzip, chunked'), 501,
     'Transfer-Encoding'),
    (http_errors.InvalidChunkSize(b'+b9'), 400, 'body'),
])
def test_refusals(error, status, field):
    assert server.refusal(error)[:2] == (status, field)


def test_other_errors_are_not_refusals():
    assert server.refusal(RuntimeError('bug')) is None


def test_error_answer_is_http_with_the_json_error_shape():
    answer = server.error_answer(414, 'request_line', 'too long')
    head, _, body = answer.partition(b'\r\n\r\n')

    assert head.startswith(b'HTTP/1.1 414 URI Too Long\r\n')
    assert b'Content-Length: %d' % len(body) in head
    assert b'Connection: close' in head
    assert json.loads(body) == {
        'faultstring': 'request_line: too long',
        'message': 'request_line: too long', 'field': 'request_line',
        'reason': 'too long', 'code': 414}
