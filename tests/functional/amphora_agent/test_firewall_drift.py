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
"""Firewall drift against real nftables: found, repaired, counted.

The lab of test_firewall_engine (firewall_lab): an amphora namespace with
a VIP-side and a member-side veth "VF". The table is changed by hand with
the ``nft`` command inside the namespace, as an operator would; what must
and must not pass is decided by real packets.
"""

import json
import os
import time

import pytest

from amphora_agent.firewall import engine
from amphora_agent.firewall import model
from amphora_agent.firewall import render
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest
from tests.functional.amphora_agent import firewall_lab as fl
from tests.unit.amphora_agent import test_firewall_drift as drift_tests

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='needs root for namespaces')

INTERVAL = 1.0
# A repair is due one interval after the change; the rest is room for a
# busy machine, not part of what is checked.
SLACK = 4.0
TABLE = [render.FAMILY, render.TABLE]
WEB = {'protocol': 'TCP', 'port': 80,
       'allowed_cidrs': [fl.ALLOWED4 + '/32', fl.ALLOWED6 + '/128']}
OPEN = {'protocol': 'TCP', 'port': 8000}
PEERS = [fl.PEER4, fl.PEER6]
MEMBERS = fl.MEMBERS


def request(listeners=(WEB, OPEN), members=MEMBERS, vips=(fl.VIP4,)):
    body = {'vip_interfaces': list(vips), 'listeners': list(listeners),
            'vrrp_peers': PEERS}
    if members is not None:
        body['members'] = list(members)
    return model.parse_security_group(body)


# The rule sets of the renderer's tests, and of the engine's (with
# overlapping CIDRs, IPv6 members, ping monitors, both VIP families).
RULE_SETS = dict(drift_tests.RULE_SETS, **{
    'engine request': lambda: request(),
    'engine members unknown': lambda: request(members=None),
    'engine two vips': lambda: request(vips=(fl.VIP4, fl.VIP6)),
    'engine overlapping cidrs': lambda: request(listeners=[
        {'protocol': 'TCP', 'port': 80,
         'allowed_cidrs': ['203.0.113.16/29', '203.0.113.20',
                           '203.0.113.18/31', '10.0.0.0/8', '10.1.0.0/16',
                           '2001:db8:1::20/124', '2001:db8:1::21/128']},
        {'protocol': 'UDP', 'port': 5000,
         'allowed_cidrs': ['203.0.113.20/32', '::/0']}]),
})


@pytest.fixture(scope='module')
def lab():
    with netlab.Lab('tfd') as lab:
        fl.build(lab)
        yield lab


@pytest.fixture(scope='module')
def servers(lab):
    started = [fl.TcpServer(lab.name(fl.AMP), '::', 80),
               fl.TcpServer(lab.name(fl.AMP), '::', 8000)]
    yield
    for server in started:
        server.close()


def start_firewall(lab, tmp_path, interval):
    firewall = engine.Firewall(namespace=lab.name(fl.AMP),
                               state_file=str(tmp_path / 'firewall.json'),
                               vf_link_kinds=('veth',),
                               verify_interval=interval)
    firewall.start()
    return firewall


@pytest.fixture
def firewall(lab, tmp_path):
    """Checked only when the test says so."""
    fw = start_firewall(lab, tmp_path, 0)
    yield fw
    fw.stop()


@pytest.fixture
def watched(lab, tmp_path):
    """Checked every INTERVAL seconds by its own thread."""
    fw = start_firewall(lab, tmp_path, INTERVAL)
    yield fw
    fw.stop()


def nft(lab, *args):
    return netlab.run(lab.name(fl.AMP), ['nft', *args]).stdout


def object_name(lab, kind, suffix):
    """The name of our ``kind`` object ending in ``suffix``."""
    listing = json.loads(nft(lab, '-j', 'list', 'table', *TABLE))
    [name] = [item[kind]['name'] for item in listing['nftables']
              if kind in item and item[kind]['name'].endswith(suffix)]
    return name


def handle_of(lab, chain, text):
    """The handle of the first rule of ``chain`` whose nft text has it."""
    for line in nft(lab, '-a', 'list', 'chain', *TABLE, chain).splitlines():
        if text in line and '# handle' in line:
            return line.rsplit('# handle', 1)[1].strip()
    raise AssertionError(f'no rule with {text!r} in {chain}')


def allowed_connects(lab):
    return fl.tcp_request(lab.name(fl.CLIENT), fl.ALLOWED4, fl.VIP4,
                          80) == b'HTTP/1.0 200 OK'


def refused_is_refused(lab):
    return fl.tcp_refused(lab.name(fl.CLIENT), fl.REFUSED4, fl.VIP4, 80)


def accept_all(lab):
    nft(lab, 'insert', 'rule', *TABLE, 'in_vip0', 'accept')


def flush_listener_set(lab):
    nft(lab, 'flush', 'set', *TABLE, object_name(lab, 'set', '_tcp_80_4_p32'))


def delete_listener_rule(lab):
    nft(lab, 'delete', 'rule', *TABLE, 'in_vip0', 'handle',
        handle_of(lab, 'in_vip0', 'vmap'))


# The edit, what it broke, and what the log says of it.
EDITS = {
    'accept-all rule added': (accept_all, refused_is_refused,
                              'in_vip0: unexpected rule at 1'),
    'set flushed': (flush_listener_set, allowed_connects,
                    '_tcp_80_4_p32: 1 element(s) missing: 203.0.113.20'),
    'rule deleted': (delete_listener_rule, allowed_connects,
                     'in_vip0: rule 1 missing'),
}


# Nothing is drift that the renderer made ------------------------------

@pytest.mark.parametrize('name', sorted(RULE_SETS))
def test_a_freshly_applied_rule_set_has_not_drifted(lab, firewall, name):
    firewall.apply(RULE_SETS[name]())
    assert firewall.verify() == []
    # The next generation, with other serials in its names, neither.
    firewall.apply(RULE_SETS[name]())
    assert firewall.verify() == []
    assert firewall.repairs()['count'] == 0


def test_an_untouched_ruleset_is_never_repaired(lab, tmp_path, servers):
    """Traffic, re-applies and a hot-plugged VF are not drift."""
    fw = start_firewall(lab, tmp_path, 0.1)
    try:
        fw.apply(request())
        client, amp = lab.name(fl.CLIENT), lab.name(fl.AMP)
        first_check = _wait_for(lambda: fw.repairs()['last_verified_at'])
        assert first_check
        for _ in range(3):
            assert allowed_connects(lab)
            assert refused_is_refused(lab)
            fw.apply(request(listeners=[WEB]))
            fw.apply(request())
        lab.veth(amp, 'hot9', client, 'hotc9')
        assert _wait_for(lambda: 'hot9' in fw.current()['interfaces'])
        netlab.run(amp, ['ip', 'link', 'del', 'hot9'])
        assert _wait_for(lambda: 'hot9' not in fw.current()['interfaces'])
        counted = fw.counters()
        assert counted['listeners']['TCP:80']['dropped']['packets'] > 0
        assert _wait_for(lambda: fw.repairs()['last_verified_at'] >
                         first_check)
        assert fw.verify() == []
        assert {key: fw.repairs()[key] for key in ('count', 'failed')} == {
            'count': 0, 'failed': 0}
    finally:
        fw.stop()


# Hand edits ------------------------------------------------------------

@pytest.mark.parametrize('edit', sorted(EDITS))
def test_a_hand_edit_is_found_and_repaired(lab, firewall, servers, edit):
    change, works, said = EDITS[edit]
    firewall.apply(request())
    assert allowed_connects(lab) and refused_is_refused(lab)
    change(lab)
    # The edit did what it does.
    assert not works(lab)

    found = firewall.verify()

    assert any(said in difference for difference in found), found
    assert allowed_connects(lab)
    assert refused_is_refused(lab)
    assert firewall.verify() == []
    repairs = firewall.counters()['repairs']
    assert repairs['count'] == 1 and repairs['failed'] == 0
    assert said in repairs['last_difference']
    # The count is kept with the state, for the next start.
    with open(firewall.state_file) as stream:
        assert json.load(stream)['repairs']['count'] == 1


def test_drift_is_repaired_within_one_interval(lab, watched, servers):
    watched.apply(request())
    assert refused_is_refused(lab)
    for number, change in enumerate((accept_all, flush_listener_set,
                                     delete_listener_rule), start=1):
        changed = time.monotonic()
        change(lab)
        assert _wait_for(lambda: watched.repairs()['count'] == number,
                         limit=INTERVAL + SLACK)
        took = time.monotonic() - changed
        assert took <= INTERVAL + SLACK
        # What must be dropped is dropped again, what must pass passes.
        assert refused_is_refused(lab)
        assert allowed_connects(lab)
    assert watched.counters()['repairs']['count'] == 3


def test_what_a_render_cannot_undo_is_rebuilt_with_its_counts(
        lab, firewall, servers):
    firewall.apply(request())
    assert allowed_connects(lab) and refused_is_refused(lab)
    before = firewall.counters()['listeners']['TCP:80']
    # A chain of someone else's hooked to the VF inside our table, and a
    # policy changed.
    nft(lab, 'add', 'chain', *TABLE, 'sneaky', '{ type filter hook ingress '
        'device vip0 priority -10; policy accept; }')
    nft(lab, 'add', 'chain', *TABLE, 'in_mem0', '{ policy accept; }')

    found = firewall.verify()

    assert 'unexpected chain sneaky' in found
    assert 'chain in_mem0: policy "accept" (expected "drop")' in found
    assert 'sneaky' not in nft(lab, 'list', 'table', *TABLE)
    assert firewall.verify() == []
    after = firewall.counters()['listeners']['TCP:80']
    for verdict in ('accepted', 'dropped'):
        assert after[verdict]['packets'] >= before[verdict]['packets'] > 0
    assert refused_is_refused(lab) and allowed_connects(lab)


def test_a_deleted_table_comes_back(lab, firewall, servers):
    firewall.apply(request())
    nft(lab, 'delete', 'table', *TABLE)
    assert fl.tcp_request(lab.name(fl.CLIENT), fl.REFUSED4, fl.VIP4,
                          80) == b'HTTP/1.0 200 OK'

    assert firewall.verify() == ['the table is missing']

    assert refused_is_refused(lab) and allowed_connects(lab)
    assert firewall.repairs()['count'] == 1


# The agent process -------------------------------------------------------

def test_the_agent_shows_repairs_in_its_counters_across_restarts(
        agent_factory, amphora, tcp_service):
    agent = agent_factory(start=False)
    with open(agent.config_file, 'a') as conf:
        # A section may come twice; the last value counts.
        conf.write(f'[amphora_agent]\nfirewall_verify_interval = '
                   f'{int(INTERVAL)}\n')
    agent.start()
    body = {'vip_interfaces': [amphora.vip],
            'listeners': [{'protocol': 'TCP', 'port': 80,
                           'allowed_cidrs': ['203.0.113.20/32']}]}
    assert agent.request('POST', '/1.0/security-group',
                         json=body).status_code == 200
    tcp_service(amphora.namespace, amphora.vip, 80)
    assert not conftest.connect(amphora.client, '203.0.113.21',
                                amphora.vip, 80)
    netlab.run(amphora.namespace, ['nft', 'insert', 'rule', *TABLE,
                                   'in_vf0', 'accept'])

    def repairs():
        return agent.request('GET', '/1.0/security-group/counters').json()[
            'repairs']

    assert _wait_for(lambda: repairs()['count'] == 1,
                     limit=INTERVAL + SLACK)
    assert not conftest.connect(amphora.client, '203.0.113.21',
                                amphora.vip, 80)
    assert conftest.connect(amphora.client, '203.0.113.20', amphora.vip, 80)
    shown = repairs()
    assert 'in_vf0: unexpected rule at 1' in shown['last_difference']
    assert shown['last_repair_at'] and shown['verify_interval'] == INTERVAL
    assert 'changed by hand?' in agent.log()

    agent.stop()
    restarted = agent_factory()
    shown = restarted.request('GET', '/1.0/security-group/counters').json()[
        'repairs']
    assert shown['count'] == 1
    # [amphora_agent] firewall_verify_interval's default.
    assert shown['verify_interval'] == 30


def _wait_for(condition, limit=10.0):
    """Poll ``condition``; a limit, not a timing assertion."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()
