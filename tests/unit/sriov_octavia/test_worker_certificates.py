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
"""The worker renews amphora certificates before they expire."""

import datetime
from unittest import mock

from cryptography import x509
import pytest

from sriov_octavia.amphora import bootstrap
from sriov_octavia.amphora import client as agent_client
from sriov_octavia.worker import certificates

AMPHORA_ID = '5d1f3c1e-8a9b-4c2d-9e0f-112233445566'
DAY = datetime.timedelta(days=1)


@pytest.fixture
def conf(ca_conf):
    overrides = (('cert_validity_time', 30 * 86400, 'certificates'),
                 ('cert_expiry_buffer', 14 * 86400, 'house_keeping'))
    for name, value, group in overrides:
        ca_conf.set_override(name, value, group=group)
    yield ca_conf
    for name, _, group in overrides:
        ca_conf.clear_override(name, group=group)


def _agent(conf, expires_in):
    pem = bootstrap.new_server_pem(AMPHORA_ID, conf)
    served = mock.Mock(spec=x509.Certificate)
    served.not_valid_after_utc = (
        datetime.datetime.now(datetime.timezone.utc) + expires_in)
    agent = mock.MagicMock()
    agent.served_certificate.return_value = served
    agent.__enter__.return_value = agent
    return agent, pem


def test_a_certificate_inside_the_buffer_is_renewed_for_the_same_id(conf):
    agent, _pem = _agent(conf, expires_in=DAY)
    renewed = certificates.rotate_if_expiring(agent, AMPHORA_ID, conf)
    [call] = agent.upload_certificate.call_args_list
    uploaded = call.args[0]
    assert 'PRIVATE KEY' in uploaded
    new = x509.load_pem_x509_certificate(uploaded.encode())
    assert new.subject.rfc4514_string() == f'CN={AMPHORA_ID}'
    assert renewed == new.not_valid_after_utc
    assert renewed - datetime.datetime.now(datetime.timezone.utc) > 29 * DAY


def test_a_certificate_outside_the_buffer_is_left_alone(conf):
    agent, _pem = _agent(conf, expires_in=20 * DAY)
    assert certificates.rotate_if_expiring(agent, AMPHORA_ID, conf) is None
    agent.upload_certificate.assert_not_called()


def everything():
    """A health group of one: this worker checks every amphora."""
    group = mock.Mock()
    group.owned.side_effect = set
    return group


def test_a_round_checks_only_this_workers_share(conf):
    group = mock.Mock()
    group.owned.return_value = {'lb-mine'}
    mine = mock.Mock(id='server-mine', metadata={
        'sriov_octavia_amphora_id': 'amp-mine'})
    theirs = mock.Mock(id='server-theirs', metadata={
        'sriov_octavia_amphora_id': 'amp-theirs'})
    agent, _pem = _agent(conf, expires_in=DAY)
    with mock.patch('sriov_octavia.clients.connection'), \
            mock.patch.object(certificates.amphorae,
                              'servers_by_loadbalancer',
                              return_value={'lb-mine': [mine],
                                            'lb-theirs': [theirs]}), \
            mock.patch.object(certificates.amphorae, 'server_agent',
                              return_value=agent) as agents:
        assert certificates.rotate_once(conf, group) == 1
    assert [call.args[1] for call in agents.call_args_list] == [mine]


def test_a_round_goes_on_past_an_unreachable_amphora(conf, caplog):
    servers = [mock.Mock(id=f'server-{n}', metadata={
        'sriov_octavia_amphora_id': f'amp-{n}'}) for n in (1, 2)]
    servers.append(mock.Mock(id='server-old', metadata={}))
    gone = mock.MagicMock()
    gone.__enter__.return_value = gone
    gone.served_certificate.side_effect = agent_client.AgentUnreachable(
        'https://198.18.0.5:9443', 'no route')
    expiring, _pem = _agent(conf, expires_in=DAY)
    with mock.patch('sriov_octavia.clients.connection'), \
            mock.patch.object(certificates.amphorae,
                              'servers_by_loadbalancer',
                              return_value={'lb': servers}), \
            mock.patch.object(certificates.amphorae, 'server_agent',
                              side_effect=[gone, expiring]) as agents:
        assert certificates.rotate_once(conf, everything()) == 1
    # The amphora without an id (booted before ids) is not asked.
    assert agents.call_count == 2
    assert 'Amphora amp-1 (server server-1): certificate not checked' in (
        caplog.text)
    expiring.upload_certificate.assert_called_once()
