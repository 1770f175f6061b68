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
"""HTTP through the VIP of an SR-IOV load balancer, end to end.

The user builds the load balancer with the real ``openstack`` CLI; the
worker renders haproxy's configuration with upstream Octavia's templater,
the amphora agent runs haproxy behind the stateless firewall, and real
HTTP requests from client namespaces are balanced over two member
namespaces on the VIP subnet (the case that broke upstream's first
stateless firewall). A member that stops answering its health checks
shows ERROR in ``openstack loadbalancer member show`` and gets no more
requests.
"""

from sriov_octavia import amphorae
from tests.functional.sriov_octavia.http_service import build_http_service
from tests.functional.sriov_octavia.http_service import load_balancer
from tests.functional.sriov_octavia.http_service import member_status
from tests.functional.sriov_octavia.http_service import wait_for
from tests.functional.sriov_octavia.openstack_cli import cli_json
from tests.functional.sriov_octavia.openstack_cli import make_flavor

PORT_BASE = 22000
PREFIX = 'ten'
# A testbed instance of its own: runs beside the other tests.
PARALLEL_GROUP = PREFIX


def test_http_is_balanced_and_a_dead_member_is_left_out(tb, conn, hosts):
    flavor = make_flavor(tb, conn)
    client, outsider = hosts('client'), hosts('outsider')
    members = [hosts('member-a'), hosts('member-b')]
    for member in members:
        member.serve()
    with load_balancer(tb, flavor) as lb:
        vip = lb['vip_address']
        listener, pool, member_ids = build_http_service(tb, lb, client,
                                                        members)
        assert cli_json(tb, 'loadbalancer', 'show', lb['id'])[
            'provisioning_status'] == 'ACTIVE'

        # Round robin: both members answer the client in the CIDR.
        answers = client.get(vip, 10)
        assert None not in answers
        assert sorted(set(answers)) == ['member-a', 'member-b']
        assert answers.count('member-a') == answers.count('member-b')
        # The amphora firewall lets nobody else in.
        assert outsider.get(vip, 2) == [None, None]

        # haproxy's health checks reach Octavia.
        for name, member_id in member_ids.items():
            wait_for(f'{name} ONLINE', lambda member_id=member_id: (
                member_status(tb, pool, member_id) == 'ONLINE'))

        members[1].stop_serving()
        wait_for('member-b ERROR', lambda: member_status(
            tb, pool, member_ids['member-b']) == 'ERROR')
        assert member_status(tb, pool, member_ids['member-a']) == 'ONLINE'
        assert client.get(vip, 6) == ['member-a'] * 6
        # The listener's counters reach Octavia too (the outsider's
        # requests never reached haproxy).
        wait_for('16 connections in the listener statistics', lambda: cli_json(
            tb, 'loadbalancer', 'listener', 'stats', 'show', listener['id'])[
                'total_connections'] == 16)


def test_active_standby_keeps_serving_when_the_master_dies(
        tb, conn, fabric, hosts):
    flavor = make_flavor(tb, conn, loadbalancer_topology='ACTIVE_STANDBY')
    client = hosts('as-client')
    members = [hosts('as-member-a'), hosts('as-member-b')]
    for member in members:
        member.serve()
    with load_balancer(tb, flavor) as lb:
        vip = lb['vip_address']
        build_http_service(tb, lb, client, members)
        assert sorted(set(client.get(vip, 4))) == [
            'as-member-a', 'as-member-b']

        [master] = [server for server in amphorae.find_servers(conn, lb['id'])
                    if server.metadata['sriov_octavia_role'] == 'MASTER']
        fabric.delete_amphora(master.id)
        # keepalived on the standby takes the VIP over (a few adverts).
        wait_for('answers from the standby', lambda: None not in
                 client.get(vip, 4))
        assert sorted(set(client.get(vip, 4))) == [
            'as-member-a', 'as-member-b']
