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
"""A real redis-server on loopback for the taskflow jobboard."""

import shutil

import redis as redis_client

from sriov_octavia_testbed import config
from sriov_octavia_testbed.services import base


class Redis(base.Service):
    name = 'redis'
    port_name = 'redis'
    ready_timeout = 20

    @property
    def conf_file(self):
        return self.testbed.path('etc', 'redis.conf')

    def available(self):
        return shutil.which('redis-server') is not None

    def prepare(self):
        # Jobs live as long as the testbed: no snapshots, no append log.
        lines = [
            f'bind {config.HOST}',
            f'port {self.port}',
            'protected-mode yes',
            'daemonize no',
            'save ""',
            'appendonly no',
            f'dir {self.testbed.path("redis")}',
            # stdout is the supervisor's log file.
            'logfile ""',
        ]
        with open(self.conf_file, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def argv(self):
        return [shutil.which('redis-server') or 'redis-server',
                self.conf_file]

    def ready(self):
        client = redis_client.Redis(host=config.HOST, port=self.port,
                                    socket_connect_timeout=1)
        try:
            return client.ping()
        except redis_client.RedisError:
            return False
        finally:
            client.close()
