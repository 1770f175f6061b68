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
"""The real Barbican API: uwsgi, SQLite, simple_crypto, Keystone tokens.

Octavia keeps the TLS certificates of users' listeners in Barbican: the
user stores a PKCS12 bundle as a secret, Octavia's API grants Octavia's
service user read access to it (an ACL, set with the user's token) and
reads it as that service user. Barbican therefore runs as it does in a
cloud, with its installed api-paste.ini, whose /v1 pipeline validates
every token through keystonemiddleware, here against the identity
stand-in (testbed.identity) as the ``barbican`` service user.

Secrets are encrypted by the ``simple_crypto`` plugin of the default
``store_crypto`` secret store, under a key-encryption key made for the
instance and kept beside its database: ``down`` forgets both together.

uwsgi loads that pipeline itself (``paste``), as Barbican's own WSGI script
would from ``/etc/barbican``. Barbican reads its configuration when its
modules are imported, from the default places only (``~/.barbican/``,
``~/``, ``/etc/barbican/``): the process runs with its configuration
directory as HOME.
"""

import importlib.util
import os
import stat
import sys

from cryptography import fernet

from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import identity
from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import inifile


class Barbican(base.Service):
    name = 'barbican'
    port_name = 'barbican'
    # Every request of /v1 is validated there.
    requires = ('identity',)
    # Its first start creates the schema.
    ready_timeout = 120

    @property
    def conf_dir(self):
        return self.testbed.path('etc', 'barbican')

    @property
    def conf_file(self):
        # Found as ~/barbican.conf.
        return os.path.join(self.conf_dir, 'barbican.conf')

    @property
    def db_file(self):
        return self.testbed.path('barbican', 'barbican.sqlite')

    @property
    def kek_file(self):
        return self.testbed.path('barbican', 'kek')

    @property
    def paste_file(self):
        # As Neutron's: the file the package installs.
        return os.path.join(sys.prefix, 'etc', 'barbican',
                            'barbican-api-paste.ini')

    def available(self):
        return importlib.util.find_spec('barbican') is not None

    def kek(self):
        """The instance's key-encryption key, made on first use."""
        try:
            with open(self.kek_file) as f:
                return f.read().strip()
        except FileNotFoundError:
            pass
        key = fernet.Fernet.generate_key().decode()
        fd = os.open(self.kek_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, 'w') as f:
            f.write(key + '\n')
        return key

    def barbican_conf(self, kek):
        keystone = clouds.user_auth(self.testbed, identity.BARBICAN_USER,
                                    identity.SERVICE_PROJECT)
        return {
            'DEFAULT': {
                'debug': True,
                # The supervisor captures stderr into logs/barbican.log.
                'use_stderr': True,
                # The secrets' hrefs name this address.
                'host_href': self.testbed.url('barbican'),
                # Barbican's alembic migrations are not made for SQLite;
                # its models create the head schema (and stamp it).
                'db_auto_create': True,
            },
            'database': {'connection': 'sqlite:///' + self.db_file},
            'secretstore': {'enabled_secretstore_plugins': 'store_crypto'},
            'crypto': {'enabled_crypto_plugins': 'simple_crypto'},
            'simple_crypto_plugin': {'kek': kek},
            # No worker: orders and the like are processed in the API.
            'queue': {'enable': False},
            'keystone_authtoken': dict(
                keystone, auth_type='password',
                www_authenticate_uri=keystone['auth_url'],
                region_name=clouds.REGION),
            'oslo_concurrency': {
                'lock_path': self.testbed.path('run', 'locks')},
        }

    def prepare(self):
        os.makedirs(self.conf_dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.db_file), exist_ok=True)
        inifile.write(self.conf_file, self.barbican_conf(self.kek()))
        inifile.write(os.path.join(self.conf_dir, 'uwsgi.ini'),
                      self.uwsgi_ini())

    def uwsgi_ini(self):
        settings = base.uwsgi_ini(config.HOST, self.port, module=None)
        settings['uwsgi'].pop('module')
        settings['uwsgi']['paste'] = 'config:' + self.paste_file
        return settings

    def argv(self):
        return [os.path.join(sys.prefix, 'bin', 'uwsgi'),
                '--ini', os.path.join(self.conf_dir, 'uwsgi.ini')]

    def env(self):
        return {'HOME': self.conf_dir}

    def ready(self):
        # The version document, served without a token.
        return base.http_answers(self.testbed.url('barbican') + '/')
