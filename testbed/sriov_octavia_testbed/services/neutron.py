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
"""The real Neutron API server: uwsgi, SQLite, noauth, ML2 with SR-IOV."""

import os
import sys
import uuid

from sriov_octavia_testbed import config
from sriov_octavia_testbed import inventory
from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import inifile

NIC_SWITCH_AGENT = 'NIC Switch agent'
OVS_AGENT = 'Open vSwitch agent'
# The agents are records only: keep them alive for a long time. The
# heartbeat is refreshed on every "up" as well.
# (Neutron caps the option at 2^31 milliseconds.)
AGENT_DOWN_TIME = 20 * 24 * 3600
_AGENT_NAMESPACE = uuid.UUID('0b1e6c39-52a4-4c0e-9d67-3f1f7a3c6a10')


def agent_records(inv):
    """The agents ML2 needs to bind ports on the emulated hosts.

    The SR-IOV mechanism driver binds ``direct`` ports (vif_type hw_veb) on a
    host only when an alive NIC Switch agent there maps the segment's
    physical network to a device; the Open vSwitch driver binds ``normal``
    ports when an alive OVS agent has a bridge for it.
    """
    records = []
    for host in inventory.hosts(inv):
        mappings = inventory.device_mappings(inv, host)
        if mappings:
            records.append({
                'agent_type': NIC_SWITCH_AGENT,
                'binary': 'neutron-sriov-nic-agent',
                'host': host,
                'configurations': {'device_mappings': mappings,
                                   'extensions': []},
            })
        records.append({
            'agent_type': OVS_AGENT,
            'binary': 'neutron-openvswitch-agent',
            'host': host,
            'configurations': {
                'bridge_mappings': {physnet: f'br-{physnet}'
                                    for physnet in inventory.PHYSNETS},
                'tunnel_types': [],
                'integration_bridge': 'br-int',
                'datapath_type': 'system',
                'ovs_hybrid_plug': False,
                'ovs_capabilities': {'datapath_types': ['system'],
                                     'iface_types': ['internal', 'system',
                                                     'veth']},
            },
        })
    for record in records:
        record['id'] = str(uuid.uuid5(
            _AGENT_NAMESPACE, f"{record['agent_type']}/{record['host']}"))
    return records


class Neutron(base.Service):
    name = 'neutron'
    port_name = 'neutron'
    # Creates the schema when run (python -m).
    schema_module = 'sriov_octavia_testbed.services.neutron_db'

    @property
    def conf_dir(self):
        return self.testbed.path('etc', 'neutron')

    @property
    def db_file(self):
        return self.testbed.path('neutron', 'neutron.sqlite')

    @property
    def db_url(self):
        return 'sqlite:///' + self.db_file

    def prepare(self):
        os.makedirs(self.conf_dir, exist_ok=True)
        inifile.write(os.path.join(self.conf_dir, 'neutron.conf'),
                      self.neutron_conf())
        inifile.write(os.path.join(self.conf_dir, 'ml2_conf.ini'),
                      self.ml2_conf())
        inifile.write(os.path.join(self.conf_dir, 'uwsgi.ini'),
                      self.uwsgi_ini())

    def neutron_conf(self):
        return {
            'DEFAULT': {
                'debug': True,
                'host': f'{self.testbed.prefix}-controller',
                'core_plugin': 'ml2',
                'service_plugins': 'qos',
                'auth_strategy': 'noauth',
                # No agents listen: notifications go nowhere.
                'transport_url': 'fake:/',
                'api_paste_config': os.path.join(
                    sys.prefix, 'etc', 'neutron', 'api-paste.ini'),
                'state_path': self.testbed.path('neutron'),
                'bind_host': config.HOST,
                'bind_port': self.port,
                'api_workers': 1,
                'rpc_workers': 0,
                'rpc_state_report_workers': 0,
                'notify_nova_on_port_status_changes': False,
                'notify_nova_on_port_data_changes': False,
                'agent_down_time': AGENT_DOWN_TIME,
                'allow_overlapping_ips': True,
            },
            'database': {'connection': self.db_url},
            'oslo_concurrency': {
                'lock_path': self.testbed.path('run', 'locks')},
            'agent': {'report_interval': 0},
            'oslo_policy': {'enforce_new_defaults': False},
        }

    def ml2_conf(self):
        return {
            'ml2': {
                'type_drivers': 'flat,vlan',
                'tenant_network_types': 'vlan',
                'mechanism_drivers': 'openvswitch,sriovnicswitch',
                'extension_drivers': 'port_security,qos',
            },
            'ml2_type_flat': {'flat_networks': '*'},
            'ml2_type_vlan': {'network_vlan_ranges': (
                f'{inventory.SRIOV_PHYSNET}:100:199,'
                f'{inventory.MGMT_PHYSNET}:200:299')},
            'securitygroup': {'enable_security_group': True,
                              'firewall_driver': 'noop'},
        }

    def uwsgi_ini(self):
        return base.uwsgi_ini(config.HOST, self.port,
                              'neutron.wsgi.api:application')

    def argv(self):
        return [os.path.join(sys.prefix, 'bin', 'uwsgi'),
                '--ini', os.path.join(self.conf_dir, 'uwsgi.ini')]

    def env(self):
        return {'OS_NEUTRON_CONFIG_DIR': self.conf_dir,
                'OS_NEUTRON_CONFIG_FILES': 'neutron.conf;ml2_conf.ini'}

    def init_db_argv(self):
        """Creates the (empty) schema in ``db_file``."""
        return [sys.executable, '-m', self.schema_module,
                '--connection', self.db_url]

    def ready(self):
        return base.http_answers(self.testbed.url('neutron') + '/v2.0/')
