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
"""cloud-init's part in an emulated amphora: the user data's files.

A real amphora image runs cloud-init at first boot; of what it does, an
amphora relies on ``write_files`` alone, so that is what this plays, as
strictly as cloud-init: user data that is not ``#cloud-config`` YAML, an
entry without an absolute ``path``, an unknown ``encoding`` or bad
``permissions`` makes the boot's files fail as a whole, and the server's
console log (the agent log of the fabric) says why. Files land under the
amphora's own root directory, which its processes see as ``/``
(``sriov_octavia_testbed.plumbing.amphora_init``).
"""

import base64
import binascii
import gzip
import os

import yaml

CLOUD_CONFIG = '#cloud-config'
# cloud-init's names for the encodings it decodes.
_ENCODINGS = {
    'text/plain': (), 'plain': (),
    'b64': ('b64',), 'base64': ('b64',),
    'gz': ('gz',), 'gzip': ('gz',),
    'gz+b64': ('b64', 'gz'), 'gz+base64': ('b64', 'gz'),
    'gzip+b64': ('b64', 'gz'), 'gzip+base64': ('b64', 'gz'),
}


class UserDataError(ValueError):
    """User data cloud-init would not (fully) apply."""


def _decode(content, encoding, where):
    steps = _ENCODINGS.get((encoding or 'text/plain').lower())
    if steps is None:
        raise UserDataError(f'{where}: unknown encoding {encoding!r}')
    data = content if isinstance(content, bytes) else str(
        content).encode('utf-8')
    for step in steps:
        try:
            data = (base64.b64decode(data, validate=True) if step == 'b64'
                    else gzip.decompress(data))
        except (binascii.Error, OSError, EOFError) as error:
            raise UserDataError(f'{where}: content is not {encoding}: '
                                f'{error}') from None
    return data


def _mode(permissions, where):
    if permissions is None:
        return 0o644
    try:
        mode = int(str(permissions), 8)
    except ValueError:
        raise UserDataError(f'{where}: permissions {permissions!r} is not '
                            f'an octal mode') from None
    if not 0 <= mode <= 0o7777:
        raise UserDataError(f'{where}: permissions {permissions!r} is out '
                            f'of range')
    return mode


def parse(user_data):
    """The ``(path, bytes, mode)`` files of ``user_data`` (text or bytes).

    :raises UserDataError: what cloud-init would refuse, and why.
    """
    if isinstance(user_data, bytes):
        try:
            user_data = user_data.decode('utf-8')
        except UnicodeDecodeError:
            raise UserDataError('user data is not UTF-8 text') from None
    if not user_data.startswith(CLOUD_CONFIG):
        raise UserDataError(f'user data does not start with {CLOUD_CONFIG} '
                            f'(the only format an amphora uses)')
    try:
        document = yaml.safe_load(user_data)
    except yaml.YAMLError as error:
        raise UserDataError(f'user data is not YAML: {error}') from None
    if document is None:
        return []
    if not isinstance(document, dict):
        raise UserDataError('cloud-config is not a mapping')
    entries = document.get('write_files')
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise UserDataError('write_files is not a list')
    files = []
    for index, entry in enumerate(entries):
        where = f'write_files[{index}]'
        if not isinstance(entry, dict):
            raise UserDataError(f'{where} is not a mapping')
        path = entry.get('path')
        if not isinstance(path, str) or not os.path.isabs(path):
            raise UserDataError(f'{where}: path {path!r} is not absolute')
        content = _decode(entry.get('content', ''), entry.get('encoding'),
                          where)
        files.append((os.path.normpath(path), content,
                      _mode(entry.get('permissions'), where)))
    return files


def write_files(user_data, root):
    """Write the user data's files under ``root``; their paths.

    Parent directories are made as cloud-init makes them (0755).
    """
    written = []
    for path, content, mode in parse(user_data):
        target = os.path.join(root, path.lstrip('/'))
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, 'wb') as out:
            out.write(content)
        os.chmod(target, mode)
        written.append(path)
    return written
