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
"""Paths, ports and names of one testbed instance.

Every service takes its port from ``port_base`` so that a test instance can
run beside the default one; every kernel object carries ``prefix``. A base
of 31000 or less keeps every port below the kernel's range for outgoing
connections (32768-60999 by default; see ``testbed.ports``).
"""

import json
import os

from sriov_octavia_testbed.plumbing import names

CLOUD_NAME = 'sriov-testbed'
DEFAULT_STATE_DIR = os.path.join('.state', 'testbed')
DEFAULT_PORT_BASE = 19000
DEFAULT_PREFIX = 'sotb'
HOST = '127.0.0.1'

# Offsets from the port base; with the default base they give the familiar
# OpenStack ports with a leading 1 (Neutron 19696, Octavia 19700, Barbican
# 19311, ...).
PORT_OFFSETS = {
    'barbican': 311,
    'neutron': 696,
    'octavia-api': 700,
    'identity': 701,
    'nova': 774,
    'redis': 379,
}

_SETTINGS_FILE = 'testbed.json'


class Testbed:
    """Where one testbed instance keeps its state and which ports it uses."""

    def __init__(self, state_dir=DEFAULT_STATE_DIR,
                 port_base=DEFAULT_PORT_BASE, prefix=DEFAULT_PREFIX):
        # The kernel objects' names must fit the 15 characters of an
        # interface name: the plumbing knows what fits (ValueError if not).
        names.Names(prefix)
        self.state_dir = os.path.abspath(state_dir)
        self.port_base = int(port_base)
        self.prefix = prefix

    @classmethod
    def load(cls, state_dir=DEFAULT_STATE_DIR, port_base=None, prefix=None):
        """The instance recorded in ``state_dir``, overridden where given.

        ``down`` and ``status`` then need no more than the state directory.
        """
        saved = {}
        path = os.path.join(os.path.abspath(state_dir), _SETTINGS_FILE)
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
        return cls(state_dir,
                   port_base=(port_base if port_base is not None
                              else saved.get('port_base', DEFAULT_PORT_BASE)),
                   prefix=prefix or saved.get('prefix', DEFAULT_PREFIX))

    def save(self):
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.path(_SETTINGS_FILE), 'w') as f:
            json.dump({'port_base': self.port_base, 'prefix': self.prefix},
                      f, indent=2)

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    @property
    def logs_dir(self):
        return self.path('logs')

    @property
    def run_dir(self):
        return self.path('run')

    @property
    def etc_dir(self):
        return self.path('etc')

    @property
    def clouds_yaml(self):
        return self.path('clouds.yaml')

    @property
    def inventory_file(self):
        return self.path('inventory.json')

    @property
    def octavia_conf(self):
        return self.path('etc', 'octavia.conf')

    @property
    def octavia_service_auth_conf(self):
        """Octavia's service user, read after octavia.conf.

        See ``services.octavia.service_auth_conf``.
        """
        return self.path('etc', 'octavia-service-auth.conf')

    @property
    def octavia_conf_files(self):
        """The ``--config-file`` arguments of Octavia's processes."""
        return [self.octavia_conf, self.octavia_service_auth_conf]

    def socket_path(self, kind):
        """Driver-agent socket ``kind`` (status, stats, get)."""
        return self.path('run', f'{kind}.sock')

    def port(self, service):
        return self.port_base + PORT_OFFSETS[service]

    def ports(self):
        """Every port this instance's services listen on."""
        return sorted(self.port(service) for service in PORT_OFFSETS)

    def url(self, service):
        return f'http://{HOST}:{self.port(service)}'

    @property
    def mgmt_bridge(self):
        return f'{self.prefix}-mgmt'

    @property
    def mgmt_cidr(self):
        """The management subnet; its gateway sits on the root namespace.

        Its route lives in the root namespace, so it must overlap neither
        the machine's own networks (192.0.2.0/24 is one of them here) nor
        another instance's: one /24 of the benchmarking range 198.18.0.0/15
        per thousand of the port base.
        """
        return f'198.18.{(self.port_base // 1000) % 256}.0/24'

    def directories(self):
        return [self.state_dir, self.logs_dir, self.run_dir, self.etc_dir,
                self.path('neutron'), self.path('octavia'),
                self.path('barbican'),
                self.path('redis'), self.path('nova'),
                self.path('run', 'locks')]
