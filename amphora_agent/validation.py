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
"""Request validation shared by every agent endpoint.

Every refusal names the field at fault as a JSON path
(``listeners[2].allowed_cidrs[5]``) and says why, so a caller, human or
controller, knows what to fix.
"""

import jsonschema


class InvalidRequest(ValueError):
    """A request that cannot be applied; ``field`` is its JSON path."""

    def __init__(self, field, reason):
        super().__init__(f'{field}: {reason}')
        self.field = field
        self.reason = reason


def json_path(parts):
    """``['listeners', 2, 'port']`` as ``listeners[2].port``."""
    text = ''
    for part in parts:
        if isinstance(part, int):
            text += f'[{part}]'
        else:
            text += f'.{part}' if text else part
    return text or 'body'


def schema_error(validator, body, pattern_reason=None):
    """The most relevant schema violation of ``body``, or None.

    ``pattern_reason`` words a failed ``pattern`` check (the schema's regular
    expression means nothing to a caller), given the offending value.
    """
    # is_valid() stops at the first problem; collecting every error (to
    # pick the most relevant one) is only worth it for a bad request.
    if validator.is_valid(body):
        return None
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    parts = list(error.absolute_path)
    if error.validator == 'additionalProperties':
        allowed = error.schema.get('properties', {})
        unknown = sorted(key for key in error.instance if key not in allowed)
        return InvalidRequest(json_path(parts + [unknown[0]]),
                              'unknown field')
    if error.validator == 'required':
        missing = [key for key in error.validator_value
                   if key not in error.instance]
        return InvalidRequest(json_path(parts + [missing[0]]),
                              'is a required field')
    if error.validator == 'pattern' and pattern_reason:
        return InvalidRequest(json_path(parts),
                              pattern_reason(error.instance))
    return InvalidRequest(json_path(parts), error.message)
