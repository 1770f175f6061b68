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
"""The VRRP check script keepalived runs (its ``vrrp_script``).

It exits 0 when every haproxy the agent started is running, so an amphora
whose haproxy died gives up the VIP. A load balancer counts as started
while its pid file exists: the agent writes it through haproxy at start
and removes it at stop, so a stopped load balancer is not a failure.
"""

import shlex

from amphora_agent.engine import files

_SCRIPT = '''#!/bin/sh
# Written by amphora-sriov-agent; rewritten at every agent start.
for pid_file in {loadbalancers}/*/haproxy.pid; do
    [ -e "$pid_file" ] || continue
    read -r pid _ < "$pid_file" || exit 1
    read -r _ comm state _ < "/proc/$pid/stat" || exit 1
    [ "$comm" = "(haproxy)" ] && [ "$state" != Z ] || exit 1
done
exit 0
'''


def write(layout):
    """Write the script; its absolute path."""
    files.write_atomically(
        layout.check_script,
        _SCRIPT.format(loadbalancers=shlex.quote(layout.loadbalancers_dir)),
        mode=0o755)
    return layout.check_script
