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
"""Reading a JSON request body strictly, once.

The firewall takes its whole desired state from one body, so a body that is
ambiguous (duplicate keys, NaN) is refused rather than guessed at.
"""

import json

import pecan

from amphora_agent.api import errors

JSON_CONTENT_TYPE = 'application/json'
_DECODED = 'amphora_agent.json_body'


class InvalidBody(errors.ApiError, ValueError):
    """A body that is not the JSON document it claims to be.

    It is a ValueError because pecan reads ``request.json`` itself, to look
    for keyword arguments, and takes a ValueError as "no JSON arguments";
    the controller then reads the body and the error reaches the caller.
    """

    def __init__(self, reason, field='body'):
        super().__init__(400, field, reason)


def _refuse_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidBody(field=key,
                              reason='appears more than once in one object')
        seen[key] = value
    return seen


def _refuse_constant(name):
    raise InvalidBody(f'{name} is not a JSON number')


def _decode(raw):
    if not raw.strip():
        raise InvalidBody(reason='a JSON document is required')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as error:
        raise InvalidBody(f'not UTF-8 text ({error.reason} at byte '
                          f'{error.start})') from error
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates,
                          parse_constant=_refuse_constant)
    except InvalidBody:
        raise
    except ValueError as error:
        raise InvalidBody(f'malformed JSON ({error})') from error
    except RecursionError as error:
        raise InvalidBody(reason='JSON nested too deeply') from error


class AgentRequest(pecan.Request):
    """A pecan request whose ``json`` is the strict decoding, cached."""

    def _strict_json(self):
        if _DECODED not in self.environ:
            try:
                self.environ[_DECODED] = (_decode(self.body), None)
            except InvalidBody as error:
                self.environ[_DECODED] = (None, error)
        value, error = self.environ[_DECODED]
        if error:
            raise error
        return value

    json = json_body = property(_strict_json)


def read_json(request):
    """The decoded JSON body of an AgentRequest, or ApiError."""
    if request.content_type != JSON_CONTENT_TYPE:
        raise errors.ApiError(
            415, 'Content-Type',
            f'must be {JSON_CONTENT_TYPE}, not '
            f'{request.content_type or "missing"}')
    return request.json
