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

import json
import os

import pytest

from amphora_agent.firewall import engine
from amphora_agent.firewall import model
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


# CIDR files ---------------------------------------------------------------

def saved_with_file(tmp_path, cidrs=('10.0.0.0/8', '192.0.2.0/24')):
    path = tmp_path / 'firewall.json'
    web = state.blob(list(cidrs))
    dns = state.blob(['198.51.100.0/24'])
    digest, text = state.cidrs_file([web, dns])
    document = {'security_group': {'listeners': [
        {'protocol': 'TCP', 'port': 80, state.IN_FILE: web[0]},
        {'protocol': 'UDP', 'port': 53, state.IN_FILE: dns[0]}]},
        'generation': 4, state.CIDRS_FILE: digest}
    state.save(str(path), document, {digest: text})
    return path, digest


def test_a_cidr_file_is_kept_by_digest_and_read_back(tmp_path):
    path, digest = saved_with_file(tmp_path)
    assert os.listdir(str(path) + '.d') == [digest + '.json']
    assert os.stat(os.path.join(str(path) + '.d', digest + '.json')
                   ).st_mode & 0o777 == 0o600
    loaded = state.load(str(path))
    assert loaded == {'security_group': {'listeners': [
        {'protocol': 'TCP', 'port': 80,
         'allowed_cidrs': ['10.0.0.0/8', '192.0.2.0/24']},
        {'protocol': 'UDP', 'port': 53,
         'allowed_cidrs': ['198.51.100.0/24']}]},
        'generation': 4, 'version': state.FORMAT_VERSION}


def test_an_unchanged_cidr_file_is_not_written_again(tmp_path):
    path, digest = saved_with_file(tmp_path)
    blob_path = os.path.join(str(path) + '.d', digest + '.json')
    written = os.stat(blob_path).st_mtime_ns
    os.utime(blob_path, ns=(written - 10**9, written - 10**9))
    saved_with_file(tmp_path)
    assert os.stat(blob_path).st_mtime_ns == written - 10**9


def test_unreferenced_cidr_files_are_removed_after_the_save(tmp_path):
    path, old = saved_with_file(tmp_path)
    _, new = saved_with_file(tmp_path, ['198.51.100.0/24'])
    assert os.listdir(str(path) + '.d') == [new + '.json']
    state.save(str(path), {'generation': 5})
    assert os.listdir(str(path) + '.d') == []


@pytest.mark.parametrize('damage', ['missing', 'changed', 'list missing'])
def test_a_damaged_cidr_file_makes_the_state_unusable(tmp_path, damage):
    path, digest = saved_with_file(tmp_path)
    blob_path = os.path.join(str(path) + '.d', digest + '.json')
    if damage == 'missing':
        os.unlink(blob_path)
    elif damage == 'changed':
        with open(blob_path, 'w') as stream:
            stream.write('{}')
    else:
        document = json.loads(path.read_text())
        document['security_group']['listeners'][0][state.IN_FILE] = 'f00'
        path.write_text(json.dumps(document))
    with pytest.raises(ValueError):
        state.load(str(path))


def test_a_version_1_file_is_still_read(tmp_path):
    path = tmp_path / 'firewall.json'
    path.write_text('{"version": 1, "generation": 2, "security_group": '
                    '{"listeners": [{"protocol": "TCP", "port": 80, '
                    '"allowed_cidrs": ["10.0.0.0/8"]}]}}')
    assert state.load(str(path))['security_group']['listeners'][0][
        'allowed_cidrs'] == ['10.0.0.0/8']


def test_the_engine_keeps_long_cidr_lists_apart_and_they_restore(tmp_path):
    many = [f'10.{i}.0.0/16' for i in range(engine.INLINE_CIDRS + 1)]
    sg = model.parse_security_group({
        'vip_interfaces': ['203.0.113.10'],
        'listeners': [{'protocol': 'TCP', 'port': 80, 'allowed_cidrs': many},
                      {'protocol': 'UDP', 'port': 53,
                       'allowed_cidrs': ['192.0.2.0/24']}]})
    path = str(tmp_path / 'firewall.json')
    firewall = engine.Firewall(state_file=path)
    firewall._sg, firewall._sg_dict = sg, sg.to_dict()
    firewall._save(firewall._document())
    with open(path) as stream:
        saved = json.load(stream)
    tcp, udp = saved['security_group']['listeners']
    assert os.listdir(path + '.d') == [saved[state.CIDRS_FILE] + '.json']
    assert tcp[state.IN_FILE] == sg.listeners[0].cidrs_blob[0]
    assert 'allowed_cidrs' not in tcp
    assert udp['allowed_cidrs'] == ['192.0.2.0/24']
    assert model.parse_security_group(
        state.load(path)['security_group']).to_dict() == sg.to_dict()
