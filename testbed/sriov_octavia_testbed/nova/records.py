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
"""The servers' records: what every step of a server's life writes.

A record changes inside a state transaction; these are the changes the
build, the interface calls and recovery share.
"""

import datetime

from sriov_octavia_testbed.nova import errors

# Nova's power states.
NOSTATE = 0
RUNNING = 1


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def find(data, server_id):
    """The server's record in ``data``; NotFound as nova-api says it."""
    return errors.lookup(data['servers'], server_id, 'Instance')


class ServerRecords:

    def __init__(self, state, neutron):
        self.state = state
        self.neutron = neutron

    def mark(self, server_id, **values):
        with self.state.transaction() as data:
            server = data['servers'].get(server_id)
            if server is not None:
                server.update(values, updated=now())

    def set_error(self, server_id, message, details):
        self.mark(server_id, status='ERROR', vm_state='error',
                  task_state=None, power_state=NOSTATE,
                  fault={'code': 500, 'message': message,
                         'details': details, 'created': now()})

    def active(self, server_id, action):
        """A copy of the server's record, if ``action`` may start on it."""
        with self.state.read() as data:
            server = find(data, server_id)
            if server['vm_state'] != 'active' or server['task_state']:
                raise errors.Conflict(
                    f"Cannot '{action}' instance {server_id} while it is in "
                    f"vm_state {server['vm_state']}")
            return dict(server)

    def add_interface(self, server_id, port_id, created, vf, port=None):
        """Record a port of the server; with ``port``, what Neutron says.

        The same port is recorded once; a second call adds the facts of
        the bound port.
        """
        with self.state.transaction() as data:
            interfaces = data['servers'][server_id]['interfaces']
            record = next((i for i in interfaces if i['port_id'] == port_id),
                          None)
            if record is None:
                record = {'port_id': port_id, 'created_by_nova': created,
                          'pci_slot': vf.pci_slot if vf else None,
                          'physical_network':
                              vf.physical_network if vf else None,
                          'tag': None}
                interfaces.append(record)
            if port is not None:
                record.update(self._port_facts(port))
            return dict(record)

    def _port_facts(self, port):
        network = self.neutron.get_network(port.network_id)
        return {'net_id': port.network_id, 'network_name': network.name,
                'mac_addr': port.mac_address,
                'fixed_ips': [{'subnet_id': ip['subnet_id'],
                               'ip_address': ip['ip_address']}
                              for ip in port.fixed_ips or []],
                'vnic_type': port.binding_vnic_type,
                'vif_type': port.binding_vif_type,
                'port_state': port.status}
