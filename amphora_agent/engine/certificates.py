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
"""The TLS files of each load balancer, where haproxy.cfg names them.

``<base_cert_dir>/<lb id>/<filename>``: the controller renders these paths
into haproxy.cfg from its own ``[haproxy_amphora] base_cert_dir``, so the
agent's option must have the same value (upstream's default, on both
sides, is /var/lib/octavia/certs).

Every file is checked first (amphora_agent.engine.tls_files), then
replaces the previous one atomically: haproxy, started or reloaded at any
moment, reads the old file or the new one, never half of one. The files
are readable by root only (haproxy reads them before it drops its
privileges); their content is never logged, only what they hold.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading

from oslo_log import log as logging

from amphora_agent.engine import errors
from amphora_agent.engine import layout
from amphora_agent.engine import tls_files

LOG = logging.getLogger(__name__)

DEFAULT_BASE_DIR = '/var/lib/octavia/certs'
_FILE_MODE = 0o600
_DIRECTORY_MODE = 0o700


def md5sum(data):
    """What upstream's agent answers for a file: the hex MD5 of its bytes.

    It identifies a version of the file for the controller, which skips an
    upload when the sums match; it protects nothing.
    """
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class CertificateStore:
    def __init__(self, base_dir=DEFAULT_BASE_DIR):
        self.base_dir = os.path.abspath(base_dir)
        # One change at a time: a crt-list is checked against the files
        # present, which a concurrent delete must not remove meanwhile.
        self._lock = threading.Lock()

    def directory(self, loadbalancer_id):
        return os.path.join(self.base_dir,
                            layout.check_loadbalancer_id(loadbalancer_id))

    def path(self, loadbalancer_id, filename):
        return os.path.join(self.directory(loadbalancer_id),
                            tls_files.check_filename(filename))

    def store(self, loadbalancer_id, filename, data):
        """Check ``data`` and make it the file; its md5sum.

        Raises pem.InvalidCertificate (nothing written) or EngineError
        (the file system refused; the previous file stays).
        """
        path = self.path(loadbalancer_id, filename)
        directory = os.path.dirname(path)
        with self._lock:
            checked = tls_files.check(data, directory, filename)
            try:
                os.makedirs(self.base_dir, mode=_DIRECTORY_MODE,
                            exist_ok=True)
                os.makedirs(directory, mode=_DIRECTORY_MODE, exist_ok=True)
                _replace(path, data)
            except OSError as error:
                raise errors.EngineError(
                    f'cannot store {path}: {error.strerror}') from None
        LOG.info('TLS file %s of load balancer %s stored: %s', filename,
                 loadbalancer_id, checked.description)
        for warning in checked.warnings:
            LOG.warning('TLS file %s of load balancer %s: %s', filename,
                        loadbalancer_id, warning)
        return md5sum(data)

    def md5sum(self, loadbalancer_id, filename):
        """The md5sum of the stored file; UnknownFile if there is none."""
        path = self.path(loadbalancer_id, filename)
        try:
            with open(path, 'rb') as stored:
                return md5sum(stored.read())
        except FileNotFoundError:
            raise errors.UnknownFile(loadbalancer_id, filename) from None

    def delete(self, loadbalancer_id, filename):
        path = self.path(loadbalancer_id, filename)
        with self._lock:
            try:
                os.unlink(path)
            except FileNotFoundError:
                raise errors.UnknownFile(loadbalancer_id, filename) from None
        LOG.info('TLS file %s of load balancer %s deleted', filename,
                 loadbalancer_id)

    def delete_all(self, loadbalancer_id):
        """Remove the load balancer's directory; whether there was one."""
        directory = self.directory(loadbalancer_id)
        with self._lock:
            if not os.path.isdir(directory):
                return False
            shutil.rmtree(directory)
        LOG.info('TLS files of load balancer %s deleted', loadbalancer_id)
        return True


def _replace(path, data):
    directory = os.path.dirname(path)
    # mkstemp creates the file 0600 whatever the umask: a key is never
    # readable by others, not even for a moment.
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.new')
    try:
        with os.fdopen(descriptor, 'wb') as stream:
            os.fchmod(stream.fileno(), _FILE_MODE)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
