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
"""haproxy driven through the real agent API, with real traffic.

A client namespace reaches the amphora's data namespace over one veth,
members (python's http.server and an echo server) sit behind another;
haproxy runs in the data namespace as the agent starts it.
"""

import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from sriov_octavia.amphora import client as agent_client
from tests.functional.amphora_agent import engine_lab
from tests.functional.amphora_agent import firewall_lab

MEMBER_1 = '198.51.100.5'
MEMBER_2 = '198.51.100.6'
HTTP_PORT = 45530
ECHO_PORT = 45531
LISTENER_PORT = 45540
TCP_LISTENER_PORT = 45541
EXTRA_LISTENER_PORT = 45542
AMPHORA_ID = 'amphora-1'


@pytest.fixture(scope='module')
def lab(tmp_path_factory, pki):
    with engine_lab.amphora_lab(tmp_path_factory, pki, 'h',
                                members=(f'{MEMBER_1}/24',
                                         f'{MEMBER_2}/24')) as lab:
        content = tmp_path_factory.mktemp('www')
        (content / 'hello.txt').write_text('hello from a member\n')
        lab.content = str(content)
        yield lab


@pytest.fixture
def agent(lab):
    return lab.agent


@pytest.fixture
def loadbalancer(request, api):
    """A load balancer id of this test, deleted from the agent after it."""
    loadbalancer_id = 'lb-' + re.sub(r'[^a-z0-9]', '-',
                                     request.node.name.lower())[-40:]
    yield loadbalancer_id
    api.delete_loadbalancer(loadbalancer_id)


@pytest.fixture
def http_servers(lab):
    """Start an http.server on a member address; stopped by PID after."""
    servers = []

    def start(address):
        servers.append(engine_lab.HttpServer(lab.member, address, HTTP_PORT,
                                             lab.content))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def haproxy_config(agent, loadbalancer_id, servers=(MEMBER_1,), extra=''):
    """What the controller renders, in haproxy's own words."""
    lines = [
        'global',
        '    maxconn 1000',
        f'    stats socket {agent.base_path}/{loadbalancer_id}.sock '
        'mode 0600 level user',
        'defaults',
        '    mode http',
        '    timeout connect 2s',
        '    timeout client 120s',
        '    timeout server 120s',
        'frontend listener-1',
        f'    bind {engine_lab.VIP}:{LISTENER_PORT}',
        '    default_backend pool-1:listener-1',
        'backend pool-1:listener-1',
    ]
    lines += [f'    server member-{number} {address}:{HTTP_PORT} '
              'check inter 300 fall 1 rise 1'
              for number, address in enumerate(servers, 1)]
    return '\n'.join(lines) + '\n' + extra


def upload_and_start(agent, api, loadbalancer):
    """Store the listener's configuration and start haproxy with it."""
    api.upload_haproxy_config(AMPHORA_ID, loadbalancer,
                              haproxy_config(agent, loadbalancer))
    api.loadbalancer_action(loadbalancer, 'start')


def listener_url(port=LISTENER_PORT):
    return f'http://{engine_lab.VIP}:{port}/hello.txt'


def serves(lab, port=LISTENER_PORT):
    return engine_lab.http_get(lab.client, listener_url(port)) == (
        200, 'hello from a member\n')


def haproxy_pid(agent, loadbalancer_id):
    path = os.path.join(agent.base_path, 'loadbalancers', loadbalancer_id,
                        'haproxy.pid')
    with open(path) as pid_file:
        return int(pid_file.read().split()[0])


def test_info_reports_the_engine(agent):
    version = subprocess.run(['haproxy', '-v'], capture_output=True,
                             text=True, check=True).stdout

    info = agent.request('GET', '/1.0/info').json()

    assert re.match(r'\d+\.\d+\.\d+$', info['haproxy_version'])
    assert f"version {info['haproxy_version']}" in version
    assert info['haproxy_base_path'] == agent.base_path
    script = info['vrrp_check_script']
    assert os.path.isabs(script) and os.access(script, os.X_OK)
    assert subprocess.run([script]).returncode == 0


def test_uploaded_config_serves_http(lab, agent, api, loadbalancer,
                                     http_servers):
    http_servers(MEMBER_1)

    answer = api.upload_haproxy_config(AMPHORA_ID, loadbalancer,
                                       haproxy_config(agent, loadbalancer))

    assert answer['message'] == 'OK'
    # Storing starts nothing.
    assert engine_lab.http_get(lab.client, listener_url())[0] == 0
    assert api.get_loadbalancer_status(loadbalancer) is None

    started = api.loadbalancer_action(loadbalancer, 'start')

    assert started['message'] == 'OK'
    assert engine_lab.wait_until(lambda: serves(lab))
    # haproxy runs inside the data namespace, not beside the agent.
    assert haproxy_pid(agent, loadbalancer) in engine_lab.namespace_pids(
        lab.amp)


def test_invalid_config_is_refused_and_the_old_one_keeps_serving(
        lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    good = haproxy_config(agent, loadbalancer)
    api.upload_haproxy_config(AMPHORA_ID, loadbalancer, good)
    api.loadbalancer_action(loadbalancer, 'start')
    assert engine_lab.wait_until(lambda: serves(lab))

    response = agent.request(
        'PUT', f'/1.0/loadbalancer/{AMPHORA_ID}/{loadbalancer}/haproxy',
        data=good + '    bogus_keyword 1\n')

    assert response.status_code == 400
    error = response.json()
    assert error['field'] == 'config'
    assert "unknown keyword 'bogus_keyword'" in error['details']
    with pytest.raises(agent_client.AgentRejected) as raised:
        api.upload_haproxy_config(AMPHORA_ID, loadbalancer,
                                  good + 'listen\n')
    assert raised.value.status == 400
    assert 'listen' in raised.value.reason
    # The stored configuration is still the good one: a reload keeps
    # serving it.
    api.loadbalancer_action(loadbalancer, 'reload')
    assert engine_lab.wait_until(lambda: serves(lab))
    stored = os.path.join(agent.base_path, 'loadbalancers', loadbalancer,
                          'haproxy.cfg')
    with open(stored) as config:
        assert config.read() == good


def test_a_reload_that_does_not_start_is_an_error_and_the_old_one_serves(
        lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    good = haproxy_config(agent, loadbalancer)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    master = haproxy_pid(agent, loadbalancer)
    # "haproxy -c" accepts it; at start haproxy cannot get the open files
    # 200000 connections need (this machine allows 20000, an amphora
    # whatever its unit sets).
    greedy = good.replace('    maxconn 1000', '    maxconn 200000')
    api.upload_haproxy_config(AMPHORA_ID, loadbalancer, greedy)

    with pytest.raises(agent_client.AgentError) as raised:
        api.loadbalancer_action(loadbalancer, 'reload')

    assert 'kept its previous configuration' in str(raised.value)
    assert haproxy_pid(agent, loadbalancer) == master
    assert serves(lab)


class EchoServer(firewall_lab.BackgroundServer):
    """Echoes every line on every connection, until closed."""

    def __init__(self, namespace, address, port):
        super().__init__(namespace, address, port, socket.SOCK_STREAM)
        self.connections = []
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._echo, args=(connection,),
                             daemon=True).start()

    @staticmethod
    def _echo(connection):
        with connection:
            try:
                while True:
                    data = connection.recv(4096)
                    if not data:
                        return
                    connection.sendall(data)
            except OSError:
                return

    def close(self):
        super().close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def tcp_listener(port):
    return (f'frontend tcp-{port}\n'
            '    mode tcp\n'
            f'    bind {engine_lab.VIP}:{port}\n'
            '    default_backend echo\n')


ECHO_BACKEND = ('backend echo\n'
                '    mode tcp\n'
                f'    server member-1 {MEMBER_1}:{ECHO_PORT}\n')


def echo_once(connection, text):
    connection.sendall(text)
    return firewall_lab.receive(connection, len(text))


def connect(lab, port):
    connection = firewall_lab.open_socket(lab.client, socket.AF_INET,
                                          socket.SOCK_STREAM)
    connection.settimeout(engine_lab.PATIENCE)
    try:
        connection.connect((engine_lab.VIP, port))
    except OSError:
        connection.close()
        return None
    return connection


def test_reload_keeps_an_established_connection(lab, agent, api,
                                                loadbalancer):
    echo = EchoServer(lab.member, MEMBER_1, ECHO_PORT)
    try:
        first = (haproxy_config(agent, loadbalancer) +
                 tcp_listener(TCP_LISTENER_PORT) + ECHO_BACKEND)
        api.upload_haproxy_config(AMPHORA_ID, loadbalancer, first)
        api.loadbalancer_action(loadbalancer, 'start')
        connection = engine_lab.wait_until(
            lambda: connect(lab, TCP_LISTENER_PORT))
        with connection:
            assert echo_once(connection, b'before\n') == b'before\n'

            api.upload_haproxy_config(
                AMPHORA_ID, loadbalancer,
                first + tcp_listener(EXTRA_LISTENER_PORT))
            api.loadbalancer_action(loadbalancer, 'reload')
            # The new listener answering shows the new workers serve.
            extra = engine_lab.wait_until(
                lambda: connect(lab, EXTRA_LISTENER_PORT))
            with extra:
                assert echo_once(extra, b'new\n') == b'new\n'

            assert echo_once(connection, b'after\n') == b'after\n'
    finally:
        echo.close()


def test_status_reports_servers_and_a_dead_one_goes_down(
        lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    second = http_servers(MEMBER_2)
    api.upload_haproxy_config(
        AMPHORA_ID, loadbalancer,
        haproxy_config(agent, loadbalancer, servers=(MEMBER_1, MEMBER_2)))
    api.loadbalancer_action(loadbalancer, 'start')

    def servers():
        status = api.get_loadbalancer_status(loadbalancer)
        backend = (status or {}).get('backends', {}).get(
            'pool-1:listener-1', {})
        return {name: server['status']
                for name, server in backend.get('servers', {}).items()}

    assert engine_lab.wait_until(
        lambda: servers() == {'member-1': 'UP', 'member-2': 'UP'})
    assert engine_lab.wait_until(lambda: serves(lab))
    status = api.get_loadbalancer_status(loadbalancer)
    frontend = status['frontends']['listener-1']
    assert frontend['status'] == 'OPEN'
    assert frontend['stot'] >= 1 and frontend['bout'] > 0
    assert status['backends']['pool-1:listener-1']['status'] == 'UP'

    second.stop()

    assert engine_lab.wait_until(
        lambda: servers() == {'member-1': 'UP', 'member-2': 'DOWN'})
    member_2 = api.get_loadbalancer_status(loadbalancer)['backends'][
        'pool-1:listener-1']['servers']['member-2']
    assert member_2['check_status'] == 'L4CON'
    assert serves(lab)


def test_delete_stops_haproxy_and_forgets_it(lab, agent, api,
                                             loadbalancer, http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    pid = haproxy_pid(agent, loadbalancer)

    assert api.delete_loadbalancer(loadbalancer)['message'] == 'OK'

    assert pid not in engine_lab.namespace_pids(lab.amp)
    assert engine_lab.http_get(lab.client, listener_url())[0] == 0
    assert api.get_loadbalancer_status(loadbalancer) is None
    assert not os.path.exists(os.path.join(
        agent.base_path, 'loadbalancers', loadbalancer))
    response = agent.request('PUT', f'/1.0/loadbalancer/{loadbalancer}/start')
    assert response.status_code == 404
    assert response.json()['field'] == 'loadbalancer_id'
    # Deleting again succeeds.
    assert api.delete_loadbalancer(loadbalancer)['message'] == 'OK'


def test_stop_and_start_again(lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))

    api.loadbalancer_action(loadbalancer, 'stop')

    assert engine_lab.http_get(lab.client, listener_url())[0] == 0
    assert api.get_loadbalancer_status(loadbalancer) is None
    # Stopping a stopped one is no error.
    assert api.loadbalancer_action(loadbalancer, 'stop')['message'] == 'OK'
    api.loadbalancer_action(loadbalancer, 'start')
    assert engine_lab.wait_until(lambda: serves(lab))


@pytest.mark.parametrize('method, path, status, field', [
    ('PUT', '/1.0/loadbalancer/lb-unknown/start', 404, 'loadbalancer_id'),
    ('PUT', '/1.0/loadbalancer/lb-unknown/reload', 404, 'loadbalancer_id'),
    ('GET', '/1.0/loadbalancer/lb-unknown/status', 404, 'loadbalancer_id'),
    ('PUT', '/1.0/loadbalancer/lb-unknown/explode', 400, 'action'),
    ('PUT', '/1.0/loadbalancer/amp/lb.bad/haproxy', 400, 'loadbalancer_id'),
    ('GET', '/1.0/loadbalancer/lb-unknown/start', 405, 'method'),
    ('PUT', '/1.0/loadbalancer/amp/lb/haproxy/more', 404, 'path'),
    ('PUT', '/1.0/vrrp/explode', 400, 'action'),
    ('PUT', '/1.0/vrrp/start', 409, 'config'),
], ids=['start-unknown', 'reload-unknown', 'status-unknown', 'bad-action',
        'bad-id', 'wrong-method', 'too-long', 'bad-vrrp-action',
        'vrrp-without-config'])
def test_refusals(agent, method, path, status, field):
    # Only the configuration upload reads a body.
    body = 'global\n' if path.endswith('/haproxy') else None
    response = agent.request(method, path, data=body)

    assert response.status_code == status
    assert response.json()['field'] == field


def test_non_utf8_config_is_refused(agent, loadbalancer):
    response = agent.request(
        'PUT', f'/1.0/loadbalancer/{AMPHORA_ID}/{loadbalancer}/haproxy',
        data=b'global\n    \xff\n')

    assert response.status_code == 400
    assert response.json()['field'] == 'body'


def test_check_script_fails_while_a_started_haproxy_is_dead(
        lab, agent, api, loadbalancer):
    script = agent.request('GET', '/1.0/info').json()['vrrp_check_script']
    upload_and_start(agent, api, loadbalancer)
    assert subprocess.run([script]).returncode == 0

    # A running agent would start haproxy again within a second: the
    # script is what tells keepalived while the agent cannot.
    agent.stop()
    try:
        os.kill(haproxy_pid(agent, loadbalancer), signal.SIGKILL)
        assert engine_lab.wait_until(
            lambda: subprocess.run([script]).returncode != 0)
    finally:
        agent.start()
    # Stopped on purpose, it no longer counts.
    api.loadbalancer_action(loadbalancer, 'stop')
    assert subprocess.run([script]).returncode == 0


def test_haproxy_outlives_an_agent_restart(lab, agent, api, loadbalancer,
                                           http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    pid = haproxy_pid(agent, loadbalancer)

    agent.stop()
    assert serves(lab)
    agent.start()

    # The new agent finds it running: start reloads the same master.
    assert api.get_loadbalancer_status(loadbalancer) is not None
    answer = api.loadbalancer_action(loadbalancer, 'start')
    assert f'pid {pid}' in answer['details']
    assert engine_lab.wait_until(lambda: serves(lab))


def test_agent_start_brings_back_a_haproxy_that_died(lab, agent, api,
                                                     loadbalancer,
                                                     http_servers):
    # As after an amphora reboot: the agent is down, haproxy has gone.
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    agent.stop()
    engine_lab.end_processes(lab.amp, 'haproxy')
    assert engine_lab.wait_until(
        lambda: engine_lab.http_get(lab.client, listener_url())[0] == 0)

    agent.start()

    assert engine_lab.wait_until(lambda: serves(lab))
    assert haproxy_pid(agent, loadbalancer) in engine_lab.namespace_pids(
        lab.amp)


def test_agent_start_leaves_a_stopped_haproxy_stopped(lab, agent, api,
                                                      loadbalancer,
                                                      http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    api.loadbalancer_action(loadbalancer, 'stop')

    agent.stop()
    agent.start()

    assert api.get_loadbalancer_status(loadbalancer) is None
    assert engine_lab.http_get(lab.client, listener_url())[0] == 0


def engine_repairs(api):
    return api.get_info()['engine_repairs']['count']


def test_a_config_changed_by_hand_is_put_back_and_reloaded(
        lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    before = engine_repairs(api)
    path = os.path.join(agent.base_path, 'loadbalancers', loadbalancer,
                        'haproxy.cfg')
    with open(path) as config:
        uploaded = config.read()
    with open(path, 'w') as config:
        config.write(uploaded.replace(f':{LISTENER_PORT}', ':9'))

    def put_back():
        with open(path) as config:
            return config.read() == uploaded
    assert engine_lab.wait_until(put_back)
    assert engine_lab.wait_until(lambda: engine_repairs(api) == before + 1)
    assert serves(lab)
    assert 'changed' in api.get_info()['engine_repairs']['last_difference']


def test_a_haproxy_that_died_is_started_again_by_the_running_agent(
        lab, agent, api, loadbalancer, http_servers):
    http_servers(MEMBER_1)
    upload_and_start(agent, api, loadbalancer)
    assert engine_lab.wait_until(lambda: serves(lab))
    before = engine_repairs(api)
    engine_lab.end_processes(lab.amp, 'haproxy')

    assert engine_lab.wait_until(lambda: serves(lab))
    # Counted once the whole check is done, which may be after haproxy
    # serves again.
    assert engine_lab.wait_until(lambda: engine_repairs(api) > before)
    assert 'not running' in api.get_info()['engine_repairs'][
        'last_difference']
    # A stopped haproxy is not "repaired".
    api.loadbalancer_action(loadbalancer, 'stop')
    counted = engine_repairs(api)
    assert not engine_lab.wait_until(lambda: engine_repairs(api) > counted,
                                     patience=3)
