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
import io
import json
import wsgiref.util

from sriov_octavia_testbed import identity


def call(path, query='', method='GET'):
    environ = {'REQUEST_METHOD': method, 'PATH_INFO': path,
               'QUERY_STRING': query, 'wsgi.input': io.BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    environ['HTTP_HOST'] = '127.0.0.1:19701'
    statuses = []
    body = b''.join(identity.application(
        environ, lambda status, headers: statuses.append(status)))
    return statuses[0], json.loads(body)


def test_version_discovery_points_at_v3():
    status, body = call('/v3')
    assert status.startswith('200')
    assert body['version']['id'].startswith('v3.')
    assert body['version']['links'][0]['href'] == (
        'http://127.0.0.1:19701/v3/')


def test_the_noauth_project_is_found_by_name_and_id():
    _, listing = call('/v3/projects', 'name=fake_project_id')
    assert [p['id'] for p in listing['projects']] == ['fake_project_id']
    _, listing = call('/v3/projects', 'name=other')
    assert listing['projects'] == []
    status, shown = call('/v3/projects/fake_project_id')
    assert status.startswith('200')
    assert shown['project']['name'] == 'fake_project_id'
    assert call('/v3/projects/other')[0].startswith('404')


def test_nothing_can_be_changed():
    assert call('/v3/projects', method='POST')[0].startswith('403')
