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
"""A minimal Image API v2: images with tags and properties, an upload that
makes them active, so openstacksdk's image proxy (and Octavia's lookup of
the amphora image by tag) works against the testbed."""

import datetime
import hashlib
import urllib.parse
import uuid

import webob.exc

from sriov_octavia_testbed.nova import views
from sriov_octavia_testbed.nova import wsgi

PREFIX = '/image'
V2 = PREFIX + '/v2'
DEFAULT_OWNER = 'testbed'
# Attributes Glance computes itself; a client may not set them.
READ_ONLY = ('status', 'created_at', 'updated_at', 'size', 'virtual_size',
             'checksum', 'os_hash_algo', 'os_hash_value', 'self', 'file',
             'schema', 'locations', 'direct_url')


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def versions(req):
    return wsgi.json_response({'versions': [{
        'id': 'v2.9', 'status': 'CURRENT',
        'links': [{'rel': 'self', 'href': req.host_url + V2 + '/'}]}]},
        status=300 if req.path_info.rstrip('/') == PREFIX else 200)


class ImageAPI:
    def __init__(self, state):
        self.state = state

    def router(self):
        router = wsgi.Router()
        for method, path, handler in (
                ('GET', PREFIX, versions),
                ('GET', PREFIX + '/', versions),
                ('GET', V2 + '/images', self.list_images),
                ('POST', V2 + '/images', self.create_image),
                ('GET', V2 + '/images/{image_id}', self.show_image),
                ('PATCH', V2 + '/images/{image_id}', self.update_image),
                ('DELETE', V2 + '/images/{image_id}', self.delete_image),
                ('PUT', V2 + '/images/{image_id}/file', self.upload),
                ('PUT', V2 + '/images/{image_id}/tags/{tag}', self.add_tag),
                ('DELETE', V2 + '/images/{image_id}/tags/{tag}',
                 self.delete_tag)):
            router.add(method, path, handler)
        return router

    @staticmethod
    def _image(data, image_id):
        image = data['images'].get(image_id)
        if image is None:
            raise webob.exc.HTTPNotFound(
                f'No image found with ID {image_id}')
        return image

    def list_images(self, req):
        params = req.GET
        with self.state.read() as data:
            images = [dict(i) for i in data['images'].values()]
        for key in ('name', 'status', 'visibility', 'owner',
                    'container_format', 'disk_format'):
            if key in params:
                images = [i for i in images if i.get(key) == params[key]]
        for tag in params.getall('tag'):
            images = [i for i in images if tag in i['tags']]
        sort_key, sort_dir = 'created_at', 'desc'
        if params.get('sort'):
            sort_key, _sep, sort_dir = params['sort'].split(',')[0] \
                .partition(':')
            sort_dir = sort_dir or 'desc'
        sort_key = params.get('sort_key', sort_key)
        sort_dir = params.get('sort_dir', sort_dir)
        images.sort(key=lambda i: (str(i.get(sort_key) or ''), i['id']),
                    reverse=sort_dir == 'desc')
        if params.get('marker'):
            ids = [i['id'] for i in images]
            if params['marker'] not in ids:
                raise webob.exc.HTTPBadRequest('marker not found')
            images = images[ids.index(params['marker']) + 1:]
        body = {'first': '/v2/images', 'schema': '/v2/schemas/images'}
        limit = int(params.get('limit', 0) or 0)
        if limit and len(images) > limit:
            images = images[:limit]
            query = dict(params.items())
            query.update(marker=images[-1]['id'], limit=limit)
            body['next'] = '/v2/images?' + urllib.parse.urlencode(query)
        body['images'] = [views.image(i) for i in images]
        return wsgi.json_response(body)

    def show_image(self, req, image_id):
        with self.state.read() as data:
            return wsgi.json_response(views.image(
                self._image(data, image_id)))

    def create_image(self, req):
        body = wsgi.json_body(req)
        bad = [k for k in body if k in READ_ONLY]
        if bad:
            raise webob.exc.HTTPForbidden(
                f"Attribute '{bad[0]}' is read-only.")
        timestamp = _now()
        image = {
            'id': body.pop('id', None) or str(uuid.uuid4()),
            'name': body.pop('name', None), 'status': 'queued',
            'visibility': body.pop('visibility', 'shared'),
            'protected': bool(body.pop('protected', False)),
            'os_hidden': bool(body.pop('os_hidden', False)),
            'tags': list(dict.fromkeys(body.pop('tags', []) or [])),
            'container_format': body.pop('container_format', None),
            'disk_format': body.pop('disk_format', None),
            'min_disk': int(body.pop('min_disk', 0)),
            'min_ram': int(body.pop('min_ram', 0)),
            'owner': body.pop('owner', None) or req.headers.get(
                'X-Project-Id', DEFAULT_OWNER),
            'size': None, 'virtual_size': None, 'checksum': None,
            'os_hash_algo': None, 'os_hash_value': None,
            'created_at': timestamp, 'updated_at': timestamp,
        }
        # Whatever else the client sends is an image property.
        image.update({k: str(v) for k, v in body.items()})
        with self.state.transaction() as data:
            if image['id'] in data['images']:
                raise webob.exc.HTTPConflict(
                    f"Image with identifier {image['id']} already exists!")
            data['images'][image['id']] = image
        return wsgi.json_response(views.image(image), status=201)

    def update_image(self, req, image_id):
        operations = wsgi.json_body(req)
        with self.state.transaction() as data:
            image = self._image(data, image_id)
            for operation in operations:
                key = operation.get('path', '').lstrip('/')
                if key in READ_ONLY or key == 'id' or '/' in key:
                    raise webob.exc.HTTPForbidden(
                        f"Attribute '{key}' is read-only.")
                if operation.get('op') in ('add', 'replace'):
                    image[key] = operation.get('value')
                elif operation.get('op') == 'remove':
                    image.pop(key, None)
                else:
                    raise webob.exc.HTTPBadRequest('Invalid patch operation')
            image['updated_at'] = _now()
            return wsgi.json_response(views.image(image))

    def delete_image(self, req, image_id):
        with self.state.transaction() as data:
            if self._image(data, image_id)['protected']:
                raise webob.exc.HTTPForbidden(
                    f'Image {image_id} is protected and cannot be deleted.')
            del data['images'][image_id]
        return webob.Response(status=204)

    def upload(self, req, image_id):
        # The testbed boots no disks: keep the digest, not the bytes.
        md5 = hashlib.md5(usedforsecurity=False)
        sha512, size = hashlib.sha512(), 0
        while True:
            chunk = req.body_file.read(65536)
            if not chunk:
                break
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
        with self.state.transaction() as data:
            image = self._image(data, image_id)
            if image['status'] != 'queued':
                raise webob.exc.HTTPConflict(
                    f"Image status transition from {image['status']} to "
                    'saving is not allowed')
            image.update(status='active', size=size,
                         checksum=md5.hexdigest(), os_hash_algo='sha512',
                         os_hash_value=sha512.hexdigest(),
                         updated_at=_now())
        return webob.Response(status=204)

    def add_tag(self, req, image_id, tag):
        with self.state.transaction() as data:
            image = self._image(data, image_id)
            if tag not in image['tags']:
                image['tags'].append(tag)
        return webob.Response(status=204)

    def delete_tag(self, req, image_id, tag):
        with self.state.transaction() as data:
            image = self._image(data, image_id)
            if tag not in image['tags']:
                raise webob.exc.HTTPNotFound(f'Tag {tag} not found')
            image['tags'].remove(tag)
        return webob.Response(status=204)
