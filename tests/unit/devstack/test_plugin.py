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
"""The devstack plugin's phases, run by bash against stub devstack functions.

Each test sources devstack/settings and devstack/plugin.sh as devstack does
(``plugin.sh <mode> <phase>``), with tests/unit/devstack/stubs.sh standing
in for devstack's functions: octavia.conf is a real file edited by the
stubs' iniset, every other devstack call is recorded and checked.
"""

import configparser
import json
import os
import shlex
import subprocess
import sys

from oslo_config import cfg
import pytest

from amphora_agent import config as agent_config
from sriov_octavia.amphora import bootstrap
from sriov_octavia import flavor as sriov_flavor
from sriov_octavia import metadata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STUB_DIR = os.path.dirname(os.path.abspath(__file__))
ELEMENT = os.path.join(REPO, 'elements', 'amphora-sriov-agent')

OCTAVIA_CONF = """\
[api_settings]
enabled_provider_drivers = amphora:The Octavia Amphora driver,\
octavia:Deprecated alias

[driver_agent]
status_socket_path = /var/run/octavia/devstack-status.sock
stats_socket_path = /var/run/octavia/devstack-stats.sock
get_socket_path = /var/run/octavia/devstack-get.sock

[service_auth]
auth_url = http://10.0.0.5/identity
auth_type = password
username = octavia
password = secret
user_domain_name = Default
project_name = service
project_domain_name = Default
"""

FAKE_DIB = """\
#!/bin/bash
echo "diskimage-create $* DIB_LOCAL_ELEMENTS=$DIB_LOCAL_ELEMENTS \
DIB_LOCAL_ELEMENTS_PATH=$DIB_LOCAL_ELEMENTS_PATH \
DIB_REPOLOCATION_sriov_octavia=$DIB_REPOLOCATION_sriov_octavia \
DIB_OCTAVIA_AMP_USE_NFTABLES=$DIB_OCTAVIA_AMP_USE_NFTABLES" >> "$STUB_CALLS"
while getopts "o:" opt; do [ "$opt" = o ] && touch "$OPTARG"; done
"""


class Devstack:
    """A fake devstack tree in tmp_path in which plugin phases run."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.octavia_conf = tmp_path / 'etc' / 'octavia' / 'octavia.conf'
        self.octavia_conf.parent.mkdir(parents=True)
        self.octavia_conf.write_text(OCTAVIA_CONF)
        self.calls_file = tmp_path / 'calls'
        self.calls_file.write_text('')
        octavia_dir = tmp_path / 'octavia'
        dib = octavia_dir / 'diskimage-create' / 'diskimage-create.sh'
        dib.parent.mkdir(parents=True)
        dib.write_text(FAKE_DIB)
        dib.chmod(0o755)
        self.env = {
            'PATH': os.environ['PATH'],
            'STUB_DIR': STUB_DIR,
            'STUB_PYTHON': sys.executable,
            'STUB_CALLS': str(self.calls_file),
            'STUB_DISTRO': 'ubuntu',
            'DEST': str(tmp_path / 'stack'),
            'DATA_DIR': str(tmp_path / 'data'),
            'SERVICE_HOST': '10.0.0.5',
            'SERVICE_PROJECT_NAME': 'service',
            'OCTAVIA_CONF': str(self.octavia_conf),
            'OCTAVIA_DIR': str(octavia_dir),
            'SRIOV_OCTAVIA_DIR': REPO,
            'ENABLED_SERVICES': 'mysql,n-cpu,octavia,o-api,o-da',
        }

    def run(self, mode, phase=None, **env):
        script = (f'source {shlex.quote(STUB_DIR)}/stubs.sh; '
                  f'source {shlex.quote(REPO)}/devstack/settings; '
                  f'source {shlex.quote(REPO)}/devstack/plugin.sh "$@"')
        argv = ['bash', '-euc', script, 'plugin.sh', mode]
        if phase:
            argv.append(phase)
        done = subprocess.run(argv, env={**self.env, **env},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    def conf(self):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.octavia_conf)
        return parser

    def calls(self):
        return [shlex.split(line)
                for line in self.calls_file.read_text().splitlines()]

    def calls_of(self, name):
        return [call[1:] for call in self.calls() if call[0] == name]


@pytest.fixture
def devstack(tmp_path):
    return Devstack(tmp_path)


def _option_after(call, flag):
    return call[call.index(flag) + 1]


def test_install_develops_the_repository_and_redis(devstack):
    devstack.run('stack', 'install')
    assert devstack.calls_of('setup_develop') == [[REPO]]
    assert devstack.calls_of('install_package') == [['redis-server']]


def test_install_on_rpm_distributions_uses_their_redis_name(devstack):
    devstack.run('stack', 'install', STUB_DISTRO='fedora')
    assert devstack.calls_of('install_package') == [['redis']]


def test_post_config_enables_provider_and_agent(devstack):
    devstack.run('stack', 'post-config')
    conf = devstack.conf()
    assert conf['api_settings']['enabled_provider_drivers'] == (
        'amphora:The Octavia Amphora driver,octavia:Deprecated alias,'
        'amphora-sriov:SR-IOV amphora provider')
    assert conf['driver_agent']['enabled_provider_agents'] == 'amphora-sriov'


def test_post_config_sets_our_option_groups(devstack):
    devstack.run('stack', 'post-config')
    conf = devstack.conf()
    # Neutron, Nova and Glance are reached with the credentials Octavia's
    # plugin wrote: nothing of ours, nothing changed.
    assert 'sriov_octavia' not in conf
    assert dict(conf['service_auth']) == {
        'auth_url': 'http://10.0.0.5/identity', 'auth_type': 'password',
        'username': 'octavia', 'password': 'secret',
        'user_domain_name': 'Default', 'project_name': 'service',
        'project_domain_name': 'Default'}
    # The jobboard and persistence are Octavia's [task_flow] settings.
    task_flow = conf['task_flow']
    assert task_flow['jobboard_backend_driver'] == 'redis_taskflow_driver'
    assert task_flow['jobboard_backend_hosts'] == '10.0.0.5'
    assert task_flow['jobboard_backend_port'] == '6379'
    assert 'jobboard_backend_password' not in task_flow
    worker = conf['sriov_worker']
    assert worker['jobboard_name'] == 'sriov_octavia_jobboard'
    assert task_flow['persistence_connection'] == (
        'mysql+pymysql://root:secret@127.0.0.1/sriov_octavia_persistence'
        '?charset=utf8')
    # The worker must report through the sockets the driver-agent serves.
    for kind in ('status', 'stats', 'get'):
        assert worker[f'{kind}_socket_path'] == (
            f'/var/run/octavia/devstack-{kind}.sock')
    assert conf['sriov_amphora']['agent_port'] == '9443'
    assert devstack.calls_of('recreate_database') == [
        ['sriov_octavia_persistence']]
    assert devstack.calls_of('restart_service') == [['redis-server']]


def test_post_config_is_idempotent(devstack):
    devstack.run('stack', 'post-config')
    first = devstack.octavia_conf.read_text()
    devstack.run('stack', 'post-config')
    assert devstack.octavia_conf.read_text() == first


def test_post_config_keeps_an_existing_provider_entry(devstack):
    devstack.octavia_conf.write_text(
        '[api_settings]\nenabled_provider_drivers = '
        'amphora-sriov:Operator words, amphora:Amphora\n'
        '[driver_agent]\nenabled_provider_agents = other\n')
    devstack.run('stack', 'post-config')
    conf = devstack.conf()
    assert conf['api_settings']['enabled_provider_drivers'] == (
        'amphora-sriov:Operator words, amphora:Amphora')
    assert conf['driver_agent']['enabled_provider_agents'] == (
        'other,amphora-sriov')


def test_post_config_keeps_a_jobboard_octavia_runs(devstack):
    devstack.octavia_conf.write_text(
        '[task_flow]\njobboard_enabled = True\n'
        'jobboard_backend_hosts = 10.0.0.9\n'
        'persistence_connection = mysql+pymysql://o:p@db/octavia_tf\n')
    devstack.run('stack', 'post-config')
    conf = devstack.conf()
    assert conf['task_flow']['jobboard_backend_hosts'] == '10.0.0.9'
    assert conf['task_flow']['persistence_connection'] == (
        'mysql+pymysql://o:p@db/octavia_tf')
    assert conf['sriov_worker']['jobboard_name'] == 'sriov_octavia_jobboard'


def test_post_config_without_database_server_uses_sqlite(devstack):
    devstack.run('stack', 'post-config', ENABLED_SERVICES='o-api,o-da',
                 SRIOV_OCTAVIA_REDIS_PASSWORD='s3cret',
                 SRIOV_OCTAVIA_ENABLE_PROVIDER_AGENT='False')
    conf = devstack.conf()
    data_dir = devstack.env['DATA_DIR']
    assert conf['task_flow']['persistence_connection'] == (
        f'sqlite:///{data_dir}/sriov-octavia/taskflow.sqlite')
    assert os.path.isdir(os.path.join(data_dir, 'sriov-octavia'))
    assert conf['task_flow']['jobboard_backend_password'] == 's3cret'
    assert not conf.has_option('driver_agent', 'enabled_provider_agents')
    assert devstack.calls_of('recreate_database') == []


def test_extra_builds_image_with_the_element(devstack):
    devstack.run('stack', 'extra')
    dib = devstack.calls_of('diskimage-create')
    assert len(dib) == 1
    words = dict(word.split('=', 1) for word in dib[0] if '=' in word)
    assert words['DIB_LOCAL_ELEMENTS'] == 'amphora-sriov-agent'
    elements_path = words['DIB_LOCAL_ELEMENTS_PATH']
    assert os.path.isdir(os.path.join(elements_path, 'amphora-sriov-agent'))
    assert words['DIB_REPOLOCATION_sriov_octavia'] == REPO
    assert words['DIB_OCTAVIA_AMP_USE_NFTABLES'] == 'True'
    image = _option_after(dib[0], '-o')
    uploads = [call for call in devstack.calls_of('openstack')
               if call[2:4] == ['image', 'create']]
    assert len(uploads) == 1
    assert _option_after(uploads[0], '--file') == image
    assert _option_after(uploads[0], '--tag') == 'amphora-sriov'


def test_extra_without_image_build(devstack):
    devstack.run('stack', 'extra', SRIOV_OCTAVIA_BUILD_IMAGE='False')
    assert devstack.calls_of('diskimage-create') == []
    assert not any(call[2:4] == ['image', 'create']
                   for call in devstack.calls_of('openstack'))


def test_extra_creates_aggregate_flavor_and_octavia_flavor(devstack):
    devstack.run('stack', 'extra', SRIOV_OCTAVIA_BUILD_IMAGE='False')
    calls = [call[2:] for call in devstack.calls_of('openstack')]
    assert ['aggregate', 'set', '--property', 'sriov-nic=true',
            'sriov_aggregate'] in calls
    assert ['aggregate', 'add', 'host', 'sriov_aggregate',
            'devstack-host'] in calls
    flavor = next(call for call in calls if call[:2] == ['flavor', 'create'])
    assert 'sriov-nic=true' in flavor and '--private' in flavor
    profile = next(call for call in calls
                   if call[:3] == ['loadbalancer', 'flavorprofile',
                                   'create'])
    assert _option_after(profile, '--provider') == 'amphora-sriov'
    data = json.loads(_option_after(profile, '--flavor-data'))
    # What the driver will accept, naming the flavor just created.
    metadata.check_schema(sriov_flavor.SCHEMA, data, 'flavor metadata')
    assert data == {'compute_flavor': 'flavor-0001',
                    'amp_image_tag': 'amphora-sriov', 'sriov_vip': True}
    lb_flavor = next(call for call in calls
                     if call[:3] == ['loadbalancer', 'flavor', 'create'])
    assert _option_after(lb_flavor, '--flavorprofile') == 'profile-0001'
    assert '--enable' in lb_flavor
    assert devstack.calls_of('run_process') == []


def test_standalone_worker_service_runs_and_stops(devstack):
    services = devstack.env['ENABLED_SERVICES'] + ',sriov-octavia-worker'
    devstack.run('stack', 'extra', SRIOV_OCTAVIA_BUILD_IMAGE='False',
                 ENABLED_SERVICES=services)
    # devstack's run_process takes the command line as one argument.
    assert devstack.calls_of('run_process') == [[
        'sriov-octavia-worker', '/usr/local/bin/sriov-octavia-worker '
        f'--config-file {devstack.octavia_conf}']]
    devstack.run('unstack', ENABLED_SERVICES=services)
    assert devstack.calls_of('stop_process') == [['sriov-octavia-worker']]


def test_unstack_without_worker_service_stops_nothing(devstack):
    devstack.run('unstack')
    assert devstack.calls() == []


def test_clean_removes_image_and_state(devstack):
    image_dir = devstack.tmp / 'stack' / 'sriov-octavia-image'
    image_dir.mkdir(parents=True)
    (image_dir / 'amphora-sriov-x64-haproxy.qcow2').write_text('x')
    devstack.run('clean')
    assert not image_dir.exists()
    assert devstack.calls_of('recreate_database') == [
        ['sriov_octavia_persistence']]


def _element_file(*parts):
    return os.path.join(ELEMENT, *parts)


def test_element_scripts_are_executable_bash():
    for phase in ('install.d', 'post-install.d'):
        for name in os.listdir(_element_file(phase)):
            path = _element_file(phase, name)
            assert os.access(path, os.X_OK), path
            subprocess.run(['bash', '-n', path], check=True)


def test_element_installs_nftables_its_bindings_and_cloud_init():
    with open(_element_file('package-installs.yaml')) as f:
        packages = {line.split(':')[0] for line in f
                    if line.strip() and not line.startswith('#')}
    assert {'nftables', 'python3-nftables', 'cloud-init'} <= packages


def test_element_depends_on_what_installs_its_files():
    """static/ is copied by install-static, nothing else pulls it in."""
    with open(_element_file('element-deps')) as f:
        deps = {line.strip() for line in f if line.strip()}
    assert {'install-static', 'package-installs',
            'source-repositories'} <= deps


def test_element_leaves_the_agent_config_to_the_controller():
    """The image holds no agent configuration: cloud-init writes it."""
    with open(_element_file('install.d',
                            '75-amphora-sriov-agent-install')) as f:
        script = f.read()
    assert '<<CONF' not in script
    assert f'> {bootstrap.AGENT_CONF}' not in script
    for directory in ('/etc/octavia/certs', bootstrap.AGENT_CONF_DIR,
                      bootstrap.STATE_DIR):
        assert directory in script, directory
    assert not any(name.endswith('.conf')
                   for _, _, files in os.walk(_element_file('static'))
                   for name in files)


def _element_unit():
    with open(_element_file('static', 'usr', 'lib', 'systemd', 'system',
                            'amphora-sriov-agent.service')) as f:
        return f.read()


def test_element_unit_starts_the_agent_on_the_controllers_files():
    unit = _element_unit()
    command = (f'@VENV@/bin/amphora-sriov-agent --config-file '
               f'{bootstrap.AGENT_CONF} --config-dir '
               f'{bootstrap.AGENT_CONF_DIR}')
    lines = unit.splitlines()
    assert f'ExecStart={command}' in lines
    # After cloud-init's init stage, where write_files runs; not at all
    # without the controller's configuration (no restart loop).
    after = next(line for line in lines if line.startswith('After='))
    assert 'cloud-init.service' in after.split('=', 1)[1].split()
    assert f'ConditionPathExists={bootstrap.AGENT_CONF}' in lines
    with open(os.path.join(REPO, 'setup.cfg')) as f:
        assert 'amphora-sriov-agent = amphora_agent.cmd.agent:main' in \
            f.read()


def test_controller_config_loads_with_the_units_command_line(tmp_path):
    """What the controller writes, read as the element's unit reads it."""
    conf_file = tmp_path / 'amphora-sriov-agent.conf'
    # The controller's options live on the global CONF (Octavia's groups
    # are imported into it).
    controller = cfg.CONF
    conf_file.write_text(bootstrap.agent_config('amp-1', controller))
    conf_dir = tmp_path / 'amphora-sriov-agent.d'
    conf_dir.mkdir()
    conf = cfg.ConfigOpts()
    agent_config.register_opts(conf)
    conf(['--config-file', str(conf_file), '--config-dir', str(conf_dir)],
         project='amphora-sriov-agent')
    assert conf.amphora_agent.network_namespace == bootstrap.DATA_NAMESPACE
    assert conf.amphora_agent.agent_server_cert == bootstrap.SERVER_PEM
    assert conf.amphora_agent.agent_server_ca == bootstrap.CLIENT_CA
    assert conf.haproxy_amphora.bind_port == \
        controller.sriov_amphora.agent_port
    assert conf.amphora_agent.amphora_id == 'amp-1'
    # Every option the controller writes is one the agent knows (oslo.config
    # would silently ignore any other).
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(conf_file)
    known = {group: {opt.dest for opt in opts}
             for group, opts in agent_config.list_opts()}
    unknown = {(section, option)
               for section in parser.sections()
               for option in set(parser[section]) - set(parser.defaults())
               if option not in known.get(section, ())}
    assert unknown == set()
