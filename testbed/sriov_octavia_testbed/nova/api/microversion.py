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
"""Compute API versions: the version documents and microversion headers."""

import re

from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import wsgi

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 95)
VERSION_HEADERS = ('OpenStack-API-Version', 'X-OpenStack-Nova-API-Version')


def version_string(version):
    return '%d.%d' % version


def _parse(text):
    if text == 'latest':
        return MAX_VERSION
    match = re.fullmatch(r'(\d+)\.(\d+)', text.strip())
    if not match:
        raise errors.BadRequest(
            f'API Version String {text} is of invalid format. Must be of '
            'format MajorNum.MinorNum.')
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise errors.NotAcceptable(
            f'Version {text} is not supported by the API. Minimum is '
            f'{version_string(MIN_VERSION)} and maximum is '
            f'{version_string(MAX_VERSION)}.')
    return version


def requested_version(req):
    """The microversion a request asks for; 2.1 if it names none."""
    header = req.headers.get('OpenStack-API-Version', '')
    for part in header.split(','):
        service, _sep, value = part.strip().partition(' ')
        if service.lower() == 'compute' and value:
            return _parse(value)
    legacy = req.headers.get('X-OpenStack-Nova-API-Version')
    return _parse(legacy) if legacy else MIN_VERSION


def versioned(handler):
    """Negotiate the microversion for ``handler`` and echo it like Nova.

    The handler finds the version as ``req.environ['nova.version']``.
    """
    def call(req, **kwargs):
        try:
            version = requested_version(req)
        except errors.ApiError as e:
            return wsgi.error_response(e)
        req.environ['nova.version'] = version
        try:
            response = handler(req, **kwargs)
        except errors.ApiError as e:
            response = wsgi.error_response(e)
        value = version_string(version)
        response.headers['OpenStack-API-Version'] = 'compute ' + value
        response.headers['X-OpenStack-Nova-API-Version'] = value
        response.headers['Vary'] = ', '.join(VERSION_HEADERS)
        return response
    return call


def _version_document(host_url):
    return {
        'id': 'v2.1', 'status': 'CURRENT',
        'version': version_string(MAX_VERSION),
        'min_version': version_string(MIN_VERSION),
        'updated': '2013-07-23T11:33:21Z',
        'links': [{'rel': 'self', 'href': host_url + common.V21 + '/'}],
        'media-types': [{
            'base': 'application/json',
            'type': 'application/vnd.openstack.compute+json;version=2.1'}],
    }


def versions(req):
    return wsgi.json_response(
        {'versions': [_version_document(req.host_url)]})


def version(req):
    return wsgi.json_response({'version': _version_document(req.host_url)})
