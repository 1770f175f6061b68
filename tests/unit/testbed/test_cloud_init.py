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
"""The testbed's cloud-init: write_files as strictly as cloud-init."""

import base64
import gzip
import os
import stat

import pytest

from sriov_octavia.amphora import bootstrap
from sriov_octavia_testbed.plumbing import cloud_init


def _files():
    return [bootstrap.BootFile('/etc/octavia/a.conf', b'[DEFAULT]\n',
                               '0644'),
            bootstrap.BootFile('/etc/octavia/certs/server.pem',
                               b'-----BEGIN CERTIFICATE-----\n\x00\xff',
                               '0600')]


def test_what_the_controller_writes_lands_with_its_modes(tmp_path):
    written = cloud_init.write_files(bootstrap.user_data(_files()),
                                     str(tmp_path))
    assert written == ['/etc/octavia/a.conf',
                       '/etc/octavia/certs/server.pem']
    pem = tmp_path / 'etc/octavia/certs/server.pem'
    assert pem.read_bytes() == b'-----BEGIN CERTIFICATE-----\n\x00\xff'
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / 'etc/octavia/a.conf').st_mode) \
        == 0o644


def test_user_data_as_bytes_and_other_encodings(tmp_path):
    packed = base64.b64encode(gzip.compress(b'zipped')).decode()
    user_data = ('#cloud-config\nwrite_files:\n'
                 f'- path: /x/gz\n  encoding: gz+b64\n  content: {packed}\n'
                 '- path: /x/plain\n  content: hello\n')
    cloud_init.write_files(user_data.encode(), str(tmp_path))
    assert (tmp_path / 'x/gz').read_bytes() == b'zipped'
    assert (tmp_path / 'x/plain').read_bytes() == b'hello'


@pytest.mark.parametrize('user_data, reason', [
    ('#!/bin/sh\necho hi\n', 'does not start with #cloud-config'),
    ('#cloud-config\n: [\n', 'not YAML'),
    ('#cloud-config\n- a\n', 'not a mapping'),
    ('#cloud-config\nwrite_files: {}\n', 'write_files is not a list'),
    ('#cloud-config\nwrite_files:\n- path: etc/x\n', 'not absolute'),
    ('#cloud-config\nwrite_files:\n- path: /x\n  encoding: rot13\n',
     "unknown encoding 'rot13'"),
    ('#cloud-config\nwrite_files:\n- path: /x\n  encoding: b64\n'
     '  content: "!!"\n', 'content is not b64'),
    ('#cloud-config\nwrite_files:\n- path: /x\n  permissions: "rw"\n',
     'not an octal mode'),
], ids=['script', 'yaml', 'list', 'files-mapping', 'relative', 'encoding',
        'base64', 'permissions'])
def test_refused_as_cloud_init_would_and_nothing_written(tmp_path, user_data,
                                                         reason):
    with pytest.raises(cloud_init.UserDataError, match=reason):
        cloud_init.write_files(user_data, str(tmp_path))
    assert os.listdir(tmp_path) == []
