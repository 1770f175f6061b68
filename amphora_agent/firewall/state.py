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

Long CIDR lists may be kept apart, in one CIDR file named after a digest of
its content in ``<path>.d/``: writing 50k CIDRs again on every apply, a
member change included, would cost more than the apply itself. The state
file then names the CIDR file (``"cidrs_file": "<digest>"``) and each such
listener its list in it (``"allowed_cidrs_in_file": "<list digest>"``). One
file for all the lists, not one a list: a full apply syncs one file, as
before, instead of one per listener (each sync took 1-10 ms on a busy
disk). A CIDR file is written (and synced) before the state file that
refers to it, and removed once no saved state refers to it any more, so a
crash leaves the old or the new state, each complete. The state file stays
the source of truth: a CIDR file it refers to that is missing or changed
makes the whole state unusable, as a corrupt state file does.
"""

import hashlib
import json
import os
import tempfile

# Version 2 may refer to CIDR files; version 1 files (all inline) are
# still read.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CIDRS_FILE = 'cidrs_file'
# Listeners with more CIDRs than this keep them in the CIDR file.
INLINE_CIDRS = 64
IN_FILE = 'allowed_cidrs_in_file'
_DIGEST_HEX = 32


def blob_directory(path):
    return path + '.d'


def blob(values):
    """``(digest, JSON text)`` of one CIDR list, for cidrs_file()."""
    text = json.dumps(values, separators=(',', ':'))
    return _digest(text), text


def cidrs_file(blobs):
    """``(digest, JSON text)`` of the CIDR file holding ``blobs``.

    ``blobs``: ``(digest, JSON text)`` of each list, as blob() returns
    them; the text is theirs joined, not encoded again.
    """
    # Two listeners with the same list share its entry.
    text = '{%s}' % ','.join(f'"{digest}":{text}'
                             for digest, text in sorted(dict(blobs).items()))
    return _digest(text), text


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_HEX]


class CidrFiles:
    """Moves a state document's long CIDR lists to its CIDR file.

    Each list's digest and text are cached by its Listener
    (``cidrs_blob``) and the file's by the lists it holds, so a change that
    leaves the lists alone costs nothing per CIDR.
    """

    def __init__(self):
        # (the digests of its lists, (digest, text)) of the last file.
        self._last = None

    def split(self, sg, document):
        """Refer ``document`` to a CIDR file; its ``{digest: text}``.

        ``document['security_group']`` is ``sg``'s canonical form; it is
        replaced, not changed, when lists move.
        """
        if sg is None or not any(len(listener.allowed_cidrs) > INLINE_CIDRS
                                 for listener in sg.listeners):
            return {}
        listeners = []
        lists = []
        for listener in sg.listeners:
            if len(listener.allowed_cidrs) <= INLINE_CIDRS:
                listeners.append(listener.to_dict())
                continue
            lists.append(listener.cidrs_blob)
            listeners.append({'protocol': listener.protocol,
                              'port': listener.port,
                              IN_FILE: listener.cidrs_blob[0]})
        key = tuple(sorted(digest for digest, _ in lists))
        if self._last is None or self._last[0] != key:
            self._last = (key, cidrs_file(lists))
        digest, text = self._last[1]
        document['security_group'] = dict(document['security_group'],
                                          listeners=listeners)
        document[CIDRS_FILE] = digest
        return {digest: text}


def _write(directory, path, text):
    """Replace ``path`` with ``text`` so a crash leaves old or new.

    Temporary file in the same directory, fsync, rename; mode 0600 because
    the files describe the load balancer's access policy. The caller syncs
    the directory.
    """
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(descriptor, 'w') as stream:
            # One write: json.dump() writes in small chunks.
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _sync(directory):
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def save(path, document, blobs=None):
    """Replace ``path`` with ``document`` so a crash leaves old or new.

    ``blobs``: ``{digest: JSON text}`` of the CIDR file ``document``
    refers to (see cidrs_file()); one missing is written first, those no
    longer referred to are removed after the state file is replaced.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    blobs = blobs or {}
    blob_dir = blob_directory(os.path.abspath(path))
    if blobs:
        os.makedirs(blob_dir, mode=0o700, exist_ok=True)
        written = False
        for digest, text in blobs.items():
            blob_path = os.path.join(blob_dir, digest + '.json')
            if not os.path.exists(blob_path):
                _write(blob_dir, blob_path, text)
                written = True
        if written:
            _sync(blob_dir)
    # One dumps(): json.dump() writes in small chunks.
    _write(directory, path, json.dumps(
        dict(document, version=FORMAT_VERSION), separators=(',', ':')))
    _sync(directory)
    _remove_unreferenced(blob_dir, blobs)


def _remove_unreferenced(blob_dir, blobs):
    try:
        names = os.listdir(blob_dir)
    except FileNotFoundError:
        return
    for name in names:
        # Temporary files of an interrupted save go as well.
        if name.startswith('.') or name[:-len('.json')] not in blobs:
            try:
                os.unlink(os.path.join(blob_dir, name))
            except FileNotFoundError:
                pass


def load(path):
    """Return the saved document, None if there is none.

    CIDR files are read back into their listeners: the document returned
    is whole. Raises ValueError when the file exists but cannot be used,
    a CIDR file it refers to included.
    """
    try:
        with open(path) as stream:
            document = json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f'cannot read {path}: {error}') from error
    if (not isinstance(document, dict) or
            document.get('version') not in READABLE_VERSIONS):
        raise ValueError(f'{path} is not a version {FORMAT_VERSION} '
                         'firewall state')
    if CIDRS_FILE not in document:
        return document
    lists = _load_blob(path, document.pop(CIDRS_FILE))
    sg = document.get('security_group')
    listeners = sg.get('listeners') if isinstance(sg, dict) else None
    for listener in listeners if isinstance(listeners, list) else ():
        if isinstance(listener, dict) and IN_FILE in listener:
            digest = listener.pop(IN_FILE)
            if not isinstance(digest, str) or digest not in lists:
                raise ValueError(f'{path}: no CIDR list {digest!r} in its '
                                 'CIDR file')
            listener['allowed_cidrs'] = lists[digest]
    return document


def _load_blob(path, digest):
    if not isinstance(digest, str) or not digest.isalnum():
        raise ValueError(f'{path}: {digest!r} names no CIDR file')
    blob_path = os.path.join(blob_directory(path), digest + '.json')
    try:
        with open(blob_path) as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f'cannot read {blob_path}: {error}') from error
    if _digest(text) != digest:
        raise ValueError(f'{blob_path} does not have the content its name '
                         'says')
    lists = json.loads(text)
    if not isinstance(lists, dict):
        raise ValueError(f'{blob_path} is not a CIDR file')
    return lists
