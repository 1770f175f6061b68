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
"""AgentClient's calls for a load balancer's TLS files, over mutual TLS.

The stub agent (conftest's ``stub``) records each request's method,
path, Content-Type and raw body and answers what the test tells it; the
real agent answers these calls in
tests/functional/amphora_agent/test_engine_tls.py.
"""

import pytest

from sriov_octavia.amphora import client as agent_client

PATH = '/1.0/loadbalancer/amp-1/lb-1/certificates/cert-1.pem'
PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
MISSING = (404, {'field': 'filename', 'reason': 'no file cert-1.pem',
                 'details': ''})


@pytest.mark.parametrize('pem_text', [PEM, PEM.encode()])
def test_upload_sends_the_file_as_it_is(stub, api, pem_text):
    stub.answers[('PUT', PATH)] = (200, {'message': 'OK', 'md5sum': 'ab'})

    answer = api.upload_certificate_file('amp-1', 'lb-1', 'cert-1.pem',
                                         pem_text)

    assert answer == {'message': 'OK', 'md5sum': 'ab'}
    [sent] = stub.received
    assert sent.body == PEM.encode()
    assert sent.content_type.startswith('text/plain')


def test_a_refused_file_names_the_field(stub, api):
    stub.answers[('PUT', PATH)] = (400, {
        'field': 'certificate', 'details': '',
        'reason': 'its public key does not match the private key in the '
                  'PEM'})

    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_certificate_file('amp-1', 'lb-1', 'cert-1.pem', PEM)

    assert (raised.value.status, raised.value.field) == (400, 'certificate')
    assert 'does not match' in raised.value.reason


def test_md5_of_a_stored_and_of_a_missing_file(stub, api):
    stub.answers[('GET', PATH)] = (200, {'md5sum': '0123abcd'})

    assert api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem') == (
        '0123abcd')

    stub.answers[('GET', PATH)] = MISSING
    assert api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem') is None


def test_md5_from_an_agent_without_the_endpoint_is_an_error(stub, api):
    # A 404 for the path itself (an older agent) is not "no such file".
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.certificate_file_md5('amp-1', 'lb-1', 'cert-1.pem')

    assert raised.value.field == 'path'


def test_delete(stub, api):
    stub.answers[('DELETE', PATH)] = (200, {'message': 'OK'})

    assert api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem') == {
        'message': 'OK'}
    assert stub.received[0].method == 'DELETE'


def test_delete_of_a_missing_file(stub, api):
    stub.answers[('DELETE', PATH)] = MISSING

    assert api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem',
                                       missing_ok=True) is None
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.delete_certificate_file('amp-1', 'lb-1', 'cert-1.pem')
    assert (raised.value.status, raised.value.field) == (404, 'filename')
