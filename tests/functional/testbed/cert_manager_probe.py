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
"""Octavia's certificate manager as Octavia's API uses it, in a process.

Octavia's configuration is global to a process, so the testbed's is loaded
in a process of its own, with the files Octavia's API reads::

    python -m tests.functional.testbed.cert_manager_probe \\
        --config-file octavia.conf --config-file octavia-service-auth.conf \\
        --user-token TOKEN --project-id PROJECT REF

It loads the certificate manager as Octavia's controllers do (stevedore,
``octavia.cert_manager``, ``[certificates] cert_manager``) and prints a
JSON report of:

* ``before``: Octavia's service user reading the secret before anybody
  granted it access (Barbican's answer);
* ``validation``: what Octavia's API does with a listener's
  ``default_tls_container_ref``: its own ``_validate_tls_refs``, with a
  request context carrying the user's token (ACL for the service user, then
  the certificate read as the service user); ``null`` or Octavia's error;
* ``certificate``: the certificate data as Octavia hands it to a provider
  (``cert_parser.load_certificates_data``, a context without a token: the
  service user), when the validation passed.
"""

import argparse
import json
import sys
import types

from octavia.api.v2.controllers import base as api_base
from octavia.common import config as octavia_config
from octavia.common import context as octavia_context
from octavia.common.tls_utils import cert_parser
import pecan.core
from stevedore import driver as stevedore_driver


def _error(error):
    return {'class': type(error).__name__, 'message': str(error),
            'code': getattr(error, 'code', None),
            'status_code': getattr(error, 'status_code', None)}


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def validate_as_the_api(controller, context, refs):
    """Octavia's own ``_validate_tls_refs`` in a request of ``context``.

    It takes the request's context from pecan's request, as every API
    method does: the probe stands in for that request.
    """
    request = types.SimpleNamespace(context={'octavia_context': context})
    pecan.core.state = pecan.core.RoutingState(request, None, None)
    try:
        controller._validate_tls_refs(refs)
    finally:
        pecan.core.state = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config-file', action='append', required=True)
    parser.add_argument('--user-token', required=True)
    parser.add_argument('--project-id', required=True)
    parser.add_argument('ref')
    args = parser.parse_args(argv)
    octavia_config.init([arg for path in args.config_file
                         for arg in ('--config-file', path)])
    manager = stevedore_driver.DriverManager(
        namespace='octavia.cert_manager',
        name=octavia_config.cfg.CONF.certificates.cert_manager,
        invoke_on_load=True).driver
    report = {'cert_manager': f'{type(manager).__module__}.'
                              f'{type(manager).__name__}'}

    # Octavia's service user on its own: what Barbican says before the ACL.
    try:
        client = manager.auth.get_barbican_client(args.project_id)
        client.secrets.get(secret_ref=args.ref).payload
        report['before'] = None
    except Exception as error:  # noqa: B902 - reported, whatever it is
        report['before'] = _error(error)

    # The API: the user's request, with the token Octavia passes on.
    user_context = octavia_context.RequestContext(
        auth_token=args.user_token, project_id=args.project_id)
    try:
        validate_as_the_api(api_base.BaseController(), user_context,
                            [args.ref])
        report['validation'] = None
    except Exception as error:  # noqa: B902 - reported, whatever it is
        report['validation'] = _error(error)
        print(json.dumps(report))
        return 0

    # What a provider gets: read again as the service user alone.
    listener = types.SimpleNamespace(project_id=args.project_id,
                                     tls_certificate_id=args.ref,
                                     sni_containers=[])
    data = cert_parser.load_certificates_data(manager, listener)
    tls_cert = data['tls_cert']
    report['certificate'] = {
        'certificate': _text(tls_cert.certificate),
        'private_key': _text(tls_cert.private_key),
        'intermediates': [_text(i) for i in tls_cert.intermediates or ()],
        'primary_cn': tls_cert.primary_cn,
    }
    print(json.dumps(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
