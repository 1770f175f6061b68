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
"""The real octavia-api and octavia-driver-agent with this project enabled."""

import os
import sys

from testbed import config
from testbed.services import base
from testbed.services import inifile

PROVIDER = 'amphora-sriov'
PROVIDER_DESCRIPTION = 'SR-IOV amphora provider'
# How octavia_wsgi finds the configuration under uwsgi.
CONFIG_FILE_ENV = 'SRIOV_TESTBED_OCTAVIA_CONF'
SOCKETS = ('status', 'stats', 'get')


def octavia_conf(testbed):
    """octavia.conf of the API, the driver-agent and this project's worker."""
    sockets = {kind: testbed.socket_path(kind) for kind in SOCKETS}
    return {
        'DEFAULT': {
            'debug': True,
            # The supervisor captures stderr into logs/<service>.log.
            'use_stderr': True,
        },
        'api_settings': {
            'bind_host': config.HOST,
            'bind_port': testbed.port('octavia-api'),
            'api_base_uri': testbed.url('octavia-api'),
            'auth_strategy': 'noauth',
            # Octavia's own amphora provider needs its controller worker,
            # health manager and a message queue: only this project's.
            'enabled_provider_drivers': f'{PROVIDER}:{PROVIDER_DESCRIPTION}',
            'default_provider_driver': PROVIDER,
        },
        'database': {
            'connection': 'sqlite:///' + testbed.path('octavia',
                                                      'octavia.sqlite'),
            # oslo.db on file SQLite uses a NullPool, which rejects the
            # pool_timeout Octavia sets by default.
            'pool_timeout': None,
        },
        'controller_worker': {
            'network_driver': 'network_noop_driver',
            'compute_driver': 'compute_noop_driver',
            'amphora_driver': 'amphora_noop_driver',
            'image_driver': 'image_noop_driver',
            'volume_driver': 'volume_noop_driver',
        },
        'certificates': {'cert_manager': 'noop_cert_manager'},
        'driver_agent': {
            'status_socket_path': sockets['status'],
            'stats_socket_path': sockets['stats'],
            'get_socket_path': sockets['get'],
            'enabled_provider_agents': PROVIDER,
            # "down" allows 10 s before it kills.
            'provider_agent_shutdown_timeout': 5,
        },
        'oslo_concurrency': {'lock_path': testbed.path('run', 'locks')},
        'sriov_octavia': {
            'cloud': config.CLOUD_NAME,
            'clouds_yaml': testbed.clouds_yaml,
        },
        'sriov_worker': {
            'jobboard_backend_driver': 'redis_taskflow_driver',
            'jobboard_backend_hosts': config.HOST,
            'jobboard_backend_port': testbed.port('redis'),
            'jobboard_name': f'{testbed.prefix}_sriov_octavia_jobboard',
            'persistence_connection': 'sqlite:///' + testbed.path(
                'octavia', 'taskflow.sqlite'),
            'status_socket_path': sockets['status'],
            'stats_socket_path': sockets['stats'],
            'get_socket_path': sockets['get'],
        },
    }


def write_conf(testbed):
    inifile.write(testbed.octavia_conf, octavia_conf(testbed))


class OctaviaApi(base.Service):
    name = 'octavia-api'
    port_name = 'octavia-api'

    @property
    def uwsgi_ini_file(self):
        return self.testbed.path('etc', 'octavia-api-uwsgi.ini')

    @property
    def db_file(self):
        return self.testbed.path('octavia', 'octavia.sqlite')

    def prepare(self):
        write_conf(self.testbed)
        inifile.write(self.uwsgi_ini_file, {'uwsgi': {
            'http-socket': f'{config.HOST}:{self.port}',
            'module': 'testbed.services.octavia_wsgi:application',
            'need-app': True,
            'master': True,
            'die-on-term': True,
            'lazy-apps': True,
            'enable-threads': True,
            # SQLite: one process, one thread.
            'processes': 1,
            'threads': 1,
            'buffer-size': 65535,
            'socket-timeout': 30,
            'add-header': 'Connection: close',
            'exit-on-reload': False,
        }})

    def init_db_argv(self):
        """Creates the schema in ``db_file`` and fills the lookup tables."""
        return [sys.executable, '-m', 'testbed.services.octavia_db',
                '--connection', 'sqlite:///' + self.db_file]

    def argv(self):
        return [os.path.join(sys.prefix, 'bin', 'uwsgi'),
                '--ini', self.uwsgi_ini_file]

    def env(self):
        return {CONFIG_FILE_ENV: self.testbed.octavia_conf}

    def ready(self):
        return base.http_answers(self.testbed.url('octavia-api') + '/')


class DriverAgent(base.Service):
    name = 'octavia-driver-agent'

    def prepare(self):
        write_conf(self.testbed)
        # Sockets a killed agent left behind would pass for readiness.
        for kind in SOCKETS:
            try:
                os.unlink(self.testbed.socket_path(kind))
            except FileNotFoundError:
                pass

    def argv(self):
        return [os.path.join(sys.prefix, 'bin', 'octavia-driver-agent'),
                '--config-file', self.testbed.octavia_conf]

    def ready(self):
        return all(os.path.exists(self.testbed.socket_path(kind))
                   for kind in SOCKETS)
