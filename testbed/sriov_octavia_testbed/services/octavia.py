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

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import identity
from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import inifile

PROVIDER = 'amphora-sriov'
PROVIDER_DESCRIPTION = 'SR-IOV amphora provider'
# How octavia_wsgi finds the configuration files under uwsgi (joined by
# os.pathsep, read in that order).
CONFIG_FILE_ENV = 'SRIOV_TESTBED_OCTAVIA_CONF'
# How the API and the driver-agent find the database whose transactions
# they serialise (testbed.sqlite_locking).
DB_FILE_ENV = 'SRIOV_TESTBED_OCTAVIA_DB'
SOCKETS = ('status', 'stats', 'get')


def db_file(testbed):
    return testbed.path('octavia', 'octavia.sqlite')


def octavia_conf(testbed, cloud=None):
    """octavia.conf of the API, the driver-agent and this project's worker.

    ``cloud``: what the seeded cloud holds (see lifecycle._seed); the
    defaults an operator configures for amphorae come from it. With
    ``key_manager`` true (Barbican runs) certificates of users' listeners
    are Barbican secrets, read as Octavia's service user
    (``service_auth_conf``) once the API granted it access.
    """
    sockets = {kind: testbed.socket_path(kind) for kind in SOCKETS}
    cloud = cloud or {}
    amphora_defaults = {
        'amp_image_tag': cloud.get('amp_image_tag'),
        'amp_flavor_id': cloud.get('amp_flavor_id'),
        'amp_boot_network_list': cloud.get('amp_boot_network_list'),
        'amp_secgroup_list': cloud.get('amp_secgroup_list'),
        # The CA the amphorae's agents trust for the controller.
        'client_ca': cloud.get('agent_ca_cert'),
    }
    agent_tls = {
        'client_cert': cloud.get('agent_client_cert'),
        'server_ca': cloud.get('agent_ca_cert'),
    }
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
            'connection': 'sqlite:///' + db_file(testbed),
            # oslo.db on file SQLite uses a NullPool, which rejects the
            # pool_timeout Octavia sets by default.
            'pool_timeout': None,
        },
        'controller_worker': {
            # Octavia's own controller never runs here: only the defaults
            # below matter, which this project's driver and worker read.
            'network_driver': 'network_noop_driver',
            'compute_driver': 'compute_noop_driver',
            'amphora_driver': 'amphora_noop_driver',
            'image_driver': 'image_noop_driver',
            'volume_driver': 'volume_noop_driver',
            # Amphorae get their files on a config drive, as Octavia's do.
            'user_data_config_drive': True,
            **{key: value for key, value in amphora_defaults.items()
               if value},
        },
        'haproxy_amphora': dict(
            {key: value for key, value in agent_tls.items() if value},
            # The amphorae's haproxy shares this machine's open-file limit
            # (hard 20000 in the test containers, not raisable), and needs
            # two per connection: Octavia's 50000 connections per listener
            # would keep it from starting. 1000 leaves room for nine
            # listeners on one load balancer.
            default_connection_limit=1000),
        'certificates': dict(
            {key: value for key, value in (
                ('ca_certificate', cloud.get('agent_ca_cert')),
                ('ca_private_key', cloud.get('agent_ca_key'))) if value},
            cert_generator='local_cert_generator',
            **_cert_manager(cloud.get('key_manager'))),
        'driver_agent': {
            'status_socket_path': sockets['status'],
            'stats_socket_path': sockets['stats'],
            'get_socket_path': sockets['get'],
            'enabled_provider_agents': PROVIDER,
            # "down" allows 10 s before it kills.
            'provider_agent_shutdown_timeout': 5,
        },
        'oslo_concurrency': {'lock_path': testbed.path('run', 'locks')},
        # How this project's driver and worker reach the services, as
        # Octavia's own options (sriov_octavia.clients): Neutron and Nova
        # take no token, so no credentials here, and every endpoint is
        # given, the same ones as the CLI's clouds.yaml (testbed.clouds).
        # Octavia's processes read service_auth_conf after this file,
        # which makes them Octavia's service user of the identity
        # stand-in.
        'service_auth': {'auth_type': 'none'},
        'neutron': {'endpoint_override': testbed.url('neutron') + '/'},
        'nova': {'endpoint_override': testbed.url('nova') + '/compute/v2.1'},
        'glance': {'endpoint_override': testbed.url('nova') + '/image'},
        # The jobboard and flow persistence, as Octavia's own would be set.
        'task_flow': {
            'jobboard_backend_driver': 'redis_taskflow_driver',
            'jobboard_backend_hosts': config.HOST,
            'jobboard_backend_port': testbed.port('redis'),
            'persistence_connection': 'sqlite:///' + testbed.path(
                'octavia', 'taskflow.sqlite'),
        },
        'sriov_worker': {
            'jobboard_name': f'{testbed.prefix}_sriov_octavia_jobboard',
            'status_socket_path': sockets['status'],
            'stats_socket_path': sockets['stats'],
            'get_socket_path': sockets['get'],
        },
    }


def _cert_manager(key_manager):
    """``[certificates]``: Barbican's certificate manager, if it runs.

    Upstream's names: ``barbican_cert_manager`` reads a listener's PKCS12
    secret, ``barbican_acl_auth`` makes the API add Octavia's service user
    to the secret's read ACL with the user's token first. Barbican is found
    in the service user's catalog (no ``endpoint`` given). Without
    Barbican, Octavia's no-op manager, as before Barbican was part of the
    testbed.
    """
    if not key_manager:
        return {'cert_manager': 'noop_cert_manager'}
    return {'cert_manager': 'barbican_cert_manager',
            'barbican_auth': 'barbican_acl_auth',
            'region_name': clouds.REGION,
            'endpoint_type': 'public'}


def service_auth_conf(testbed, authenticated=True):
    """What Octavia's processes read after octavia.conf: the service user.

    Octavia reaches Barbican as its service user, with ``[service_auth]``:
    its catalog gives Barbican's address, its user ID is what the API puts
    in a secret's ACL, and the worker reads the secret with it. Neutron and
    Nova ignore the token it brings them.

    It is a file of its own so that octavia.conf alone keeps describing a
    cloud without Keystone: commands and tests that read octavia.conf (or
    copy ``[service_auth] auth_type`` from it) reach Neutron and Nova as
    they did. ``authenticated`` false (no identity stand-in): none.
    """
    if not authenticated:
        return {'service_auth': {'auth_type': 'none'}}
    return {'service_auth': dict(
        clouds.user_auth(testbed, identity.OCTAVIA_USER,
                         identity.SERVICE_PROJECT),
        auth_type='password', region_name=clouds.REGION)}


def write_conf(testbed, cloud=None):
    """octavia.conf and the service user's file (``cloud['identity']``)."""
    cloud = cloud or {}
    inifile.write(testbed.octavia_conf, octavia_conf(testbed, cloud))
    inifile.write(testbed.octavia_service_auth_conf, service_auth_conf(
        testbed, authenticated=cloud.get('identity', False)))


class OctaviaApi(base.Service):
    name = 'octavia-api'
    port_name = 'octavia-api'
    # Creates the schema and fills the lookup tables when run (python -m).
    schema_module = 'sriov_octavia_testbed.services.octavia_db'
    needs_cloud = True

    @property
    def uwsgi_ini_file(self):
        return self.testbed.path('etc', 'octavia-api-uwsgi.ini')

    @property
    def db_file(self):
        return db_file(self.testbed)

    def prepare(self):
        inifile.write(self.uwsgi_ini_file, base.uwsgi_ini(
            config.HOST, self.port,
            'sriov_octavia_testbed.services.octavia_wsgi:application'))

    def init_db_argv(self):
        """Creates the schema in ``db_file`` and fills the lookup tables."""
        return [sys.executable, '-m', self.schema_module,
                '--connection', 'sqlite:///' + self.db_file]

    def argv(self):
        return [os.path.join(sys.prefix, 'bin', 'uwsgi'),
                '--ini', self.uwsgi_ini_file]

    def env(self):
        files = os.pathsep.join(self.testbed.octavia_conf_files)
        return {CONFIG_FILE_ENV: files, DB_FILE_ENV: self.db_file}

    def ready(self):
        return base.http_answers(self.testbed.url('octavia-api') + '/')


class DriverAgent(base.Service):
    name = 'octavia-driver-agent'
    needs_cloud = True

    def prepare(self):
        # Sockets a killed agent left behind would pass for readiness.
        for kind in SOCKETS:
            try:
                os.unlink(self.testbed.socket_path(kind))
            except FileNotFoundError:
                pass

    def argv(self):
        argv = [sys.executable, '-m',
                'sriov_octavia_testbed.services.octavia_driver_agent']
        for path in self.testbed.octavia_conf_files:
            argv += ['--config-file', path]
        return argv

    def env(self):
        return {DB_FILE_ENV: db_file(self.testbed)}

    def ready(self):
        return all(os.path.exists(self.testbed.socket_path(kind))
                   for kind in SOCKETS)
