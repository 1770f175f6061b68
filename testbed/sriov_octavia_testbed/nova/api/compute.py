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
"""The Compute API v2.1 subset the testbed serves, as one router."""

from sriov_octavia_testbed.nova.api import aggregates
from sriov_octavia_testbed.nova.api import common
from sriov_octavia_testbed.nova.api import flavors
from sriov_octavia_testbed.nova.api import hosts
from sriov_octavia_testbed.nova.api import microversion
from sriov_octavia_testbed.nova.api import server_groups
from sriov_octavia_testbed.nova.api import servers
from sriov_octavia_testbed.nova import wsgi


def router(manager):
    """Routes of every controller under /compute/v2.1, plus the versions."""
    result = wsgi.Router()
    for path in ('/', common.PREFIX, common.PREFIX + '/'):
        result.add('GET', path, microversion.versions)
    for path in (common.V21, common.V21 + '/'):
        result.add('GET', path, microversion.version)
    controllers = (
        servers.ServersController(manager),
        flavors.FlavorsController(manager.state),
        aggregates.AggregatesController(manager.state, manager.inventory),
        server_groups.ServerGroupsController(manager.state),
        hosts.HostsController(manager),
    )
    for controller in controllers:
        for method, path, handler in controller.routes():
            result.add(method, common.V21 + path,
                       microversion.versioned(handler))
    return result
