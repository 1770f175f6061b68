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
"""The testbed's own namespaces, and the end of any namespace.

The phys namespace, clients and members are the testbed's own; amphorae
are not (see ``create_infrastructure``). Removing a namespace ends what
still runs in it first.
"""

from oslo_log import log as logging
from pyroute2 import netns as pyroute2_netns

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import processes

LOG = logging.getLogger(__name__)


def create_infrastructure(name):
    """A namespace of the testbed's own (network, client, member).

    Its interfaces skip IPv6 duplicate address detection, link-local
    addresses included: a tentative link-local address delays neighbour
    discovery through the router by a second or more, and Neutron keeps
    the testbed's addresses unique anyway. Amphorae keep the kernel's
    defaults, as a real one would.
    """
    pyroute2_netns.create(name)
    links.set_state(name, 'lo', True)
    netlab.run(name, ['sysctl', '-q', '-w',
                      'net.ipv6.conf.all.accept_dad=0',
                      'net.ipv6.conf.default.accept_dad=0'])


def end_processes_in(namespace, grace):
    """End every process left in ``namespace``, by PID; their PIDs.

    haproxy and keepalived outlive the agent that started them (an
    agent restart must not interrupt traffic), so once the agent is
    stopped they are still there: left alone they would keep running,
    and keep the namespace and its VFs alive, after the amphora is gone.
    """
    if not netlab.namespace_exists(namespace):
        return []
    found = netlab.run(None, ['ip', 'netns', 'pids', namespace],
                       check=False).stdout.split()
    ended = []
    for pid in map(int, found):
        started = processes.start_time(pid)
        # A haproxy worker ends with its master: gone by its turn.
        if started is not None and processes.stop(pid, started,
                                                  grace=grace):
            ended.append(pid)
    if ended:
        LOG.info('Ended processes %s left in namespace %s', ended,
                 namespace)
    return ended


def remove(namespace, grace):
    """End what runs in ``namespace``, then remove it; the PIDs ended.

    A process inside a namespace keeps the namespace, and its links,
    alive after the name is removed.
    """
    ended = end_processes_in(namespace, grace)
    if netlab.namespace_exists(namespace):
        pyroute2_netns.remove(namespace)
    return ended
