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
"""Reading Prometheus' text format back, strictly, for the tests.

Every sample must follow the HELP and TYPE lines of its family: a scraper
accepts more, but the agent's answers are meant to carry both.
"""

import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """``({name: {labels tuple: value}}, {name: type})``."""
    families, helped, typed = {}, set(), {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            helped.add(line.split()[2])
        elif line.startswith('# TYPE '):
            _, _, name, kind = line.split()
            typed[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, line
            name = match.group(1)
            assert name in helped and name in typed, name
            labels = tuple(_LABEL.findall(match.group(3) or ''))
            families.setdefault(name, {})[labels] = float(match.group(4))
    return families, typed
