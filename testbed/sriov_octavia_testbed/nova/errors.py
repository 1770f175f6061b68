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
"""Errors the API turns into Nova's error documents."""


class ApiError(Exception):
    code = 500
    # The key Nova wraps the error in, e.g. {"badRequest": {...}}.
    title = 'computeFault'

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    code = 400
    title = 'badRequest'


class NotFound(ApiError):
    code = 404
    title = 'itemNotFound'


class Conflict(ApiError):
    code = 409
    title = 'conflict'


class NotAcceptable(ApiError):
    code = 406
    title = 'notAcceptable'


class ServerError(ApiError):
    code = 500
    title = 'computeFault'


def lookup(collection, key, kind, shown=None):
    """``collection[key]``, or NotFound as Nova words it.

    "<kind> <shown or key> could not be found."
    """
    item = collection.get(key)
    if item is None:
        raise NotFound(f'{kind} {key if shown is None else shown} could '
                       f'not be found.')
    return item
