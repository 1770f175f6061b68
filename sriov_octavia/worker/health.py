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
"""Health checks: amphorae replaced when they fall silent, status reported.

Every ``[sriov_worker] health_interval`` seconds each worker checks the
load balancers the health group gives it (sriov_octavia.worker.membership:
every load balancer of this provider is checked by one worker). For each,
it asks every amphora's agent for haproxy's view and reports to Octavia:

- the operating status of the load balancer, listeners, pools and members
  (sriov_octavia.worker.haproxy_status): ERROR, with everything OFFLINE,
  when no amphora answers; DEGRADED when one of two does;
- each listener's counters, as increments that never go backwards
  (sriov_octavia.worker.listener_counters);
- an amphora silent for [health_manager] heartbeat_timeout is failed over
  (sriov_octavia.failover, the claim octavia-api takes: at most one
  failover per load balancer, never one beside a PENDING operation),
  unless as many amphorae as [health_manager] failover_threshold are
  overdue across all workers, when failover pauses and says so.

Load balancers in a PENDING state are not checked: their amphorae may be
booting, or being replaced, and their silence counts again from when the
operation ends. Nothing here may stop the worker: a failure is logged and
the next round starts afresh.
"""

from concurrent import futures

from octavia_lib.common import constants as lib_consts
from oslo_log import log as logging

from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import failover
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import naming
from sriov_octavia import octavia_db
from sriov_octavia import octavia_status as status
from sriov_octavia.worker import haproxy_status
from sriov_octavia.worker import listener_counters
from sriov_octavia.worker import liveness
from sriov_octavia.worker import periodic

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

CHECKED_STATUSES = (lib_consts.ACTIVE, lib_consts.ERROR)


class HealthChecker(object):
    """The rounds of one worker, with what it remembers between them."""

    def __init__(self, conf, group, reporter=None, liveness_=None):
        self._conf = conf
        self._group = group
        self._reporter = reporter or status.StatusReporter(conf)
        self.liveness = liveness_ or liveness.Liveness()
        self._counters = listener_counters.ListenerCounters()
        # A server's management address does not change while it lives,
        # and its agent keeps the connection open between rounds: the
        # client of each is kept, sparing a TLS handshake every round.
        self._mgmt_ips = {}
        self._agents = {}
        self._checked = set()
        self._members = None

    def check_round(self):
        """Check this worker's load balancers; the ids of those checked."""
        conn = clients.connection()
        loadbalancers = octavia_db.provider_load_balancers(naming.PROVIDER)
        members = self._group.members()
        owned = self._group.owned([lb['id'] for lb in loadbalancers],
                                  members)
        # Counters of a load balancer this worker did not check last round
        # may have been reported by another worker: unless nothing changed
        # in the group, in which case the load balancer is new.
        group_unchanged = members == self._members
        self._members = members
        servers = amphorae.servers_by_loadbalancer(conn, active_only=False)
        now = self.liveness.now()
        checked = []
        for lb in sorted(loadbalancers, key=lambda lb: lb['id']):
            if lb['id'] not in owned:
                continue
            roles = sriov_flavor.topology_roles(sriov_flavor.with_defaults(
                lb['flavor'], self._conf)[sriov_flavor.LOADBALANCER_TOPOLOGY])
            if lb['provisioning_status'] not in CHECKED_STATUSES:
                self.liveness.restart([(lb['id'], role) for role in roles],
                                      now)
                continue
            checked.append((lb['id'], roles,
                            _serving_by_role(servers.get(lb['id'], []))))
        answers = self._ask_agents(conn, [
            server for _lb, _roles, by_role in checked
            for server in by_role.values()])
        overdue = {}
        for lb_id, roles, by_role in checked:
            new_counts = lb_id in self._checked or group_unchanged
            late = self._judge(lb_id, roles, by_role, answers, new_counts,
                               now)
            if late:
                overdue[lb_id] = (roles, late, by_role)
        self._checked = owned
        self.liveness.retain(owned)
        server_ids = {server.id for found in servers.values()
                      for server in found}
        self._counters.retain(server_ids)
        self._mgmt_ips = {server_id: address for server_id, address
                          in self._mgmt_ips.items()
                          if server_id in server_ids}
        for server_id in set(self._agents) - server_ids:
            self._agents.pop(server_id).close()
        self._fail_over(overdue, now)
        return owned

    def _ask_agents(self, conn, servers):
        """``{server id: (whether its agent answered, view or None)}``."""
        if not servers:
            return {}
        threads = min(self._conf.sriov_worker.health_check_threads,
                      len(servers))
        with futures.ThreadPoolExecutor(max_workers=threads) as executor:
            asked = {server.id: executor.submit(self._agent_view, conn,
                                                server)
                     for server in servers}
        return {server_id: future.result()
                for server_id, future in asked.items()}

    def _agent_view(self, conn, server):
        """(whether the agent answered, haproxy's view or None)."""
        if server.status != 'ACTIVE':
            return False, None
        lb_id = server.metadata[naming.META_LOADBALANCER]
        try:
            address = self._mgmt_ips.get(server.id)
            if address is None:
                address = amphorae.server_mgmt_ip(conn, server, self._conf)
                if address is None:
                    return False, None
                self._mgmt_ips[server.id] = address
            agent = self._agents.get(server.id)
            if agent is None:
                # An answer later than the next round is no answer.
                agent = amphorae.agent_for(
                    amphorae.amphora_of(server, mgmt_ip=address),
                    self._conf, retries=0,
                    timeout=self._conf.sriov_worker.health_interval)
                self._agents[server.id] = agent
            return True, agent.get_loadbalancer_status(lb_id)
        except Exception as error:
            # The next round starts from a new connection.
            agent = self._agents.pop(server.id, None)
            if agent is not None:
                agent.close()
            LOG.warning('Health of load balancer %s: amphora %s did not '
                        'answer: %s', lb_id, server.id, error)
            return False, None

    def _judge(self, lb_id, roles, by_role, answers, new_counts, now):
        """Report one load balancer; the roles overdue for failover."""
        views, answering = {}, 0
        for role in roles:
            server = by_role.get(role)
            if server is None:
                LOG.warning('Health of load balancer %s: its %s amphora has '
                            'no server in Nova', lb_id, role)
                answered, view = False, None
            else:
                answered, view = answers[server.id]
            self.liveness.observe((lb_id, role), answered, now)
            answering += answered
            if view is not None:
                views[server.id] = view
        self._report(lb_id, views, answering, len(roles), new_counts)
        timeout = self._conf.health_manager.heartbeat_timeout
        return [role for role in roles
                if self.liveness.silent_for((lb_id, role), now) >= timeout]

    def _report(self, lb_id, views, answering, expected, new_counts):
        try:
            object_ids = (octavia_db.load_balancer_object_ids(lb_id)
                          if not answering else {})
            self._reporter.update_status(haproxy_status.loadbalancer_update(
                lb_id, list(views.values()), answering, expected,
                object_ids))
            listener_counters.report(self._counters.increments(
                views, new_counts))
        except Exception as error:
            LOG.warning('Health of load balancer %s could not be reported '
                        'to Octavia: %s', lb_id, error)

    def _fail_over(self, overdue, now):
        timeout = self._conf.health_manager.heartbeat_timeout
        count = sum(len(late) for _roles, late, _by_role
                    in overdue.values())
        fleet = self._group.fleet_overdue(count)
        threshold = self._conf.health_manager.failover_threshold
        if not overdue:
            return
        if threshold is not None and fleet >= threshold:
            LOG.error(
                'AUTOMATIC FAILOVER PAUSED: %d amphorae are silent for %s s '
                'or more across the controllers, which reaches [health_'
                'manager] failover_threshold (%d); that many failing at once '
                'is more likely a network partition or an outage than dead '
                'amphorae. Not failing over (this worker\'s share): %s. It '
                'resumes when fewer are silent; an operator may fail any '
                'over by hand.', fleet, timeout, threshold,
                ', '.join(f'{role} of {lb_id}' for lb_id, (_r, late, _s)
                          in sorted(overdue.items()) for role in late))
            return
        for lb_id, (roles, late, by_role) in sorted(overdue.items()):
            silent = self.liveness.silent_for((lb_id, late[0]), now)
            reason = (f'{", ".join(late)} silent for {silent:.0f} s, '
                      f'[health_manager] heartbeat_timeout {timeout} s')
            amphora = None
            if len(late) == 1:
                server = by_role.get(late[0])
                amphora = {'role': late[0],
                           'id': server.id if server else None}
            try:
                failover.start(lb_id, amphora, reason=reason,
                               conf=self._conf)
            except failover.NotClaimed as error:
                LOG.info('Health: not failing over: %s', error)
            except Exception:
                LOG.exception('Health: failover of load balancer %s could '
                              'not be started; trying again next round',
                              lb_id)
                continue
            self.liveness.restart([(lb_id, role) for role in roles], now)


def _serving_by_role(servers):
    """``{role: server}``; of two in a role, the ACTIVE one serves."""
    by_role = {}
    for server in servers:
        role = (server.metadata or {}).get(naming.META_ROLE)
        if role not in by_role or server.status == 'ACTIVE':
            by_role[role] = server
    return by_role


def run(conf, stop_event, group):
    """Check every ``health_interval`` seconds until ``stop_event``."""
    periodic.run('Health checks and automatic failover',
                 '[sriov_worker] health_interval',
                 conf.sriov_worker.health_interval, stop_event,
                 lambda: HealthChecker(conf, group).check_round)


def start(conf, stop_event, group):
    """Run the health loop in a daemon thread; the thread."""
    return periodic.start('sriov-octavia-health', run, conf, stop_event,
                          group)
