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
"""The engine as the API sees it: haproxy, keepalived, the load balancers'
TLS files, the UDP and SCTP load balancing (``l4``), and what /info says.

Every ``verify_interval`` seconds it also checks that each configuration is
the one the controller uploaded and that what was started still runs: a
file changed by hand is put back from the copy kept when it was accepted
and its program reloaded, a program that died is started again. Each
repair is logged and counted in ``info()``.
"""

import datetime
import os
import threading

from oslo_log import log as logging

from amphora_agent.engine import certificates
from amphora_agent.engine import check_script
from amphora_agent.engine import haproxy
from amphora_agent.engine import keepalived
from amphora_agent.engine import layout as layout_mod
from amphora_agent.engine import ping_wrapper
from amphora_agent.l4 import engine as l4_engine

LOG = logging.getLogger(__name__)


class Engine:
    """haproxy, keepalived and the TLS files of the load balancers.

    ``base_cert_dir``: where the TLS files go, as the controller renders
    their paths into haproxy.cfg; ``ping_wrapper_path``: where to install
    the PING health monitor script (None or empty: nowhere); ``l4``: the
    UDP and SCTP engine (amphora_agent.l4.engine.L4Engine), None for none.
    """

    def __init__(self, base_path, namespace, haproxy_cmd, keepalived_cmd,
                 command_timeout, stop_timeout, verify_interval=0,
                 base_cert_dir=certificates.DEFAULT_BASE_DIR,
                 ping_wrapper_path=None, l4=None):
        self.layout = layout_mod.Layout(base_path)
        self.l4 = l4
        self.certificates = certificates.CertificateStore(base_cert_dir)
        self.haproxy = haproxy.Haproxy(self.layout, namespace, haproxy_cmd,
                                       command_timeout, stop_timeout)
        self.keepalived = keepalived.Keepalived(
            self.layout, namespace, keepalived_cmd, command_timeout,
            stop_timeout)
        self.check_script = check_script.write(self.layout)
        self.ping_wrapper = (ping_wrapper.install(ping_wrapper_path)
                             if ping_wrapper_path else None)
        self.verify_interval = verify_interval
        self._repairs = {'count': 0, 'last_repair_at': None,
                         'last_difference': None}
        self._repairs_lock = threading.Lock()
        # The version only changes with the amphora image.
        self.haproxy_version = self.haproxy.version()
        LOG.info('Engine files in %s, haproxy %s', self.layout.base_path,
                 self.haproxy_version)

    @classmethod
    def from_conf(cls, conf):
        agent = conf.amphora_agent
        base_path = (conf.haproxy_amphora.base_path or
                     layout_mod.default_base_path(agent.firewall_state_file))
        return cls(
            base_path=base_path,
            namespace=agent.network_namespace or None,
            haproxy_cmd=conf.haproxy_amphora.haproxy_cmd,
            keepalived_cmd=agent.keepalived_cmd,
            command_timeout=agent.engine_command_timeout,
            stop_timeout=agent.engine_stop_timeout,
            verify_interval=agent.engine_verify_interval,
            base_cert_dir=conf.haproxy_amphora.base_cert_dir,
            ping_wrapper_path=agent.ping_wrapper_path,
            l4=l4_engine.L4Engine(
                namespace=agent.network_namespace or None,
                state_file=os.path.join(base_path, 'l4.json'),
                refresh_interval=agent.l4_refresh_interval))

    def resume(self):
        """Start what was started before and died with the amphora.

        What still runs is left alone.
        """
        self.haproxy.resume()
        self.keepalived.resume()

    def verify(self):
        """Check and repair now; what was repaired, in words."""
        repaired = self.haproxy.verify() + self.keepalived.verify()
        if repaired:
            message = '; '.join(repaired)
            with self._repairs_lock:
                self._repairs['count'] += 1
                self._repairs['last_repair_at'] = datetime.datetime.now(
                    datetime.timezone.utc).isoformat()
                self._repairs['last_difference'] = message
                count = self._repairs['count']
            LOG.warning('Load balancing engine repaired (%d repairs '
                        'counted): %s', count, message)
        return repaired

    def start_verifying(self, stop_event):
        """Verify every ``verify_interval`` seconds in a daemon thread."""
        if self.verify_interval <= 0:
            return None

        def loop():
            while not stop_event.wait(self.verify_interval):
                try:
                    self.verify()
                except Exception:
                    LOG.exception('Checking haproxy and keepalived failed; '
                                  'trying again in %s s',
                                  self.verify_interval)

        thread = threading.Thread(target=loop, name='engine-verify',
                                  daemon=True)
        thread.start()
        return thread

    def info(self):
        """What ``GET /1.0/info`` adds about the engine."""
        with self._repairs_lock:
            repairs = dict(self._repairs,
                           verify_interval=self.verify_interval)
        info = {'haproxy_version': self.haproxy_version,
                'haproxy_base_path': self.layout.base_path,
                'haproxy_base_cert_dir': self.certificates.base_dir,
                'ping_wrapper': self.ping_wrapper,
                'vrrp_check_script': self.check_script,
                'engine_repairs': repairs}
        if self.l4 is not None:
            info.update(self.l4.info())
        return info
