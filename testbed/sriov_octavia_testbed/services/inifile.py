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
"""Render oslo.config style ini files from nested dicts."""


def render(sections):
    """``{section: {option: value}}`` as ini text.

    Lists become comma separated, booleans lower case, None an empty value
    (which oslo.config reads as "set to nothing", unlike a missing option).
    """
    lines = []
    for section, options in sections.items():
        lines.append(f'[{section}]')
        for option, value in options.items():
            lines.append(f'{option} = {_text(value)}'.rstrip())
        lines.append('')
    return '\n'.join(lines)


def _text(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ','.join(_text(v) for v in value)
    return str(value)


def write(path, sections):
    with open(path, 'w') as f:
        f.write(render(sections))
