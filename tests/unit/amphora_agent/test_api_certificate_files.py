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
"""A load balancer's TLS files through the WSGI app.

The store is the real one on the test's directory; haproxy is a fake.
haproxy reading the stored files is tested against the real agent in
tests/functional/amphora_agent/test_engine_tls.py.
"""

import hashlib
import logging
import os
import stat

import pytest

from amphora_agent.engine import certificates
from tests import tls_material as tm
from tests.unit.amphora_agent import fakes

LB = 'lb-1'
BASE = f'/1.0/loadbalancer/amp-1/{LB}/certificates'
UPSTREAM_BASE = f'/1.0/loadbalancer/{LB}/certificates'


@pytest.fixture(scope='module')
def pki():
    return tm.Pki()


@pytest.fixture
def store(tmp_path):
    return certificates.CertificateStore(str(tmp_path / 'certs'))


@pytest.fixture
def engine(store):
    return fakes.FakeEngine(certificates=store)


@pytest.fixture
def app(engine):
    return fakes.make_app(engine=engine)


def put(app, path, data, content_type='text/plain'):
    return fakes.request(app, 'PUT', path, raw=data,
                         content_type=content_type)


def md5(data):
    return hashlib.md5(data).hexdigest()


def stored(store, filename):
    return os.path.join(store.base_dir, LB, filename)


@pytest.mark.parametrize('content_type', [
    'text/plain', 'application/octet-stream',
    'application/x-www-form-urlencoded'])
def test_a_bundle_is_stored_readable_by_root_only(app, store, pki,
                                                  content_type):
    bundle = pki.bundle()

    response = put(app, f'{BASE}/cert-1.pem', bundle, content_type)

    assert response.status_int == 200
    assert response.json == {'message': 'OK', 'md5sum': md5(bundle)}
    assert response.headers['ETag'] == md5(bundle)
    path = stored(store, 'cert-1.pem')
    with open(path, 'rb') as stream:
        assert stream.read() == bundle
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    # Nothing but the file is left in the directory.
    assert os.listdir(os.path.dirname(path)) == ['cert-1.pem']


def test_get_answers_the_md5sum_as_upstream(app, store, pki):
    bundle = pki.bundle()
    put(app, f'{BASE}/cert-1.pem', bundle)

    for base in (BASE, UPSTREAM_BASE):
        response = fakes.request(app, 'GET', f'{base}/cert-1.pem')

        assert response.status_int == 200
        assert response.json == {'md5sum': md5(bundle)}
        assert response.headers['ETag'] == md5(bundle)


def test_upstream_path_without_the_amphora_id_stores_too(app, store, pki):
    response = put(app, f'{UPSTREAM_BASE}/ca.pem', pki.root.pem)

    assert response.status_int == 200
    assert os.path.exists(stored(store, 'ca.pem'))


def test_a_new_upload_replaces_the_file(app, store, pki):
    put(app, f'{BASE}/cert-1.pem', pki.bundle('old.example.test'))
    new = pki.bundle('new.example.test')

    assert put(app, f'{BASE}/cert-1.pem', new).status_int == 200

    response = fakes.request(app, 'GET', f'{BASE}/cert-1.pem')
    assert response.json['md5sum'] == md5(new)


def test_a_refused_upload_keeps_the_stored_file(app, store, pki):
    good = pki.bundle()
    put(app, f'{BASE}/cert-1.pem', good)
    certificate, key = pki.intermediate.issue('x.test')

    response = put(app, f'{BASE}/cert-1.pem',
                   tm.cert_pem(certificate) + tm.key_pem(tm.new_key()))

    fakes.assert_error(response, 400, 'certificate')
    with open(stored(store, 'cert-1.pem'), 'rb') as stream:
        assert stream.read() == good


def test_a_key_never_reaches_the_log(app, pki, caplog):
    certificate, _ = pki.intermediate.issue('x.test')
    key = tm.key_pem(tm.new_key())
    secret = key.decode().splitlines()[1]
    caplog.set_level(logging.DEBUG)

    response = put(app, f'{BASE}/cert-1.pem', tm.cert_pem(certificate) + key)
    put(app, f'{BASE}/cert-2.pem', pki.bundle())

    assert response.status_int == 400
    assert secret not in caplog.text
    assert secret not in response.text
    assert 'cert-1.pem' in caplog.text


def test_a_crt_list_names_files_uploaded_before(app, store, pki):
    put(app, f'{BASE}/cert-1.pem', pki.bundle())
    crt_list = f'{stored(store, "cert-1.pem")}\n'.encode()

    response = put(app, f'{BASE}/listener-1.pem', crt_list)

    assert response.status_int == 200
    missing = f'{stored(store, "cert-2.pem")}\n'.encode()
    response = put(app, f'{BASE}/listener-2.pem', missing)
    fakes.assert_error(response, 400, 'crt_list')
    assert 'cert-2.pem was not uploaded' in response.json['reason']


@pytest.mark.parametrize('path, field', [
    (f'{BASE}/bad..pem', 'filename'),
    (f'{BASE}/cert.key', 'filename'),
    (f'{BASE}/.hidden.pem', 'filename'),
    ('/1.0/loadbalancer/amp-1/lb.bad/certificates/x.pem', 'loadbalancer_id'),
])
def test_bad_names_are_400(app, store, pki, path, field):
    for method in ('PUT', 'GET', 'DELETE'):
        response = fakes.request(app, method, path, raw=pki.root.pem,
                                 content_type='text/plain')

        fakes.assert_error(response, 400, field)
    assert not os.path.exists(store.base_dir)


@pytest.mark.parametrize('body, field', [
    (b'', 'body'),
    (b'junk\n', 'body'),
    (b'\x30\x82\x01\x0a', 'body'),
])
def test_unreadable_bodies_are_400(app, body, field):
    fakes.assert_error(put(app, f'{BASE}/x.pem', body), 400, field)


def test_unknown_files_are_404(app):
    for method in ('GET', 'DELETE'):
        response = fakes.request(app, method, f'{BASE}/missing.pem')

        fakes.assert_error(response, 404, 'filename')


def test_delete_removes_the_file(app, store, pki):
    put(app, f'{BASE}/ca.pem', pki.root.pem)

    response = fakes.request(app, 'DELETE', f'{BASE}/ca.pem')

    assert response.status_int == 200
    assert response.json == {'message': 'OK'}
    assert not os.path.exists(stored(store, 'ca.pem'))
    fakes.assert_error(fakes.request(app, 'DELETE', f'{BASE}/ca.pem'), 404,
                       'filename')


def test_deleting_the_load_balancer_removes_its_directory(app, store, pki,
                                                          engine):
    put(app, f'{BASE}/ca.pem', pki.root.pem)
    put(app, '/1.0/loadbalancer/amp-1/lb-2/certificates/ca.pem',
        pki.root.pem)

    response = fakes.request(app, 'DELETE', f'/1.0/loadbalancer/{LB}')

    assert response.status_int == 200
    assert 'TLS files removed' in response.json['details']
    assert engine.haproxy.calls == [('delete', LB)]
    assert not os.path.exists(os.path.join(store.base_dir, LB))
    assert os.path.exists(os.path.join(store.base_dir, 'lb-2', 'ca.pem'))
    # Again: nothing left to remove, still 200.
    response = fakes.request(app, 'DELETE', f'/1.0/loadbalancer/{LB}')
    assert response.status_int == 200
    assert 'TLS files' not in response.json['details']


def test_other_methods_are_405(app):
    response = fakes.request(app, 'POST', f'{BASE}/x.pem')

    fakes.assert_error(response, 405, 'method')
    assert response.headers['Allow'] == 'DELETE, GET, PUT'


def test_a_store_failure_is_500_and_keeps_the_old_file(app, store, pki,
                                                       monkeypatch):
    put(app, f'{BASE}/ca.pem', pki.root.pem)

    def refuse(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(certificates.tempfile, 'mkstemp', refuse)

    response = put(app, f'{BASE}/ca.pem', pki.intermediate.pem)

    fakes.assert_error(response, 500, 'certificates')
    assert 'No space left on device' in response.json['reason']
    with open(stored(store, 'ca.pem'), 'rb') as stream:
        assert stream.read() == pki.root.pem
