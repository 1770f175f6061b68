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
"""The real ``amphora-sriov-agent`` process, over real mutual TLS.

Each test starts the console script on a namespace with a veth "VF" and
talks to it the way the controller does: HTTPS with a client certificate.
"""

import concurrent.futures
import json
import os
import signal
import socket
import ssl

import pytest
import requests

from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest

LISTENER_PORT = 8080


def native_body(amphora, allowed=('203.0.113.20/32',)):
    return {
        'vip_interfaces': [amphora.vip, amphora.vip6],
        'listeners': [{'protocol': 'TCP', 'port': LISTENER_PORT,
                       'allowed_cidrs': list(allowed)}],
        'vrrp_peers': ['203.0.113.11'],
        'members': [],
    }


def nft_ruleset(namespace):
    # -s: without counter values, which any stray packet (neighbour
    # discovery, a retransmission) may move between two looks.
    return netlab.run(namespace, ['nft', '-s', 'list', 'ruleset']).stdout


def test_client_without_certificate_is_refused(agent, pki):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(agent.url + '/1.0/info', verify=pki.ca, timeout=30)


def test_client_certificate_from_another_ca_is_refused(agent, pki):
    with pytest.raises(requests.exceptions.SSLError):
        agent.request('GET', '/1.0/info', cert=pki.foreign_client)


def test_refused_handshakes_do_not_stop_the_agent(agent, pki):
    for cert in (None, pki.foreign_client):
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(agent.url + '/1.0/info', cert=cert, verify=pki.ca,
                         timeout=30)

    assert agent.request('GET', '/1.0/info').status_code == 200
    assert 'TLS handshake with 127.0.0.1 refused' in agent.log()


def test_info_names_the_agent(agent, amphora):
    response = agent.request('GET', '/1.0/info')

    assert response.status_code == 200
    # Nothing about the Python or library versions inside.
    assert response.headers['Server'] == 'gunicorn'
    info = response.json()
    assert info['hostname'] == socket.gethostname()
    assert info['api_version'] == '1.0'
    assert info['network_namespace'] == amphora.namespace
    assert info['firewall']['stateless'] is True


def test_drop_all_base_before_any_rules(agent, amphora, tcp_service):
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)

    current = agent.request('GET', '/1.0/security-group').json()

    assert current['security_group'] is None
    assert current['interfaces'] == {'vf0': 'member'}
    assert not conftest.connect(amphora.client, '203.0.113.20', amphora.vip,
                                LISTENER_PORT)


def test_posted_rules_filter_real_connections(agent, amphora, tcp_service):
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)

    response = agent.request('POST', '/1.0/security-group',
                             json=native_body(amphora))

    assert response.status_code == 200, response.text
    assert conftest.connect(amphora.client, '203.0.113.20', amphora.vip,
                            LISTENER_PORT)
    assert not conftest.connect(amphora.client, '203.0.113.21', amphora.vip,
                                LISTENER_PORT)
    counters = agent.request('GET', '/1.0/security-group/counters').json()
    listener = counters['listeners'][f'TCP:{LISTENER_PORT}']
    assert listener['accepted']['packets'] > 0
    assert listener['dropped']['packets'] > 0


def test_get_returns_what_was_posted(agent, amphora):
    posted = agent.request('POST', '/1.0/security-group',
                           json=native_body(amphora)).json()

    current = agent.request('GET', '/1.0/security-group').json()

    assert current == posted
    group = current['security_group']
    assert group['vip_interfaces'] == [amphora.vip, amphora.vip6]
    assert group['listeners'] == [{'protocol': 'TCP', 'port': LISTENER_PORT,
                                   'allowed_cidrs': ['203.0.113.20/32']}]
    assert current['interfaces'] == {'vf0': 'vip'}
    assert '203.0.113.20' in nft_ruleset(amphora.namespace)


def test_upstream_put_rules(agent, amphora, tcp_service):
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)
    rules = [{'protocol': 'TCP', 'cidr': '203.0.113.21/32',
              'port': LISTENER_PORT},
             {'protocol': 'VRRP', 'cidr': '203.0.113.11/32', 'port': 112}]

    response = agent.request('PUT', f'/1.0/interface/{amphora.vip}/rules',
                             json=rules)

    assert response.status_code == 200, response.text
    assert response.json()['message'] == 'OK'
    group = agent.request('GET', '/1.0/security-group').json()[
        'security_group']
    assert group['listeners'][0]['allowed_cidrs'] == ['203.0.113.21/32']
    assert group['vrrp_peers'] == ['203.0.113.11/32']
    assert conftest.connect(amphora.client, '203.0.113.21', amphora.vip,
                            LISTENER_PORT)
    assert not conftest.connect(amphora.client, '203.0.113.20', amphora.vip,
                                LISTENER_PORT)


def test_upstream_put_for_an_unknown_address_is_404(agent):
    response = agent.request('PUT', '/1.0/interface/203.0.113.99/rules',
                             json=[])

    assert response.status_code == 404
    assert response.json()['field'] == 'ip'


@pytest.mark.parametrize('body, field', [
    ({'vip_interfaces': ['203.0.113.10'], 'listeners': [
        {'protocol': 'TCP', 'port': 8080, 'allowed_cidrs': ['10.0.0.0/33']}]},
     'listeners[0].allowed_cidrs[0]'),
    ({'vip_interfaces': ['203.0.113.99']}, 'vip_interfaces[0]'),
    ({'vip_interfaces': ['203.0.113.10'], 'colour': 'red'}, 'colour'),
], ids=['bad-cidr', 'address-on-no-interface', 'unknown-field'])
def test_bad_request_leaves_the_rules_in_force(agent, amphora, tcp_service,
                                               body, field):
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)
    agent.request('POST', '/1.0/security-group', json=native_body(amphora))
    before = agent.request('GET', '/1.0/security-group').json()
    ruleset_before = nft_ruleset(amphora.namespace)

    response = agent.request('POST', '/1.0/security-group', json=body)

    assert response.status_code == 400
    assert response.json()['field'] == field
    assert agent.request('GET', '/1.0/security-group').json() == before
    assert nft_ruleset(amphora.namespace) == ruleset_before
    assert conftest.connect(amphora.client, '203.0.113.20', amphora.vip,
                            LISTENER_PORT)


def test_malformed_json_over_the_wire(agent):
    response = agent.request('POST', '/1.0/security-group',
                             data=b'{"vip_interfaces": [',
                             headers={'Content-Type': 'application/json'})

    assert response.status_code == 400
    assert response.json()['field'] == 'body'


def test_chunked_body_is_decoded(agent, amphora):
    encoded = json.dumps(native_body(amphora)).encode()
    pieces = (encoded[i:i + 7] for i in range(0, len(encoded), 7))

    response = agent.request('POST', '/1.0/security-group', data=pieces,
                             headers={'Content-Type': 'application/json'})

    assert response.request.headers['Transfer-Encoding'] == 'chunked'
    assert response.status_code == 200, response.text
    assert response.json()['security_group']['vip_interfaces'] == [
        amphora.vip, amphora.vip6]


def _raw_request(agent, pki, head, body=b''):
    """Send raw HTTP over mutual TLS; return the status line."""
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client)
    with socket.create_connection((agent.host, agent.port), 30) as plain:
        with context.wrap_socket(plain, server_hostname=agent.host) as tls:
            tls.sendall(head + body)
            return tls.makefile('rb').readline()


def test_declared_oversized_body_is_413_without_sending_it(agent, pki):
    # Only the headers are sent: the answer cannot wait for the body.
    head = (b'POST /1.0/security-group HTTP/1.1\r\nHost: agent\r\n'
            b'Content-Type: application/json\r\n'
            b'Content-Length: 1000000000\r\n\r\n')

    assert b' 413 ' in _raw_request(agent, pki, head)


def test_oversized_chunked_body_is_413(agent, pki):
    head = (b'POST /1.0/security-group HTTP/1.1\r\nHost: agent\r\n'
            b'Content-Type: application/json\r\n'
            b'Transfer-Encoding: chunked\r\n\r\n')
    # Twice the agent's 4096-byte limit, in 1 KiB chunks, never ended: the
    # agent must answer from what it has read.
    chunks = b'400\r\n' + b' ' * 1024 + b'\r\n'

    assert b' 413 ' in _raw_request(agent, pki, head, chunks * 8)


def test_restart_keeps_the_rules(agent_factory, amphora, tcp_service):
    tcp_service(amphora.namespace, '0.0.0.0', LISTENER_PORT)
    first = agent_factory()
    posted = first.request('POST', '/1.0/security-group',
                           json=native_body(amphora)).json()

    assert first.stop() == 0
    # The firewall outlives the agent...
    assert '203.0.113.20' in nft_ruleset(amphora.namespace)
    assert not conftest.connect(amphora.client, '203.0.113.21', amphora.vip,
                                LISTENER_PORT)

    second = agent_factory()
    current = second.request('GET', '/1.0/security-group').json()

    # ...and the next agent restores and reports the same state.
    assert current['security_group'] == posted['security_group']
    assert current['generation'] == posted['generation']
    assert '203.0.113.20' in nft_ruleset(amphora.namespace)
    assert conftest.connect(amphora.client, '203.0.113.20', amphora.vip,
                            LISTENER_PORT)
    assert not conftest.connect(amphora.client, '203.0.113.21', amphora.vip,
                                LISTENER_PORT)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_agent_cleanly(agent, signum):
    assert agent.stop(signum) == 0

    log = agent.log()
    assert f'Received {signal.Signals(signum).name}, stopping' in log
    assert 'Amphora agent stopped' in log
    assert 'Traceback' not in log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((agent.host, agent.port), 5).close()


def test_concurrent_posts_end_in_one_consistent_state(agent, amphora):
    def post(port):
        body = native_body(amphora)
        body['listeners'][0]['port'] = port
        return agent.request('POST', '/1.0/security-group', json=body)

    ports = range(9001, 9009)
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
        answers = [answer.json() for answer in pool.map(post, ports)]

    # Every apply got its own generation; the one in force is the last.
    assert sorted(answer['generation'] for answer in answers) == list(
        range(1, len(ports) + 1))
    last = max(answers, key=lambda answer: answer['generation'])
    current = agent.request('GET', '/1.0/security-group').json()
    assert current == last
    in_force = current['security_group']['listeners'][0]['port']
    ruleset = nft_ruleset(amphora.namespace)
    assert f'tcp . {in_force} ' in ruleset
    assert [port for port in ports
            if f'tcp . {port} ' in ruleset] == [in_force]


def test_unreadable_certificate_stops_the_agent_at_start(agent_factory,
                                                         tmp_path):
    agent = agent_factory(start=False)
    with open(agent.config_file) as conf:
        text = conf.read()
    with open(agent.config_file, 'w') as conf:
        conf.write(text.replace(agent.pki.server,
                                str(tmp_path / 'missing.pem')))

    assert agent.run_to_exit() == 1
    assert 'Cannot load the server certificate' in agent.log()


def test_port_in_use_stops_the_second_agent(agent, agent_factory):
    second = agent_factory(start=False, port=agent.port)

    assert second.run_to_exit() == 1
    assert 'Cannot listen on' in second.log()
    assert agent.request('GET', '/1.0/info').status_code == 200


def test_agent_creates_a_missing_data_namespace(tmp_path, pki):
    # A fresh amphora has no data namespace until the agent makes one.
    namespace = f'tapi-{os.getpid()}-fresh'
    agent = conftest.AgentProcess(str(tmp_path), pki, namespace,
                                  conftest.free_port(conftest.AGENT_PORTS))
    try:
        agent.start()
        assert netlab.namespace_exists(namespace)
        info = agent.request('GET', '/1.0/info').json()
        assert info['network_namespace'] == namespace
        assert 'table inet sriov_octavia' in nft_ruleset(namespace)
    finally:
        agent.stop()
        agent.remove_engine_files()
        if netlab.namespace_exists(namespace):
            netlab.run(None, ['ip', 'netns', 'delete', namespace])
