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
"""The emulator's WSGI layer: microversions, error documents, the image API
and the admin API, through webob requests (no network)."""

import json

import pytest
import webob

from sriov_octavia_testbed.nova.api import admin
from sriov_octavia_testbed.nova.api import compute as compute_api
from sriov_octavia_testbed.nova.api import images
from sriov_octavia_testbed.nova.api import microversion
from sriov_octavia_testbed.nova import compute
from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import faults as faults_mod
from sriov_octavia_testbed.nova import inventory
from sriov_octavia_testbed.nova import state as state_mod
from sriov_octavia_testbed.nova import wsgi


@pytest.fixture
def app(tmp_path):
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'hosts': {'h1': {}}}))
    state = state_mod.State(str(tmp_path))
    faults = faults_mod.Faults()
    manager = compute.ComputeManager(
        state, inventory.Inventory.load(str(path)), None, None, faults)
    return wsgi.Application([admin.AdminAPI(manager, faults).router(),
                             images.ImageAPI(state).router(),
                             compute_api.router(manager)])


def call(app, method, path, body=None, headers=None):
    req = webob.Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = 'application/json'
    return req.get_response(app)


@pytest.mark.parametrize('headers,version', [
    ({}, (2, 1)),
    ({'OpenStack-API-Version': 'compute 2.61'}, (2, 61)),
    ({'OpenStack-API-Version': 'volume 3.1, compute latest'}, (2, 95)),
    ({'X-OpenStack-Nova-API-Version': '2.53'}, (2, 53)),
])
def test_requested_version(headers, version):
    req = webob.Request.blank('/', headers=headers)
    assert microversion.requested_version(req) == version


@pytest.mark.parametrize('value,error', [
    ('2.96', errors.NotAcceptable), ('3.0', errors.NotAcceptable),
    ('two', errors.BadRequest)])
def test_unsupported_versions(value, error):
    req = webob.Request.blank('/', headers={'OpenStack-API-Version':
                                            f'compute {value}'})
    with pytest.raises(error):
        microversion.requested_version(req)


def test_version_documents(app):
    doc = call(app, 'GET', '/compute/v2.1').json['version']
    assert (doc['version'], doc['min_version']) == ('2.95', '2.1')
    assert doc['links'][0]['href'] == 'http://localhost/compute/v2.1/'
    assert call(app, 'GET', '/compute').json['versions'][0]['id'] == 'v2.1'
    image = call(app, 'GET', '/image')
    assert image.status_int == 300
    assert image.json['versions'][0]['links'][0]['href'] == \
        'http://localhost/image/v2/'


def test_nova_error_document_and_version_echo(app):
    response = call(app, 'GET', '/compute/v2.1/flavors/nope',
                    headers={'OpenStack-API-Version': 'compute 2.61'})
    assert response.status_int == 404
    assert response.json == {'itemNotFound': {
        'code': 404, 'message': 'Flavor nope could not be found.'}}
    assert response.headers['OpenStack-API-Version'] == 'compute 2.61'
    assert response.headers['X-OpenStack-Nova-API-Version'] == '2.61'
    assert call(app, 'GET', '/compute/v2.1/nothing-here').status_int == 404


def test_flavor_shape_follows_the_microversion(app):
    created = call(app, 'POST', '/compute/v2.1/flavors', {'flavor': {
        'name': 'f', 'ram': 1, 'vcpus': 1, 'disk': 1}}).json['flavor']
    old = call(app, 'GET', f"/compute/v2.1/flavors/{created['id']}").json
    new = call(app, 'GET', f"/compute/v2.1/flavors/{created['id']}",
               headers={'OpenStack-API-Version': 'compute 2.75'}).json
    assert 'extra_specs' not in old['flavor'] and old['flavor']['swap'] == ''
    assert new['flavor']['extra_specs'] == {} and new['flavor']['swap'] == 0


@pytest.mark.parametrize('version', ['2.1', '2.53', '2.88'])
def test_hypervisors_at_every_microversion(app, version):
    headers = {'OpenStack-API-Version': f'compute {version}'}
    listed = call(app, 'GET', '/compute/v2.1/os-hypervisors/detail'
                  '?with_servers=true', headers=headers).json['hypervisors']
    assert [h['hypervisor_hostname'] for h in listed] == ['h1']
    assert listed[0]['servers'] == []
    assert ('running_vms' in listed[0]) is (version != '2.88')
    shown = call(app, 'GET', f"/compute/v2.1/os-hypervisors/{listed[0]['id']}",
                 headers=headers)
    assert shown.json['hypervisor']['state'] == 'up'


def test_server_group_policy_by_microversion(app):
    legacy = call(app, 'POST', '/compute/v2.1/os-server-groups', {
        'server_group': {'name': 'g', 'policies': ['anti-affinity']}})
    assert legacy.json['server_group']['policies'] == ['anti-affinity']
    v264 = {'OpenStack-API-Version': 'compute 2.64'}
    current = call(app, 'POST', '/compute/v2.1/os-server-groups', {
        'server_group': {'name': 'g', 'policy': 'anti-affinity',
                         'rules': {'max_server_per_host': 2}}}, v264)
    assert current.json['server_group']['policy'] == 'anti-affinity'
    assert current.json['server_group']['rules'] == {
        'max_server_per_host': 2}
    # Rules belong to anti-affinity only.
    ruled = call(app, 'POST', '/compute/v2.1/os-server-groups', {
        'server_group': {'name': 'g', 'policy': 'affinity',
                         'rules': {'max_server_per_host': 2}}}, v264)
    assert ruled.status_int == 400
    bad = call(app, 'POST', '/compute/v2.1/os-server-groups', {
        'server_group': {'name': 'g', 'policy': 'sometimes'}}, v264)
    assert bad.status_int == 400


def test_images_filter_sort_page_and_upload(app):
    ids = []
    for name, tags in (('a', ['amphora']), ('b', ['amphora', 'x']),
                       ('c', [])):
        created = call(app, 'POST', '/image/v2/images',
                       {'name': name, 'tags': tags, 'disk_format': 'qcow2',
                        'container_format': 'bare', 'hw_arch': 'x86_64'})
        assert created.status_int == 201
        assert created.json['status'] == 'queued'
        assert created.json['hw_arch'] == 'x86_64'
        ids.append(created.json['id'])
    listed = call(app, 'GET', '/image/v2/images?tag=amphora').json
    assert {i['name'] for i in listed['images']} == {'a', 'b'}
    both = call(app, 'GET', '/image/v2/images?tag=amphora&tag=x').json
    assert [i['name'] for i in both['images']] == ['b']
    page = call(app, 'GET', '/image/v2/images?limit=2&sort=name:asc').json
    assert [i['name'] for i in page['images']] == ['a', 'b']
    rest = call(app, 'GET', page['next'].replace('/v2', '/image/v2')).json
    assert [i['name'] for i in rest['images']] == ['c']
    assert 'next' not in rest

    req = webob.Request.blank(f'/image/v2/images/{ids[0]}/file',
                              method='PUT', body=b'abc')
    assert req.get_response(app).status_int == 204
    shown = call(app, 'GET', f'/image/v2/images/{ids[0]}').json
    assert (shown['status'], shown['size'], shown['checksum']) == (
        'active', 3, '900150983cd24fb0d6963f7d28e17f72')
    active = call(app, 'GET', '/image/v2/images?status=active').json
    assert [i['id'] for i in active['images']] == [ids[0]]
    assert call(app, 'POST', '/image/v2/images',
                {'status': 'active'}).status_int == 403
    assert call(app, 'DELETE', f'/image/v2/images/{ids[2]}').status_int == \
        204
    assert call(app, 'GET', f'/image/v2/images/{ids[2]}').status_int == 404


def test_image_tags_and_patch(app):
    image_id = call(app, 'POST', '/image/v2/images', {'name': 'a'}).json['id']
    call(app, 'PUT', f'/image/v2/images/{image_id}/tags/amphora')
    req = webob.Request.blank(
        f'/image/v2/images/{image_id}', method='PATCH',
        body=json.dumps([{'op': 'replace', 'path': '/name', 'value': 'b'},
                         {'op': 'add', 'path': '/os_distro',
                          'value': 'ubuntu'}]).encode())
    patched = req.get_response(app).json
    assert (patched['name'], patched['os_distro'], patched['tags']) == (
        'b', 'ubuntu', ['amphora'])
    call(app, 'DELETE', f'/image/v2/images/{image_id}/tags/amphora')
    assert call(app, 'GET', f'/image/v2/images/{image_id}').json['tags'] \
        == []


def test_admin_faults(app):
    assert call(app, 'POST', '/testbed/faults',
                {'attach': 'fail_once', 'api_latency_ms': 5}).json == {
        'faults': {'attach': 'fail_once', 'api_latency_ms': 5}}
    assert call(app, 'POST', '/testbed/faults',
                {'nonsense': True}).status_int == 400
    assert call(app, 'DELETE', '/testbed/faults').status_int == 204
    assert call(app, 'GET', '/testbed/faults').json == {'faults': {}}
    pci = call(app, 'GET', '/testbed/pci').json
    assert pci == {'hosts': {'h1': {'physical_networks': {},
                                    'allocations': {}}}}


def test_faults_fail_once_trips_once():
    faults = faults_mod.Faults()
    faults.update({'boot': 'fail_once', 'schedule': 'fail'})
    assert faults.trips('boot') and not faults.trips('boot')
    assert faults.trips('schedule') and faults.trips('schedule')
    assert not faults.trips('attach')
