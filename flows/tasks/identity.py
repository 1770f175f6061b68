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
"""Tasks on the controller's CA: each amphora's identity before it boots.

An identity is ``{"amphora_id": ..., "server_pem": Fernet token}``: the id
the amphora's server certificate names, and that certificate with its key,
encrypted (``sriov_octavia.amphora.bootstrap``), so that what taskflow
persists of these results holds no key in clear. Issuing makes nothing
outside the flow, so nothing is reverted.
"""

from oslo_log import log as logging
from oslo_utils import uuidutils
from taskflow import task

from flows import tasks
from sriov_octavia.amphora import bootstrap

LOG = logging.getLogger(__name__)

AMPHORA_IDENTITIES = 'amphora_identities'


def issue(loadbalancer_id, role):
    """A new identity for the load balancer's amphora in ``role``."""
    amphora_id = uuidutils.generate_uuid()
    try:
        server_pem = bootstrap.issue_server_pem(amphora_id)
    except bootstrap.IdentityError as error:
        LOG.error('No identity for the %s amphora of load balancer %s: %s',
                  role, loadbalancer_id, error)
        raise
    LOG.info('Issued the server certificate of amphora %s (%s) of load '
             'balancer %s', amphora_id, role, loadbalancer_id)
    return {'amphora_id': amphora_id, 'server_pem': server_pem}


class IssueAmphoraIdentities(tasks.RolesTask):
    """One identity per role of ``roles``, by role."""

    default_provides = AMPHORA_IDENTITIES

    def execute(self, loadbalancer_id):
        return {role: issue(loadbalancer_id, role) for role in self.roles}


class IssueReplacementIdentity(task.Task):
    """Failover: the identity of the slot's new amphora (None if none)."""

    def __init__(self, slot):
        super(IssueReplacementIdentity, self).__init__(
            name=f'failover-{slot}-issue-identity',
            rebind={'old_amphora': f'old_amphora_{slot}'},
            provides=f'replacement_identity_{slot}')

    def execute(self, loadbalancer_id, old_amphora):
        if not old_amphora:
            return None
        return issue(loadbalancer_id, old_amphora['role'])
