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

import os

import pytest

from amphora_agent.firewall import state


def test_save_then_load(tmp_path):
    path = tmp_path / 'sub' / 'firewall.json'
    state.save(str(path), {'security_group': {'listeners': []},
                           'generation': 3})
    assert state.load(str(path)) == {'security_group': {'listeners': []},
                                     'generation': 3,
                                     'version': state.FORMAT_VERSION}
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ['firewall.json']


def test_missing_file_is_no_state(tmp_path):
    assert state.load(str(tmp_path / 'none.json')) is None


@pytest.mark.parametrize('content', [
    '{"version": 1, "security_group": {', '[]', '{"generation": 1}',
    '{"version": 99}', b'\xff\xfe'])
def test_unusable_file_raises_value_error(tmp_path, content):
    path = tmp_path / 'firewall.json'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError):
        state.load(str(path))


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / 'firewall.json'
    state.save(str(path), {'generation': 1})
    with pytest.raises(TypeError):
        state.save(str(path), {'generation': object()})
    assert state.load(str(path))['generation'] == 1
    assert os.listdir(tmp_path) == ['firewall.json']
