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
"""Replacing configuration files so that a crash leaves old or new."""

import os
import tempfile


def write_atomically(path, text, mode=0o644):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(descriptor, 'w') as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def candidate(path, text):
    """Write ``text`` beside ``path`` for checking; return its path.

    The caller checks it, then renames it over ``path`` (os.replace) or
    deletes it.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.',
        suffix='.new')
    with os.fdopen(descriptor, 'w') as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    return temporary


# Beside each stored configuration: the text as it was accepted, from which
# a file changed by hand is put back.
ACCEPTED = '.accepted'


def accept(candidate_path, path):
    """Make the checked candidate the configuration; keep a copy of it."""
    with open(candidate_path) as stream:
        write_atomically(path + ACCEPTED, stream.read())
    os.replace(candidate_path, path)


def changed_by_hand(path):
    """The accepted text of ``path`` if the file differs from it, or None.

    None too for a configuration stored before copies were kept.
    """
    try:
        with open(path + ACCEPTED) as stream:
            accepted = stream.read()
    except FileNotFoundError:
        return None
    try:
        with open(path) as stream:
            current = stream.read()
    except FileNotFoundError:
        current = None
    return None if current == accepted else accepted


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
