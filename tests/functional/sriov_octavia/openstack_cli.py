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
"""What a user and an operator type, for the tests against a testbed.

The real ``openstack`` client installed beside the running interpreter,
pointed at a testbed instance by its clouds.yaml.
"""

import configparser
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid

from sriov_octavia_testbed import lifecycle
from sriov_octavia_testbed import seed

PROVIDER = 'amphora-sriov'
# Seconds one command may take, --wait included (a boot, an agent start,
# a VF plug on a machine the other tests keep busy: CI runs three testbeds
# side by side on two cores).
TIMEOUT = 480


def _path():
    # The venv's bin first, so "openstack" is the client installed here.
    return os.pathsep.join([os.path.dirname(sys.executable),
                            os.environ.get('PATH', '')])


def cli(tb, *args, check=True):
    """Run ``openstack <args>`` against ``tb``; the completed process."""
    result = subprocess.run(
        ['openstack', *args], env=tb.cli_env({'PATH': _path()}),
        capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cli_json(tb, *args):
    return json.loads(cli(tb, *args, '-f', 'json').stdout)


def unique(tb, name):
    """A name of this testbed's tests that no other test uses."""
    return f'{tb.prefix}-{name}-{uuid.uuid4().hex[:8]}'


def make_flavor(tb, conn, **metadata):
    """An Octavia flavor of this provider; ``sriov_vip`` unless told.

    The compute flavor is the seeded one the SR-IOV aggregate's hosts
    serve; ``metadata`` adds to or overrides the flavor profile's data.
    """
    compute_flavor = conn.compute.find_flavor(seed.SRIOV_FLAVOR,
                                              ignore_missing=False)
    data = json.dumps(dict({'compute_flavor': compute_flavor.id,
                            'sriov_vip': True}, **metadata))
    profile = cli_json(tb, 'loadbalancer', 'flavorprofile', 'create',
                       '--name', unique(tb, 'profile'), '--provider',
                       PROVIDER, '--flavor-data', data)
    return cli_json(tb, 'loadbalancer', 'flavor', 'create',
                    '--name', unique(tb, 'flavor'), '--flavorprofile',
                    profile['id'], '--enable')


def create_load_balancer(tb, name, flavor_id):
    """``loadbalancer create`` on the seeded VIP subnet, waiting for it."""
    return cli_json(tb, 'loadbalancer', 'create', '--name', name,
                    '--flavor', flavor_id, '--vip-subnet-id', 'vip-subnet',
                    '--wait')


def wait_for_status(tb, lb_id, wanted, timeout=TIMEOUT):
    """The load balancer once its provisioning status is in ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        lb = cli_json(tb, 'loadbalancer', 'show', lb_id)
        if lb['provisioning_status'] in wanted:
            return lb
        assert time.monotonic() < deadline, (
            f'{lb}\nwhat the worker logged last:\n{worker_log_tail(tb)}')
        time.sleep(2)


def worker_log_path(tb):
    """The worker logs into the driver-agent's log, which it runs in."""
    return tb.path('logs', 'octavia-driver-agent.log')


def worker_log(tb):
    """What the worker has logged so far."""
    with open(worker_log_path(tb), errors='replace') as log:
        return log.read()


def worker_log_tail(tb, chars=6000):
    """The end of ``worker_log``, or why there is none."""
    try:
        return worker_log(tb)[-chars:]
    except OSError as error:
        return f'(no log: {error})'


@contextlib.contextmanager
def octavia_conf(tb, **sections):
    """octavia.conf with ``{section: {option: value}}`` set, then back.

    The worker runs inside the driver-agent, which is restarted both ways.
    """
    with open(tb.octavia_conf) as conf_file:
        original = conf_file.read()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(original)
    for section, options in sections.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for option, value in options.items():
            parser.set(section, option, str(value))
    with open(tb.octavia_conf, 'w') as conf_file:
        parser.write(conf_file)
    lifecycle.restart(tb, 'octavia-driver-agent')
    try:
        yield
    finally:
        with open(tb.octavia_conf, 'w') as conf_file:
            conf_file.write(original)
        lifecycle.restart(tb, 'octavia-driver-agent')
