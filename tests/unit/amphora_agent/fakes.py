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
"""Test doubles for the agent API, and the app built over them.

The agent serves the firewall, the load-balancing engine and the server
certificate; an API test replaces what it is not about with these fakes,
which record what reaches them and raise what a test tells them to.
"""

import json

import webob

from amphora_agent.api import app as api_app

MAX_BODY = 64 * 1024

# A native security group the API accepts.
GOOD_BODY = {
    'vip_interfaces': ['203.0.113.10'],
    'listeners': [{'protocol': 'TCP', 'port': 80,
                   'allowed_cidrs': ['198.51.100.0/24']}],
    'vrrp_peers': ['203.0.113.11'],
    'members': [{'address': '192.0.2.20', 'protocol': 'TCP', 'port': 8080}],
}


class FakeFirewall:
    """Records applied security groups; current() is the last one."""

    def __init__(self):
        self.applied = []
        self.refreshes = 0
        self.refuse_with = None

    def apply(self, security_group):
        if self.refuse_with:
            raise self.refuse_with
        self.applied.append(security_group)
        return self.current()

    def current(self):
        if not self.applied:
            return {'security_group': None}
        return {'security_group': self.applied[-1].to_dict()}

    def counters(self):
        return {'listeners': {'TCP:80': {'packets': 3, 'bytes': 180}},
                'dropped': {'packets': 7, 'bytes': 420}}

    def refresh(self):
        self.refreshes += 1

    def repairs(self):
        return {'count': 0, 'failed': 0, 'last_repair_at': None,
                'last_difference': None, 'last_verified_at': None,
                'verify_interval': 30}


class FakeProgram:
    """haproxy or keepalived: records calls; ``failures[method]`` raised."""

    def __init__(self):
        self.calls = []
        self.failures = {}

    def _call(self, method, *args):
        self.calls.append((method,) + args)
        if method in self.failures:
            raise self.failures[method]
        return f'{method} done'

    def store(self, *args):
        return self._call('store', *args)

    def act(self, *args):
        return self._call('act', *args)

    def delete(self, *args):
        return self._call('delete', *args)

    def status(self, *args):
        self._call('status', *args)
        return {'frontends': {}, 'backends': {}}


class FakeCertificates:
    """The TLS file store: records the load balancers deleted."""

    def __init__(self):
        self.deleted = []

    def delete_all(self, loadbalancer_id):
        self.deleted.append(loadbalancer_id)
        return False


class FakeEngine:
    """The load-balancing engine (amphora_agent.engine.service.Engine).

    ``certificates``: the TLS file store, a real one (amphora_agent.engine.
    certificates.CertificateStore) in the tests of its endpoints.
    """

    def __init__(self, certificates=None):
        self.haproxy = FakeProgram()
        self.keepalived = FakeProgram()
        self.certificates = certificates or FakeCertificates()

    def info(self):
        return {'haproxy_version': '2.6.12',
                'haproxy_base_path': '/run/engine',
                'vrrp_check_script': '/run/engine/vrrp/check-haproxy'}


class FakeCredentials:
    """The server certificate (amphora_agent.tls.TLSCredentials).

    Records the PEMs it is given.
    """

    def __init__(self):
        self.replaced = []

    def replace(self, data, requested_by='unknown'):
        self.replaced.append((data, requested_by))


def make_app(**overrides):
    """build_app over fakes; ``overrides`` replaces any of its arguments."""
    arguments = dict(firewall=FakeFirewall(), engine=FakeEngine(),
                     credentials=FakeCredentials(), max_body_size=MAX_BODY)
    arguments.update(overrides)
    return api_app.build_app(**arguments)


def request(app, method, path, body=None, content_type='application/json',
            raw=None):
    """The app's answer; ``body`` goes as JSON, ``raw`` as it is."""
    req = webob.Request.blank(path, method=method)
    if raw is not None or body is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = content_type
    return req.get_response(app)


def assert_error(response, status, field):
    """``response`` is the agent's JSON error naming ``field``."""
    assert response.status_int == status, response.text
    assert response.content_type == 'application/json'
    error = response.json
    assert error['field'] == field
    assert error['faultstring'] == f'{field}: {error["reason"]}'
    assert error['message'] == error['faultstring']
    assert error['code'] == status


class FakeL4:
    """The L4 engine (amphora_agent.l4.engine.L4Engine): one document."""

    def __init__(self):
        self.document = None

    def apply(self, document):
        from amphora_agent.l4 import errors as l4_errors
        if (self.document is not None and
                self.document.loadbalancer_id != document.loadbalancer_id):
            raise l4_errors.Conflict(self.document.loadbalancer_id,
                                     document.loadbalancer_id)
        self.document = document
        return self.current(document.loadbalancer_id)

    def current(self, loadbalancer_id):
        if (self.document is None or
                self.document.loadbalancer_id != loadbalancer_id):
            return None
        return dict(self.document.to_dict(), health={})

    def delete(self, loadbalancer_id):
        held = self.current(loadbalancer_id) is not None
        if held:
            self.document = None
        return held

    def status(self, loadbalancer_id):
        if self.current(loadbalancer_id) is None:
            return None
        return {'frontends': {'l-1': {'status': 'OPEN', 'scur': 1,
                                      'stot': 2, 'bin': 0, 'bout': 0,
                                      'ereq': 0}},
                'backends': {'p-1:l-1': {'status': 'UP', 'servers': {}}}}


L4_BODY = {
    'loadbalancer_id': 'lb-1',
    'listeners': [{'id': 'l-1', 'protocol': 'UDP', 'port': 53,
                   'addresses': ['203.0.113.10'],
                   'pool': {'id': 'p-1', 'algorithm': 'ROUND_ROBIN',
                            'members': [{'id': 'm-1',
                                         'address': '192.0.2.20',
                                         'port': 53}]}}],
}
