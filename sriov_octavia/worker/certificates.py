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
"""Amphora certificates renewed before they expire, as Octavia's are.

Every ``[house_keeping] cert_interval`` seconds the worker looks at the
certificate each amphora's agent serves; one that expires within
``cert_expiry_buffer`` seconds is replaced by a new one for the same
amphora id, issued by the controller's CA and uploaded to the agent, which
serves it from its next connection on. What an agent serves is the truth
this reads, so there is no expiry date to keep in step anywhere else, and
an amphora that missed a round (unreachable) is renewed in the next one.
"""

import datetime

from oslo_log import log as logging

from sriov_octavia.amphora import bootstrap
from sriov_octavia import amphorae
from sriov_octavia import clients
from sriov_octavia import conf as sriov_conf
from sriov_octavia import naming
from sriov_octavia.worker import periodic

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def rotate_if_expiring(agent, amphora_id, conf, now=None):
    """Renew the agent's certificate if it expires within the buffer.

    Returns the new certificate's expiry, None when none was needed.
    """
    served = agent.served_certificate()
    expires = served.not_valid_after_utc
    buffer = datetime.timedelta(seconds=conf.house_keeping.cert_expiry_buffer)
    if expires - (now or _now()) > buffer:
        return None
    pem = bootstrap.new_server_pem(amphora_id, conf)
    agent.upload_certificate(pem.decode('ascii'))
    renewed = bootstrap.certificate_of(pem).not_valid_after_utc
    LOG.info('Amphora %s: certificate expiring %s renewed, the new one '
             'expires %s', amphora_id, expires.isoformat(),
             renewed.isoformat())
    return renewed


def rotate_once(conf, group):
    """One round over this worker's amphorae; how many renewed.

    The health group shares the amphorae among the workers as it shares
    their health checks (sriov_octavia.worker.membership).
    """
    conn = clients.connection()
    renewed = 0
    servers_by_lb = amphorae.servers_by_loadbalancer(conn)
    owned = group.owned(servers_by_lb)
    for lb_id, servers in sorted(servers_by_lb.items()):
        if lb_id not in owned:
            continue
        for server in servers:
            amphora_id = (server.metadata or {}).get(
                naming.META_AMPHORA_ID)
            if not amphora_id:
                continue
            try:
                agent = amphorae.server_agent(conn, server, conf)
                if agent is None:
                    continue
                with agent:
                    if rotate_if_expiring(agent, amphora_id, conf):
                        renewed += 1
            except Exception as error:
                LOG.warning('Amphora %s (server %s): certificate not '
                            'checked or renewed this round: %s', amphora_id,
                            server.id, error)
    return renewed


def run(conf, stop_event, group):
    """Rotate every ``cert_interval`` seconds until ``stop_event``."""
    periodic.run('Amphora certificate rotation',
                 '[house_keeping] cert_interval',
                 conf.house_keeping.cert_interval, stop_event,
                 lambda: lambda: rotate_once(conf, group))


def start(conf, stop_event, group):
    """Run the rotation loop in a daemon thread; the thread."""
    return periodic.start('sriov-octavia-certificates', run, conf,
                          stop_event, group)
