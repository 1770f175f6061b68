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
"""Where the engine keeps its files.

Everything lives under one base directory so that several agents on one
file system (a test bed) never share a file::

    <base>/<lb id>.sock                haproxy stats socket (the controller
                                       renders this path into the config)
    <base>/loadbalancers/<lb id>/      haproxy.cfg, haproxy.pid
    <base>/vrrp/                       keepalived.conf, its pid files and
                                       the VRRP check script
"""

import hashlib
import os
import re

from amphora_agent.engine import errors

# Load balancer ids are UUIDs; anything that could leave the directory or
# make the stats socket path too long for haproxy is refused.
_LOADBALANCER_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$')
_RUN_DIR = '/run/amphora-sriov-agent'
CHECK_SCRIPT_NAME = 'check-haproxy'


def default_base_path(state_file):
    """A short directory belonging to the agent that keeps ``state_file``.

    haproxy accepts stats socket paths of 97 bytes at most, too few for a
    directory beside a state file deep in a test bed; a digest of that
    directory's path is short and still names one agent only.
    """
    state_dir = os.path.dirname(os.path.abspath(state_file))
    digest = hashlib.sha256(state_dir.encode()).hexdigest()[:16]
    return os.path.join(_RUN_DIR, digest)


def check_loadbalancer_id(loadbalancer_id):
    if not _LOADBALANCER_ID.match(loadbalancer_id):
        raise errors.InvalidName(
            f'{loadbalancer_id!r} is not a load balancer id (letters, '
            'digits, "-" and "_", at most 64)')
    return loadbalancer_id


class Layout:
    def __init__(self, base_path):
        self.base_path = os.path.abspath(base_path)
        self.loadbalancers_dir = os.path.join(self.base_path,
                                              'loadbalancers')
        self.vrrp_dir = os.path.join(self.base_path, 'vrrp')

    def loadbalancer_dir(self, loadbalancer_id):
        return os.path.join(self.loadbalancers_dir,
                            check_loadbalancer_id(loadbalancer_id))

    def haproxy_config(self, loadbalancer_id):
        return os.path.join(self.loadbalancer_dir(loadbalancer_id),
                            'haproxy.cfg')

    def haproxy_pid_file(self, loadbalancer_id):
        return os.path.join(self.loadbalancer_dir(loadbalancer_id),
                            'haproxy.pid')

    def stats_socket(self, loadbalancer_id):
        return os.path.join(self.base_path,
                            f'{check_loadbalancer_id(loadbalancer_id)}.sock')

    def loadbalancer_ids(self):
        """The load balancers with a stored haproxy configuration."""
        try:
            names = sorted(os.listdir(self.loadbalancers_dir))
        except FileNotFoundError:
            return []
        return [name for name in names if os.path.exists(
            os.path.join(self.loadbalancers_dir, name, 'haproxy.cfg'))]

    @property
    def keepalived_config(self):
        return os.path.join(self.vrrp_dir, 'keepalived.conf')

    def keepalived_pid_file(self, process='keepalived'):
        """keepalived's pid file, or that of its vrrp/checkers/bfd child."""
        return os.path.join(self.vrrp_dir, f'{process}.pid')

    @property
    def check_script(self):
        return os.path.join(self.vrrp_dir, CHECK_SCRIPT_NAME)
