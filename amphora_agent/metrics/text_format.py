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
"""Prometheus' text exposition format (version 0.0.4), the little used.

One family is its HELP and TYPE lines followed by its samples; label values
are escaped so that an interface name or a label from elsewhere can never
end a line or a string early.
"""

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
COUNTER = 'counter'
GAUGE = 'gauge'


def _escape_help(text):
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def _escape_label(value):
    return (str(value).replace('\\', '\\\\').replace('"', '\\"')
            .replace('\n', '\\n'))


def _value(value):
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


class Family:
    """A metric name, its HELP text, its TYPE and its samples.

    ``samples`` are ``(labels dict, value)`` pairs; labels keep the order
    given.
    """

    def __init__(self, name, kind, help_text, samples=()):
        self.name = name
        self.kind = kind
        self.help_text = help_text
        self.samples = list(samples)

    def add(self, value, **labels):
        self.samples.append((labels, value))
        return self

    def lines(self):
        yield f'# HELP {self.name} {_escape_help(self.help_text)}\n'
        yield f'# TYPE {self.name} {self.kind}\n'
        for labels, value in self.samples:
            if labels:
                pairs = ','.join(f'{key}="{_escape_label(label)}"'
                                 for key, label in labels.items())
                yield f'{self.name}{{{pairs}}} {_value(value)}\n'
            else:
                yield f'{self.name} {_value(value)}\n'


def render(families):
    return ''.join(line for family in families for line in family.lines())
