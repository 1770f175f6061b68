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
"""PROMETHEUS listeners: scraped through haproxy, answered by the agent.

The configuration is what the controller renders with Octavia's own
template (sriov_octavia.engine.haproxy_config): haproxy's exporter on
127.0.0.1:9101 and the listener's backend on 127.0.0.1:9102, both in the
data namespace, where the agent serves the metrics. The firewall filters
the VIP interface with a security group opening the listener to one
client address, so that its counters have something to count.
"""

import re

import pytest

from sriov_octavia.engine import haproxy_config
from sriov_octavia_testbed import netlab
from tests.functional.amphora_agent import conftest
from tests.functional.amphora_agent import engine_lab
from tests.unit.amphora_agent.prometheus_text import parse

LB, LISTENER, POOL, AMPHORA = engine_lab.loadbalancer_ids('m1')
TCP_LISTENER = 'a0000000-0000-4000-8000-0000000000m2'
STRANGER = '203.0.113.21'
PROMETHEUS_PORT = 45580
TCP_PORT = 45581
FIREWALL = 'octavia_sriov_firewall_'
LISTENER_LABELS = (('protocol', 'TCP'), ('port', str(PROMETHEUS_PORT)))


@pytest.fixture(scope='module')
def lab(tmp_path_factory, pki):
    with engine_lab.amphora_lab(tmp_path_factory, pki, 'm',
                                clients=(f'{engine_lab.CLIENT}/24',
                                         f'{STRANGER}/24')) as lab:
        yield lab


def state():
    """A PROMETHEUS listener, and a TCP one whose member haproxy counts."""
    return {
        'loadbalancer_id': LB, 'project_id': 'project-prometheus',
        'vip_address': engine_lab.VIP,
        'listeners': [
            {'listener_id': LISTENER, 'protocol': 'PROMETHEUS',
             'protocol_port': PROMETHEUS_PORT, 'connection_limit': 1000},
            {'listener_id': TCP_LISTENER, 'protocol': 'TCP',
             'protocol_port': TCP_PORT, 'default_pool_id': POOL,
             'connection_limit': 1000}],
        'pools': [{'pool_id': POOL, 'protocol': 'TCP',
                   'listener_id': TCP_LISTENER, 'lb_algorithm': 'ROUND_ROBIN',
                   'members': [{'member_id': 'member-1', 'pool_id': POOL,
                                'address': '198.51.100.5',
                                'protocol_port': 80}]}]}


@pytest.fixture(scope='module')
def exported(lab, pki):
    """The load balancer served, its listener opened to the client only."""
    with conftest.agent_api(lab.agent, pki) as api:
        text = haproxy_config.render(state(), AMPHORA, api.get_info())
        api.set_security_group({
            'vip_interfaces': [engine_lab.VIP],
            'listeners': [{'protocol': 'TCP', 'port': port,
                           'allowed_cidrs': [f'{engine_lab.CLIENT}/32']}
                          for port in (PROMETHEUS_PORT, TCP_PORT)]})
        api.upload_haproxy_config(AMPHORA['id'], LB, text)
        api.loadbalancer_action(LB, 'start')
        yield text
        api.delete_loadbalancer(LB)


def scrape(lab, source=engine_lab.CLIENT, timeout=5):
    """``(HTTP status, body)`` of GET /metrics through the listener."""
    result = netlab.run(
        lab.client, ['curl', '-s', '-m', str(timeout), '--interface', source,
                     '-o', '-', '-w', '\n%{http_code}',
                     f'http://{engine_lab.VIP}:{PROMETHEUS_PORT}/metrics'],
        check=False, timeout=timeout + 30)
    body, _, status = result.stdout.rpartition('\n')
    return int(status or 0), body


def metrics(lab):
    status, body = scrape(lab)
    return parse(body)[0] if status == 200 else None


def test_the_template_routes_the_listener_to_the_agent(exported):
    assert 'bind 127.0.0.1:9101' in exported
    assert 'server prometheus-internal 127.0.0.1:9102' in exported
    assert 'default_backend prometheus-exporter-internal' in exported


def test_haproxy_metrics_as_upstream_names_them(lab, exported):
    families = engine_lab.wait_until(lambda: metrics(lab))

    assert families, scrape(lab)
    assert 'octavia_loadbalancer_cpu' in families
    assert 'octavia_loadbalancer_memory' in families
    assert 'octavia_loadbalancer_current_connections' in families
    listeners = {dict(labels)['listener']
                 for labels in families['octavia_listener_bytes_in_total']}
    assert listeners == {LISTENER, TCP_LISTENER}
    assert {dict(labels)['member'] for labels in families[
        'octavia_member_weight']} == {'member-1'}
    assert not [name for name in families if name.startswith('haproxy_')]


def test_firewall_counters_beside_them(lab, exported):
    families = engine_lab.wait_until(lambda: metrics(lab))

    assert families[FIREWALL + 'up'] == {(): 1}
    assert families[FIREWALL + 'listener_accepted_packets_total'][
        LISTENER_LABELS] > 0
    assert families[FIREWALL + 'listener_accepted_bytes_total'][
        LISTENER_LABELS] > 0
    assert FIREWALL + 'drift_repairs_total' in families
    assert FIREWALL + 'members_accepted_packets_total' in families


def test_dropped_packets_of_a_refused_source_are_counted(lab, exported):
    def dropped():
        families = metrics(lab) or {}
        return families.get(FIREWALL + 'listener_dropped_packets_total',
                            {}).get(LISTENER_LABELS)
    before = engine_lab.wait_until(lambda: dropped() is not None) and (
        dropped())
    assert before is not None

    assert scrape(lab, source=STRANGER, timeout=2)[0] == 0

    assert engine_lab.wait_until(lambda: (dropped() or 0) > before)


def test_the_agent_serves_9102_in_the_data_namespace_only(lab, exported):
    inside = netlab.run(lab.amp, ['curl', '-s', '-m', '5',
                                  'http://127.0.0.1:9102/metrics'],
                        check=False)

    assert re.search(r'^octavia_sriov_firewall_up 1$', inside.stdout,
                     re.MULTILINE)


def test_stopping_the_agent_stops_the_metrics(lab, exported):
    assert engine_lab.wait_until(lambda: metrics(lab))

    lab.agent.stop()
    try:
        # haproxy still runs, its backend is gone.
        assert engine_lab.wait_until(lambda: scrape(lab)[0] == 503)
    finally:
        lab.agent.start()

    assert engine_lab.wait_until(lambda: metrics(lab))
