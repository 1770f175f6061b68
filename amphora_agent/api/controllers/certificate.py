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
"""``PUT /1.0/certificate``: a new server certificate, at upstream's path.

The body, of any content type, is the PEM ``[amphora_agent]
agent_server_cert`` holds: the certificate followed by its private key.
It is checked (amphora_agent.tls.parse_server_pem), stored atomically and
served from the next connection on: ``202 {"message": "OK"}`` as
upstream's agent answers. A refused one (400) or one that cannot be stored
(500) changes nothing. Neither the body nor the key is ever logged.
"""

import functools

from oslo_log import log as logging
import pecan

from amphora_agent.api.controllers import base
from amphora_agent.api import errors
from amphora_agent import tls

LOG = logging.getLogger(__name__)


def certificate_endpoint(credentials):
    return base.Endpoint(put=functools.partial(_replace, credentials))


def _replace(credentials):
    # The raw body counts, whatever pecan made of it (curl's default form
    # content type makes it offer the PEM as form fields).
    request = pecan.request
    client = (f'{request.remote_addr} '
              f'({request.environ.get("SSL_CLIENT_S_DN_CN")})')
    length = request.content_length
    if length is not None and length > tls.MAX_PEM_SIZE:
        raise errors.ApiError(
            413, 'body', f'{length} bytes is larger than the '
            f'{tls.MAX_PEM_SIZE} bytes a certificate file may have')
    try:
        # It logs the replacement.
        credentials.replace(request.body, requested_by=client)
    except tls.InvalidCertificate as error:
        LOG.warning('New server certificate from %s refused: %s',
                    client, error)
        raise errors.ApiError(400, error.field, error.reason) from None
    except tls.CertificateFileError as error:
        LOG.error('New server certificate from %s not stored, the '
                  'previous one stays: %s', client, error)
        raise errors.ApiError(500, 'agent_server_cert',
                              f'{error}; the previous certificate '
                              'stays in use') from None
    pecan.response.status = 202
    return {'message': 'OK'}
