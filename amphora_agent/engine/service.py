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
"""The engine as the API sees it: haproxy, keepalived and what /info says."""

from oslo_log import log as logging

from amphora_agent.engine import check_script
from amphora_agent.engine import haproxy
from amphora_agent.engine import keepalived
from amphora_agent.engine import layout as layout_mod

LOG = logging.getLogger(__name__)


class Engine:
    def __init__(self, base_path, namespace, haproxy_cmd, keepalived_cmd,
                 command_timeout, stop_timeout):
        self.layout = layout_mod.Layout(base_path)
        self.haproxy = haproxy.Haproxy(self.layout, namespace, haproxy_cmd,
                                       command_timeout, stop_timeout)
        self.keepalived = keepalived.Keepalived(
            self.layout, namespace, keepalived_cmd, command_timeout,
            stop_timeout)
        self.check_script = check_script.write(self.layout)
        # The version only changes with the amphora image.
        self.haproxy_version = self.haproxy.version()
        LOG.info('Engine files in %s, haproxy %s', self.layout.base_path,
                 self.haproxy_version)

    @classmethod
    def from_conf(cls, conf):
        agent = conf.amphora_agent
        return cls(
            base_path=(conf.haproxy_amphora.base_path or
                       layout_mod.default_base_path(
                           agent.firewall_state_file)),
            namespace=agent.network_namespace or None,
            haproxy_cmd=conf.haproxy_amphora.haproxy_cmd,
            keepalived_cmd=agent.keepalived_cmd,
            command_timeout=agent.engine_command_timeout,
            stop_timeout=agent.engine_stop_timeout)

    def resume(self):
        """Start what was started before and died with the amphora.

        What still runs is left alone.
        """
        self.haproxy.resume()
        self.keepalived.resume()

    def info(self):
        """What ``GET /1.0/info`` adds about the engine."""
        return {'haproxy_version': self.haproxy_version,
                'haproxy_base_path': self.layout.base_path,
                'vrrp_check_script': self.check_script}
