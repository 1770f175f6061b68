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
"""Reading haproxy's ``show stat`` answer.

The sample is what haproxy 2.6 answered for a frontend with a backend of
three servers (checked and down, unchecked, disabled) and a ``listen``
section.
"""

import os
import socket
import threading

import pytest

from amphora_agent.engine import errors
from amphora_agent.engine import stats

SAMPLE = os.path.join(os.path.dirname(__file__), 'data',
                      'haproxy-2.6-show-stat.csv')


@pytest.fixture
def sample():
    with open(SAMPLE) as csv_file:
        return csv_file.read()


def test_frontends_with_their_counters(sample):
    frontends = stats.parse(sample)['frontends']

    assert frontends == {
        'listener-1': {'status': 'OPEN', 'scur': 0, 'stot': 0, 'bin': 0,
                       'bout': 0, 'ereq': 0},
        'listener-2': {'status': 'OPEN', 'scur': 0, 'stot': 0, 'bin': 0,
                       'bout': 0, 'ereq': 0}}


def test_backends_with_their_servers(sample):
    backends = stats.parse(sample)['backends']

    assert backends['pool-1:listener-1'] == {
        'status': 'UP',
        'servers': {
            'member-1': {'status': 'DOWN', 'check_status': 'L4CON'},
            'member-2': {'status': 'no check', 'check_status': ''},
            'member-3': {'status': 'MAINT', 'check_status': ''}}}
    # A listen section is a frontend and a backend of the same name.
    assert backends['listener-2'] == {
        'status': 'DOWN',
        'servers': {'member-4': {'status': 'DOWN',
                                 'check_status': 'L4CON'}}}


def test_counters_are_numbers():
    text = ('# pxname,svname,scur,stot,bin,bout,ereq,status,type,'
            'check_status\n'
            'fe,FRONTEND,3,1200,45678,98765,2,OPEN,0,\n'
            'be,BACKEND,,,,,,UP,1,\n')

    parsed = stats.parse(text)

    assert parsed['frontends']['fe'] == {
        'status': 'OPEN', 'scur': 3, 'stot': 1200, 'bin': 45678,
        'bout': 98765, 'ereq': 2}
    assert parsed['backends']['be'] == {'status': 'UP', 'servers': {}}


@pytest.mark.parametrize('text', ['', 'Unknown command.\n'])
def test_an_answer_without_the_header_is_an_error(text):
    with pytest.raises(errors.EngineError):
        stats.parse(text)


def test_show_stat_over_a_unix_socket(tmp_path, sample):
    path = str(tmp_path / 'lb.sock')
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)

        def answer():
            connection, _ = server.accept()
            with connection:
                received.append(connection.recv(100))
                connection.sendall(sample.encode())

        thread = threading.Thread(target=answer)
        thread.start()
        text = stats.show_stat(path, timeout=10)
        thread.join()

    assert received == [b'show stat\n']
    assert text == sample


def test_a_missing_socket_means_not_running(tmp_path):
    with pytest.raises(errors.NotRunning):
        stats.show_stat(str(tmp_path / 'missing.sock'), timeout=1)
