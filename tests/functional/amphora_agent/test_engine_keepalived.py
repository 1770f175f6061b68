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
"""keepalived driven through two real agents, VRRP over unicast.

Two amphora data namespaces and a client hang off one bridge; each agent
runs keepalived in its namespace with the other as unicast peer. The VIP
must sit on the MASTER only and move to the BACKUP when the MASTER fails.
"""

import os
import types

import pytest

from amphora_agent.engine import layout
from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import engine_lab

VIP = '203.0.113.100'
ADDRESSES = {'a': '203.0.113.11', 'b': '203.0.113.12'}
PRIORITIES = {'a': 200, 'b': 100}
CLIENT = '203.0.113.20'


def keepalived_config(name, check_script):
    peer = ADDRESSES['b' if name == 'a' else 'a']
    return f'''global_defs {{
    router_id teng_{name}
    script_user root
    enable_script_security
}}
vrrp_script check_haproxy {{
    script "{check_script}"
    interval 1
    fall 2
    rise 1
}}
vrrp_instance loadbalancer {{
    state {'MASTER' if name == 'a' else 'BACKUP'}
    interface vf0
    virtual_router_id 51
    priority {PRIORITIES[name]}
    advert_int 1
    unicast_src_ip {ADDRESSES[name]}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {VIP}/24 dev vf0
    }}
    track_script {{
        check_haproxy
    }}
}}
'''


@pytest.fixture(scope='module')
def pair(tmp_path_factory, pki):
    lab = netlab.Lab(engine_lab.PREFIX)
    agents = {}
    try:
        switch = lab.namespace('sw')
        client = lab.namespace('kcli')
        namespaces = {}
        for name, address in ADDRESSES.items():
            namespaces[name] = lab.namespace(f'amp-{name}')
            lab.veth(namespaces[name], 'vf0', switch, f'port-{name}')
            netlab.add_address(namespaces[name], 'vf0', f'{address}/24')
        lab.veth(client, 'eth0', switch, 'port-cli')
        netlab.add_address(client, 'eth0', f'{CLIENT}/24')
        lab.bridge(switch, 'br0', ports=['port-a', 'port-b', 'port-cli'])
        for name, namespace in namespaces.items():
            agents[name] = engine_lab.start_agent(
                str(tmp_path_factory.mktemp(f'vrrp-agent-{name}')), pki,
                namespace, f'k{name}')
        yield types.SimpleNamespace(lab=lab, switch=switch, client=client,
                                    namespaces=namespaces, agents=agents)
    finally:
        for agent in agents.values():
            engine_lab.stop_agent(agent)
        for name in ('amp-a', 'amp-b', 'sw', 'kcli'):
            engine_lab.end_processes(lab.name(name))
        lab.close()


@pytest.fixture
def apis(pair, pki):
    clients = {name: agent_client.AgentClient(agent.url, pki.client, pki.ca,
                                              retries=0)
               for name, agent in pair.agents.items()}
    yield clients
    for name, api in clients.items():
        api.vrrp_action('stop')
        netlab.set_up(pair.switch, f'port-{name}')
        api.close()


def holders(pair):
    """The amphorae whose VF holds the VIP."""
    return sorted(name for name, namespace in pair.namespaces.items()
                  if f' {VIP}/' in engine_lab.addresses(namespace, 'vf0'))


def start_both(pair, apis):
    for name, api in apis.items():
        script = api.get_info()['vrrp_check_script']
        api.upload_keepalived_config(keepalived_config(name, script))
        assert api.vrrp_action('start')['message'] == 'OK'
    # Only the MASTER holds the VIP, and the client reaches it there.
    assert engine_lab.wait_until(lambda: holders(pair) == ['a'])


def kill_the_master(pair, apis):
    """Start both, then stop a's agent and kill a's keepalived.

    Killed, keepalived released nothing; the BACKUP takes over regardless.
    Returns a's agent, stopped.
    """
    start_both(pair, apis)
    agent = pair.agents['a']
    agent.stop()
    engine_lab.end_processes(pair.namespaces['a'], 'keepalived')
    assert engine_lab.wait_until(lambda: 'b' in holders(pair))
    return agent


def client_reaches_vip(pair):
    return netlab.run(pair.client, ['ping', '-c', '1', '-W', '1', VIP],
                      check=False).returncode == 0


def test_invalid_keepalived_config_is_refused(pair, apis):
    response = pair.agents['a'].request(
        'PUT', '/1.0/vrrp/upload',
        data='vrrp_instance broken {\n    interface\n}\nno_such_keyword\n')

    assert response.status_code == 400
    error = response.json()
    assert error['field'] == 'config'
    assert "Unknown keyword 'no_such_keyword'" in error['details']
    with pytest.raises(agent_client.AgentRejected) as raised:
        apis['a'].upload_keepalived_config('no_such_keyword\n')
    assert raised.value.field == 'config'


def test_vip_moves_to_the_backup_when_the_master_link_fails(pair, apis):
    start_both(pair, apis)
    assert engine_lab.wait_until(lambda: client_reaches_vip(pair))

    netlab.run(pair.switch, ['ip', 'link', 'set', 'port-a', 'down'])

    assert engine_lab.wait_until(lambda: 'b' in holders(pair))
    assert engine_lab.wait_until(lambda: client_reaches_vip(pair))


def test_stopping_the_master_hands_the_vip_over(pair, apis):
    start_both(pair, apis)

    apis['a'].vrrp_action('stop')

    assert engine_lab.wait_until(lambda: holders(pair) == ['b'])
    assert engine_lab.wait_until(lambda: client_reaches_vip(pair))
    # Started again, the MASTER takes its VIP back (higher priority).
    apis['a'].vrrp_action('start')
    assert engine_lab.wait_until(lambda: holders(pair) == ['a'])


def test_dead_haproxy_on_the_master_hands_the_vip_over(pair, apis):
    agent = pair.agents['a']
    loadbalancer = 'lb-vrrp'
    apis['a'].upload_haproxy_config(
        'amphora-a', loadbalancer,
        'global\n'
        f'    stats socket {agent.base_path}/{loadbalancer}.sock\n'
        'defaults\n    mode tcp\n    timeout connect 1s\n'
        '    timeout client 10s\n    timeout server 10s\n'
        f'listen listener-1\n    bind {VIP}:45550\n'
        '    server member-1 203.0.113.30:45551\n')
    apis['a'].loadbalancer_action(loadbalancer, 'start')
    try:
        start_both(pair, apis)
        status = apis['a'].get_loadbalancer_status(loadbalancer)
        assert status['frontends']['listener-1']['status'] == 'OPEN'

        # A running agent would start haproxy again at once: the check
        # script is what tells keepalived while it cannot.
        agent.stop()
        try:
            engine_lab.end_processes(pair.namespaces['a'], 'haproxy')
            assert engine_lab.wait_until(lambda: holders(pair) == ['b'])
        finally:
            agent.start()
    finally:
        apis['a'].delete_loadbalancer(loadbalancer)


def test_agent_start_brings_back_a_keepalived_that_died(pair, apis):
    agent = kill_the_master(pair, apis)

    agent.start()

    assert engine_lab.wait_until(lambda: holders(pair) == ['a'])


def test_pid_files_naming_live_processes_do_not_keep_it_stopped(pair, apis):
    agent = kill_the_master(pair, apis)
    # As when the dead keepalived's processes are zombies nobody reaped
    # yet, or their pids went to other programs: keepalived itself would
    # take them for a keepalived already running and quietly exit.
    paths = layout.Layout(agent.base_path)
    for process in ('keepalived', 'vrrp', 'checkers', 'bfd'):
        with open(paths.keepalived_pid_file(process), 'w') as pid_file:
            pid_file.write(f'{os.getpid()}\n')

    agent.start()

    assert engine_lab.wait_until(lambda: holders(pair) == ['a'])


def test_the_running_agent_puts_back_and_restarts_keepalived(pair, apis):
    start_both(pair, apis)
    api = apis['a']
    before = api.get_info()['engine_repairs']['count']
    path = layout.Layout(pair.agents['a'].base_path).keepalived_config
    with open(path) as config:
        uploaded = config.read()
    with open(path, 'w') as config:
        config.write(uploaded.replace('priority', 'priority 1 #'))
    # A hand edit is undone, a dead keepalived started again: the master
    # holds the VIP once more.
    engine_lab.end_processes(pair.namespaces['a'], 'keepalived')

    def put_back():
        with open(path) as config:
            return config.read() == uploaded
    assert engine_lab.wait_until(put_back)
    # The count moves once the whole check is done (keepalived restarted),
    # after the file is back: and 'a' may still hold the VIP from before
    # its keepalived died, so neither says the repair is counted yet.
    assert engine_lab.wait_until(
        lambda: api.get_info()['engine_repairs']['count'] > before)
    assert engine_lab.wait_until(lambda: holders(pair) == ['a'])
