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
"""The TLS files of a load balancer, with upstream's answers.

``/1.0/loadbalancer/<amphora_id>/<lb_id>/certificates/<filename>``, and
upstream's own path without the amphora id
(``/1.0/loadbalancer/<lb_id>/certificates/<filename>``), so that either
client finds them:

- ``PUT``: the body, of any content type, is the file (a certificate with
  its key and intermediates, CA certificates or CRLs, or a crt-list). It is
  checked (amphora_agent.engine.tls_files) and stored: ``200 {"message":
  "OK", "md5sum": ...}`` with the md5sum as ``ETag``; refused with 400
  naming the ``field`` at fault (``filename``, ``private_key``,
  ``certificate``, ``intermediates[0]``, ``crt_list``, ...).
- ``GET``: ``{"md5sum": ...}`` (and ``ETag``), 404 (``filename``) when
  there is no such file.
- ``DELETE``: 200 ``{"message": "OK"}``, 404 (``filename``) when there
  was no such file.

Nothing here logs a body: it may hold a private key.
"""

import functools

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api import errors
from amphora_agent import pem

LOG = logging.getLogger(__name__)


def endpoint(engine, amphora_id, loadbalancer_id, filename):
    bind = functools.partial
    arguments = (engine.certificates, loadbalancer_id, filename)
    return base.Endpoint(put=bind(_upload, amphora_id, *arguments),
                         get=bind(_md5sum, *arguments),
                         delete=bind(_delete, *arguments))


def _refusal_is_400(handler):
    """A file or name refused becomes 400 naming the field at fault."""
    @functools.wraps(handler)
    def answer(*args):
        try:
            return handler(*args)
        except pem.InvalidCertificate as error:
            LOG.warning('%s %s from %s refused: %s', pecan.request.method,
                        pecan.request.path, pecan.request.remote_addr, error)
            raise errors.ApiError(400, error.field, error.reason) from None
    return answer


def _with_etag(md5sum, body):
    pecan.response.headers['ETag'] = md5sum
    return body


@base.engine_errors('certificates')
@_refusal_is_400
def _upload(amphora_id, store, loadbalancer_id, filename):
    md5sum = store.store(loadbalancer_id, filename, pecan.request.body)
    LOG.info('TLS file %s of load balancer %s (amphora %s) stored for %s',
             filename, loadbalancer_id, amphora_id or 'not named',
             pecan.request.remote_addr)
    return _with_etag(md5sum, {'message': 'OK', 'md5sum': md5sum})


@base.engine_errors('certificates')
@_refusal_is_400
def _md5sum(store, loadbalancer_id, filename):
    md5sum = store.md5sum(loadbalancer_id, filename)
    return _with_etag(md5sum, {'md5sum': md5sum})


@base.engine_errors('certificates')
@_refusal_is_400
def _delete(store, loadbalancer_id, filename):
    store.delete(loadbalancer_id, filename)
    return {'message': 'OK'}
