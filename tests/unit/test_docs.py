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
"""The documentation builds without a single warning."""

import os
import subprocess
import sys

import pytest

from sriov_octavia import flavor as sriov_flavor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.mark.timeout(300)
def test_sphinx_build_is_warning_free(tmp_path):
    done = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html',
         '-d', str(tmp_path / 'doctrees'),
         os.path.join(REPO, 'doc', 'source'), str(tmp_path / 'html')],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for page in ('index', 'operator-guide', 'troubleshooting', 'testbed'):
        assert (tmp_path / 'html' / f'{page}.html').exists(), page


def test_operator_guide_explains_every_flavor_key():
    with open(os.path.join(REPO, 'doc', 'source',
                           'operator-guide.rst')) as f:
        guide = f.read()
    missing = [key for key in sriov_flavor.SCHEMA['properties']
               if f'``{key}``' not in guide]
    assert not missing
