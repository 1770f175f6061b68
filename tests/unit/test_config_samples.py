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
"""The sample configuration files in etc/ match the options in the code.

When this fails, regenerate them from the repository root:
``oslo-config-generator --config-file etc/oslo-config-generator/<name>.conf``.
"""

import configparser
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GENERATOR_DIR = os.path.join(REPO, 'etc', 'oslo-config-generator')


def _generator_configs():
    return sorted(name for name in os.listdir(GENERATOR_DIR)
                  if name.endswith('.conf'))


def test_every_generated_sample_is_listed():
    assert _generator_configs() == ['amphora-sriov-agent.conf',
                                    'sriov-octavia.conf']


@pytest.mark.parametrize('name', _generator_configs())
def test_sample_is_up_to_date(name, tmp_path):
    generator_conf = os.path.join(GENERATOR_DIR, name)
    parser = configparser.ConfigParser(strict=False)
    parser.read(generator_conf)
    committed = os.path.join(REPO, parser['DEFAULT']['output_file'])
    fresh = tmp_path / os.path.basename(committed)
    subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator', '--config-file',
         generator_conf, '--output-file', str(fresh)],
        cwd=REPO, check=True, capture_output=True, timeout=120)
    with open(committed) as f:
        assert fresh.read_text() == f.read(), (
            f'{committed} is stale: run oslo-config-generator '
            f'--config-file etc/oslo-config-generator/{name}')
