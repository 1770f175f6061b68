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
"""The persisted firewall state: written atomically, read back at start.

The file holds the canonical request (what GET shows), not nftables rules:
rules depend on which interfaces exist, and those may differ after a reboot.
"""

import json
import os
import tempfile

FORMAT_VERSION = 1


def save(path, document):
    """Replace ``path`` with ``document`` so a crash leaves old or new.

    Temporary file in the same directory, fsync, rename, fsync of the
    directory; mode 0600 because the file describes the load balancer's
    access policy.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(descriptor, 'w') as stream:
            # One dumps() and one write: json.dump() writes in small chunks.
            stream.write(json.dumps(dict(document, version=FORMAT_VERSION),
                                    separators=(',', ':')))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def load(path):
    """Return the saved document, None if there is none.

    Raises ValueError when the file exists but cannot be used.
    """
    try:
        with open(path) as stream:
            document = json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f'cannot read {path}: {error}') from error
    if (not isinstance(document, dict) or
            document.get('version') != FORMAT_VERSION):
        raise ValueError(f'{path} is not a version {FORMAT_VERSION} '
                         'firewall state')
    return document
