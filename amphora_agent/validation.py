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

# No agent request nests deeper than a few levels; a deeper value is
# refused before the schema, whose checks and messages recurse per level.
MAX_DEPTH = 32
# A schema message quotes the offending value; a huge one is cut.
MAX_REASON = 300


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


def too_deep(body, limit=MAX_DEPTH):
    """InvalidRequest for the first value nested deeper than ``limit``.

    None when there is none. Iterative and linear in the size of ``body``.
    """
    stack = [(body, [])]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if len(parts) >= limit:
            return InvalidRequest(json_path(parts),
                                  f'nested deeper than the {limit} levels '
                                  'any request has')
        if isinstance(value, list) and not _has_containers(value):
            # A list of scalars (50k CIDRs) has nothing deeper: its types
            # are collected at C speed, ~5 times faster than the loop.
            continue
        for key, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, parts + [key]))
    return None


def _has_containers(values):
    """Whether any of ``values`` is a dict or a list (subclasses too)."""
    return any(issubclass(kind, (dict, list))
               for kind in set(map(type, values)))


def _shortened(text):
    if len(text) <= MAX_REASON:
        return text
    return f'{text[:MAX_REASON]}... ({len(text)} characters)'


def schema_error(validator, body, pattern_reason=None):
    """The most relevant schema violation of ``body``, or None.

    ``pattern_reason`` words a failed ``pattern`` check (the schema's regular
    expression means nothing to a caller), given the offending value.
    """
    deep = too_deep(body)
    if deep:
        return deep
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
    return InvalidRequest(json_path(parts), _shortened(error.message))


class Schema:
    """A JSON schema (draft 7), compiled once, that refuses a bad body.

    ``pattern_reason`` as for schema_error.
    """

    def __init__(self, schema, pattern_reason=None):
        self._validator = jsonschema.Draft7Validator(schema)
        self._pattern_reason = pattern_reason

    def check(self, body):
        """Raise the most relevant violation of ``body`` as InvalidRequest."""
        error = schema_error(self._validator, body, self._pattern_reason)
        if error:
            raise error
