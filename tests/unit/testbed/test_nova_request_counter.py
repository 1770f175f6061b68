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
"""The emulator counts the Compute and Image API requests it serves."""

import json

import webob

from sriov_octavia_testbed.nova import service


def _app(tmp_path):
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'hosts': {'h1': {}}}))
    app, _manager = service.build_app(str(tmp_path), 'http://127.0.0.1:9',
                                      str(path), None)
    return app


def call(app, method, path):
    return webob.Request.blank(path, method=method).get_response(app)


def test_requests_counted_by_method_and_path_shape(tmp_path):
    app = _app(tmp_path)
    server = '0b1e6c39-52a4-4c0e-9d67-3f1f7a3c6a10'
    call(app, 'GET', '/compute/v2.1/servers/detail')
    call(app, 'GET', '/compute/v2.1/servers/detail?name=x')
    call(app, 'GET', f'/compute/v2.1/servers/{server}')
    call(app, 'GET', '/image/v2/images')
    # The admin API itself is not counted.
    counts = call(app, 'GET', '/testbed/requests').json['requests']
    assert counts == {'GET /compute/v2.1/servers/detail': 2,
                      'GET /compute/v2.1/servers/{id}': 1,
                      'GET /image/v2/images': 1}

    assert call(app, 'DELETE', '/testbed/requests').status_int == 204
    assert call(app, 'GET', '/testbed/requests').json['requests'] == {}
