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
"""Failovers started as octavia-api starts them, by callers other than it.

octavia-api sets a load balancer PENDING_UPDATE before it asks a provider
to fail it over. The health loop and the operator's command take the same
claim (sriov_octavia.octavia_db.claim_for_failover), so that of two
callers at most one starts a failover, and none starts one beside a
running create, update, delete or failover. The flow sets the load
balancer ACTIVE (or ERROR) when it ends.
"""

from oslo_log import log as logging

from sriov_octavia import conf as sriov_conf
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import octavia_db
from sriov_octavia.worker import jobboard

CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)


class NotClaimed(Exception):
    """The load balancer is gone or busy: no failover was started."""

    def __init__(self, loadbalancer_id):
        super().__init__(f'load balancer {loadbalancer_id} is not ACTIVE or '
                         f'ERROR (gone, or another operation or failover '
                         f'holds it): no failover started')
        self.loadbalancer_id = loadbalancer_id


def start(loadbalancer_id, amphora=None, reason=None, conf=CONF):
    """Claim the load balancer and post its failover job; the job id.

    :param amphora: ``{"role": ..., "id": server id or None}`` to replace
        one amphora (``amphora.failover``); None replaces them all
        (``loadbalancer.failover``).
    :param reason: said in the log line, for operators.
    :raises NotClaimed: the load balancer is not ACTIVE or ERROR.
    """
    previous = octavia_db.claim_for_failover(loadbalancer_id)
    if previous is None:
        raise NotClaimed(loadbalancer_id)
    try:
        flavor, zone = octavia_db.load_balancer_flavor_and_zone(
            loadbalancer_id)
        store = {
            'loadbalancer_id': loadbalancer_id,
            'flavor': sriov_flavor.with_defaults(flavor, conf),
            'availability_zone': zone or {},
            'loadbalancer': octavia_db.provider_load_balancer(
                loadbalancer_id).to_dict(recurse=True, render_unsets=False),
        }
        if amphora is None:
            flow_name = 'loadbalancer.failover'
        else:
            flow_name = 'amphora.failover'
            store['amphora'] = {'role': amphora['role'],
                                'id': amphora.get('id')}
        job_id = jobboard.post_job(flow_name, store, conf=conf)
    except Exception:
        # Nobody would ever end a claim without a job.
        octavia_db.release_failover_claim(loadbalancer_id, previous)
        raise
    what = (f'the {amphora["role"]} amphora {amphora.get("id") or ""}'
            if amphora else 'every amphora')
    LOG.warning('Load balancer %s: failover of %s posted as job %s%s',
                loadbalancer_id, what.strip(), job_id,
                f' ({reason})' if reason else '')
    return job_id
