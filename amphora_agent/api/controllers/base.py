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
"""What every agent controller says the same way, said once.

- ``base.Endpoint(get=show, put=store)``: a leaf of the URL tree answering
  the methods it is given and 405, with ``Allow``, to the others. Each
  handler is called without arguments (bind what it needs with
  functools.partial) and reads the request itself: whatever pecan makes of
  a query string or a form body is ignored. Child paths are attributes set
  on the endpoint.
- ``@base.engine_errors('haproxy')``: an engine error raised by the
  decorated handler becomes the engine's error answer
  (amphora_agent.api.controllers.engine_answers.failure).
"""

import functools

import pecan

from amphora_agent.api.controllers import engine_answers
from amphora_agent.engine import errors


class Endpoint:
    def __init__(self, **handlers):
        self._handlers = {method.upper(): handler
                          for method, handler in handlers.items()}

    @pecan.expose(template='json')
    def index(self, **kwargs):
        handler = self._handlers.get(pecan.request.method)
        if handler is None:
            pecan.abort(405, headers={'Allow': ', '.join(sorted(
                self._handlers))})
        return handler()


def engine_errors(program):
    def decorate(handler):
        @functools.wraps(handler)
        def answer(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except errors.EngineError as error:
                return engine_answers.failure(error, program)
        return answer
    return decorate
