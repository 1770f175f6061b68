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
"""haproxy's view in Octavia's terms: statuses and listener counters."""

import pytest

from sriov_octavia.worker import haproxy_status
from sriov_octavia.worker import listener_counters
from sriov_octavia.worker import liveness

LB = '11111111-0000-4000-8000-000000000001'
LISTENER = '22222222-0000-4000-8000-000000000001'
POOL = '33333333-0000-4000-8000-000000000001'
EMPTY_POOL = '33333333-0000-4000-8000-000000000002'
UP = '44444444-0000-4000-8000-000000000001'
DOWN = '44444444-0000-4000-8000-000000000002'
OFF = '44444444-0000-4000-8000-000000000003'


def view(down_status='DOWN', scur=2, stot=10):
    """What GET /loadbalancer/<id>/status of an agent answers."""
    return {
        'frontends': {
            LISTENER: {'status': 'OPEN', 'scur': scur, 'stot': stot,
                       'bin': 100, 'bout': 200, 'ereq': 1},
            'prometheus-exporter-internal-endpoint': {
                'status': 'OPEN', 'scur': 9, 'stot': 9, 'bin': 9,
                'bout': 9, 'ereq': 9}},
        'backends': {
            f'{POOL}:{LISTENER}': {'status': 'UP', 'servers': {
                UP: {'status': 'UP', 'check_status': 'L7OK'},
                DOWN: {'status': down_status, 'check_status': 'L4CON'},
                OFF: {'status': 'MAINT', 'check_status': ''}}},
            f'{EMPTY_POOL}:{LISTENER}': {'status': 'DOWN', 'servers': {}},
            'prometheus-exporter-internal': {'status': 'UP', 'servers': {}}}}


def statuses(update, key):
    return {obj['id']: obj['operating_status'] for obj in update[key]}


@pytest.mark.parametrize('haproxy, octavia', [
    ('UP', 'ONLINE'), ('UP 1/3', 'ONLINE'), ('DOWN', 'ERROR'),
    ('DOWN 1/2', 'ERROR'), ('MAINT', 'OFFLINE'), ('MAINT(via)', 'OFFLINE'),
    ('DRAIN', 'DRAINING'), ('NOLB', 'DRAINING'), ('no check', 'NO_MONITOR'),
    ('', None)])
def test_member_status(haproxy, octavia):
    assert haproxy_status.member_status({'status': haproxy}) == octavia


def test_down_member_degrades_pool_and_load_balancer():
    update = haproxy_status.operating_update(LB, [view()])
    assert statuses(update, 'members') == {
        UP: 'ONLINE', DOWN: 'ERROR', OFF: 'OFFLINE'}
    assert statuses(update, 'pools') == {POOL: 'DEGRADED',
                                         EMPTY_POOL: 'OFFLINE'}
    assert statuses(update, 'listeners') == {LISTENER: 'ONLINE'}
    assert statuses(update, 'loadbalancers') == {LB: 'DEGRADED'}


def test_all_members_up_is_online():
    update = haproxy_status.operating_update(LB, [view(down_status='UP')])
    assert statuses(update, 'pools')[POOL] == 'ONLINE'
    assert statuses(update, 'loadbalancers') == {LB: 'ONLINE'}


def test_the_worse_view_of_two_amphorae_counts():
    update = haproxy_status.operating_update(
        LB, [view(down_status='UP'), view(down_status='DOWN')])
    assert statuses(update, 'members')[DOWN] == 'ERROR'
    update = haproxy_status.operating_update(
        LB, [view(down_status='DOWN'), view(down_status='UP')])
    assert statuses(update, 'members')[DOWN] == 'ERROR'


def test_no_amphora_answering_is_error_with_nothing_online():
    ids = {'listeners': [LISTENER], 'pools': [POOL], 'members': [UP, DOWN]}
    update = haproxy_status.loadbalancer_update(LB, [], 0, 1, ids)
    assert statuses(update, 'loadbalancers') == {LB: 'ERROR'}
    assert statuses(update, 'listeners') == {LISTENER: 'OFFLINE'}
    assert statuses(update, 'pools') == {POOL: 'OFFLINE'}
    assert statuses(update, 'members') == {UP: 'OFFLINE', DOWN: 'OFFLINE'}


def test_one_of_two_amphorae_answering_is_degraded():
    update = haproxy_status.loadbalancer_update(
        LB, [view(down_status='UP')], 1, 2, {})
    assert statuses(update, 'loadbalancers') == {LB: 'DEGRADED'}
    # What the answering amphora sees is fresh: its members stay ONLINE.
    assert statuses(update, 'members')[UP] == 'ONLINE'
    update = haproxy_status.loadbalancer_update(
        LB, [view(down_status='UP')], 2, 2, {})
    assert statuses(update, 'loadbalancers') == {LB: 'ONLINE'}


def counts(view_=None, **changes):
    return haproxy_status.frontend_counters(view_ or view(**changes))[
        LISTENER]


def test_counters_of_a_new_load_balancer_count_whole():
    counters = listener_counters.ListenerCounters()
    first = counters.increments({'amp-1': view(stot=10)}, new_counts=True)
    assert first[LISTENER]['total_connections'] == 10
    assert first[LISTENER]['active_connections'] == 2
    again = counters.increments({'amp-1': view(stot=15)})
    assert again[LISTENER]['total_connections'] == 5
    assert again[LISTENER]['bytes_in'] == 0


def test_counters_taken_over_from_another_worker_are_a_baseline():
    counters = listener_counters.ListenerCounters()
    first = counters.increments({'amp-1': view(stot=10)}, new_counts=False)
    assert first[LISTENER]['total_connections'] == 0
    assert first[LISTENER]['active_connections'] == 2
    assert counters.increments({'amp-1': view(stot=12)})[LISTENER][
        'total_connections'] == 2


def test_counters_never_go_backwards_across_a_restart_or_a_failover():
    counters = listener_counters.ListenerCounters()
    counters.increments({'amp-1': view(stot=100)})
    # haproxy reloaded: its counters start again from zero.
    assert counters.increments({'amp-1': view(stot=3)})[LISTENER][
        'total_connections'] == 3
    # Failed over: a new server, counted whole; the old one forgotten.
    counters.retain({'amp-2'})
    increments = counters.increments({'amp-2': view(stot=4, scur=0)})
    assert increments[LISTENER]['total_connections'] == 4
    assert all(value >= 0 for value in increments[LISTENER].values())


def test_counters_of_two_amphorae_add_up():
    counters = listener_counters.ListenerCounters()
    increments = counters.increments({'amp-1': view(stot=10),
                                      'amp-2': view(stot=5, scur=1)})
    assert increments[LISTENER]['total_connections'] == 15
    assert increments[LISTENER]['active_connections'] == 3
    assert increments[LISTENER]['bytes_out'] == 400


def test_silence_counts_from_the_last_answer_or_the_first_check():
    alive = liveness.Liveness()
    slot = (LB, 'MASTER')
    alive.observe(slot, False, now=100)
    assert alive.overdue([slot], 60, now=159) == []
    assert alive.overdue([slot], 60, now=160) == [slot]
    alive.observe(slot, True, now=170)
    assert alive.overdue([slot], 60, now=200) == []
    alive.restart([slot], now=300)
    assert alive.silent_for(slot, now=330) == 30
    alive.retain(set())
    assert alive.silent_for(slot, now=400) == 0
