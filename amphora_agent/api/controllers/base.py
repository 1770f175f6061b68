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

- ``index = base.generic_index()``: a pecan generic ``index`` answering
  405 to every method its class does not add with ``@index.when(...)``
  (each class needs a function of its own: pecan keeps the methods on it);
- ``@base.engine_errors('haproxy')``: an engine error raised by the
  decorated handler becomes the engine's error answer
  (amphora_agent.api.controllers.engine_answers.failure).
"""

import functools

import pecan

from amphora_agent.api.controllers import engine_answers
from amphora_agent.engine import errors


def generic_index():
    @pecan.expose(generic=True)
    def index(self):
        pecan.abort(405)
    return index


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
