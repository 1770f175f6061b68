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
"""Threads inside the data namespace.

``setns(CLONE_NEWNET)`` moves only the calling thread. A socket (netlink
ones included, so libnftables' and pyroute2's) belongs to the namespace of
the thread that opens it, and ``/proc/sys/net`` and
``/proc/thread-self/net`` answer for the reading thread's. Whatever the
agent does in the data namespace therefore runs on a thread that entered
it, made here.
"""

import concurrent.futures

from pyroute2 import netns as pyroute2_netns

PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'


def enter(namespace):
    """Move the calling thread into ``namespace`` (None or '': stay)."""
    if namespace:
        pyroute2_netns.setns(namespace, flags=0)


def ephemeral_ports():
    """The calling thread's namespace's ephemeral ports: (first, last)."""
    with open(PORT_RANGE) as stream:
        first, last = stream.read().split()
    return int(first), int(last)


def executor(namespace, workers, name, setup=None):
    """Threads that entered ``namespace``, then ran ``setup()`` each.

    With one worker, what is submitted runs in order: the engines keep
    their nftables and netlink handles on that thread alone.
    """
    def initializer():
        enter(namespace)
        if setup is not None:
            setup()

    return concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name,
        initializer=initializer)
