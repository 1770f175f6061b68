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
"""What every testbed service provides, and the readiness probes."""

import argparse
import socket
import urllib.error
import urllib.request

from sriov_octavia_testbed.services import process


def uwsgi_ini(host, port, module):
    """uwsgi settings serving WSGI ``module`` for a service on SQLite.

    SQLite takes one writer: one process, one thread.
    """
    return {'uwsgi': {
        'http-socket': f'{host}:{port}',
        'module': module,
        'need-app': True,
        'master': True,
        'die-on-term': True,
        'lazy-apps': True,
        'enable-threads': True,
        'processes': 1,
        'threads': 1,
        'buffer-size': 65535,
        'socket-timeout': 30,
        'add-header': 'Connection: close',
        'exit-on-reload': False,
    }}


def http_answers(url, timeout=2.0):
    """True once ``url`` gives any HTTP answer below 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (OSError, urllib.error.URLError):
        return False


def tcp_answers(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Service:
    """One process of a testbed instance.

    Subclasses set ``name`` (pid and log file names), ``port_name`` (key of
    ``config.PORT_OFFSETS``, None without a TCP port), ``ready_timeout``,
    ``needs_cloud`` and ``requires``, and implement ``argv`` and
    ``ready``; ``prepare`` writes their configuration and runs before
    every start.
    """

    name = None
    port_name = None
    ready_timeout = 60
    # Started after the cloud is seeded, from configuration naming what
    # the seed made (octavia.conf).
    needs_cloud = False
    # Names of the services without which this one is of no use: it is
    # not started when one of them is skipped or not installed.
    requires = ()

    def __init__(self, testbed):
        self.testbed = testbed

    @property
    def port(self):
        return self.testbed.port(self.port_name) if self.port_name else None

    def available(self):
        """False when the code of this service is not installed."""
        return True

    def argv(self):
        raise NotImplementedError

    def env(self):
        return {}

    def prepare(self):
        """Write configuration files; runs before each start."""

    def ready(self):
        raise NotImplementedError

    @property
    def process(self):
        return process.Process(self.name, self.argv(), self.testbed.run_dir,
                               self.testbed.logs_dir, env=self.env(),
                               cwd=self.testbed.state_dir)

    def wait_ready(self):
        process.wait_until(self.ready, self.process, 'readiness',
                           self.ready_timeout)


def schema_main(init_db, description, argv=None):
    """``python -m`` entry of a schema module: ``--connection URL``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--connection', required=True)
    init_db(parser.parse_args(argv).connection)
