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
"""Amphorae: boot, reboot, reachability and deletion.

An amphora is a pair of network namespaces running the real amphora agent
(see ``agents``): ``<prefix>-amp-<id>`` holds the management interface and
the agent (an amphora's root namespace), ``<prefix>-amp-<id>-lb`` the VIP
and member interfaces (the agent's ``network_namespace``). Its management
interface is a veth whose other end joins the management bridge.
"""

import dataclasses
import ipaddress
import os

from oslo_log import log as logging
from pyroute2 import netns as pyroute2_netns

from sriov_octavia_testbed import netlab
from sriov_octavia_testbed.plumbing import agents as agents_mod
from sriov_octavia_testbed.plumbing import errors
from sriov_octavia_testbed.plumbing import links
from sriov_octavia_testbed.plumbing import names as names_mod
from sriov_octavia_testbed.plumbing import namespaces
from sriov_octavia_testbed.plumbing import networks as networks_mod

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Amphora:
    server_id: str
    mgmt_ip: str
    agent_url: str
    pid: int
    namespace: str
    data_namespace: str

    @classmethod
    def from_record(cls, record):
        return cls(server_id=record['server_id'],
                   mgmt_ip=record['mgmt']['ip'],
                   agent_url=record['agent']['url'],
                   pid=record['agent']['pid'],
                   namespace=record['namespace'],
                   data_namespace=record['data_namespace'])


def _fixed_ips(port):
    ips = [fixed['ip_address'] for fixed in port.get('fixed_ips') or ()]
    if not ips:
        raise errors.PlumbingError(f"port {port.get('id')} has no fixed IP")
    return ips


class Amphorae:

    def __init__(self, names, records, networks, agents, stop_grace=10.0):
        self._names = names
        self._records = records
        self._lock = records.lock
        self._networks = networks
        self._agents = agents
        self._stop_grace = stop_grace

    def boot(self, server_id, mgmt_port, mgmt_subnet=None, user_data=None):
        """Create an amphora and boot it from ``user_data``.

        ``mgmt_port`` is the Neutron port dict of the management interface
        (``mac_address``, ``fixed_ips``); its subnet must be known through
        ``ensure_mgmt_network`` or be given as ``mgmt_subnet``. The files of
        ``user_data`` (decoded cloud-init text) are written as cloud-init
        would, and the agent starts when they hold its configuration, as
        the image's unit would: without, the amphora runs but its agent
        never comes up. Returns an ``Amphora``; the agent may still be
        starting (``wait_for_agent``).
        """
        with self._lock:
            if self._records.load(server_id) is not None:
                raise errors.PlumbingError(
                    f'amphora {server_id} exists already')
            if mgmt_subnet is not None:
                self._networks.ensure_mgmt_network(mgmt_subnet)
            record = self._new_record(server_id, mgmt_port)
            try:
                self._create_namespaces(record)
                self._plug_mgmt(record)
                self._agents.first_boot(record, user_data)
            except BaseException:
                LOG.exception('Booting amphora %s failed; removing what was '
                              'created', server_id)
                self._destroy(server_id, record)
                raise
            LOG.info('Amphora %s booted: namespaces %s and %s, agent pid %s',
                     server_id, record['namespace'],
                     record['data_namespace'], record['agent']['pid'])
            return Amphora.from_record(record)

    def _new_record(self, server_id, mgmt_port):
        namespace = self._names.amphora_namespace(server_id)
        for existing in self._records.all():
            if existing['namespace'] == namespace:
                raise errors.PlumbingError(
                    f"servers {existing['server_id']} and {server_id} would "
                    f'share namespace {namespace}')
        for name in (namespace, self._names.data_namespace(server_id)):
            if netlab.namespace_exists(name):
                raise errors.PlumbingError(
                    f'namespace {name} exists already')
        interfaces = networks_mod.mgmt_interfaces(
            _fixed_ips(mgmt_port), self._networks.mgmt_gateways())
        os.makedirs(self._records.amphora_dir(server_id), exist_ok=True)
        return {
            'server_id': server_id,
            'namespace': namespace,
            'data_namespace': self._names.data_namespace(server_id),
            'mgmt': {
                'ifname': names_mod.MGMT_IFNAME,
                'peer': self._names.mgmt_peer(server_id),
                'mac': mgmt_port['mac_address'],
                'addresses': [str(iface) for iface, _gw in interfaces],
                'gateways': sorted({str(gw) for _iface, gw in interfaces}),
                'ip': str(interfaces[0][0].ip),
            },
            'agent': {'pid': None, 'start_time': None,
                      'url': agents_mod.agent_url(str(interfaces[0][0].ip)),
                      'log_file': self._records.path(
                          'logs', f'amphora-{server_id}.log')},
            'reachable': True,
            'vfs': {},
        }

    def _create_namespaces(self, record):
        for name in (record['namespace'], record['data_namespace']):
            pyroute2_netns.create(name)
            # Written at once: from here on cleanup must find this amphora.
            self._records.save(record)
            links.set_state(name, 'lo', True)

    def _plug_mgmt(self, record):
        mgmt = record['mgmt']
        namespace = record['namespace']
        links.add_veth(None, mgmt['peer'], namespace, mgmt['ifname'],
                       mgmt['mac'])
        links.set_master(None, mgmt['peer'], self._names.mgmt_bridge)
        links.set_state(None, mgmt['peer'], True)
        links.set_state(namespace, mgmt['ifname'], True)
        for address in mgmt['addresses']:
            links.ensure_address(namespace, mgmt['ifname'],
                                 ipaddress.ip_interface(address))
        for gateway in mgmt['gateways']:
            links.add_default_route(namespace, gateway)

    def path(self, server_id, path):
        """Where the amphora's file ``path`` is on this machine."""
        return self._records.root(server_id, path)

    def reboot(self, server_id):
        """Restart the amphora as a reboot would, VFs and all.

        The agent is stopped, the data namespace loses what lived in its
        memory (nftables rules, VF addresses and routes; the VFs go down),
        and the agent starts again from its files: whatever firewall it
        persisted is all that protects the VFs afterwards.
        """
        with self._lock:
            record = self._records.get(server_id)
            if not self._agents.configured(server_id):
                raise errors.PlumbingError(
                    f'amphora {server_id} was booted without an agent '
                    f'configuration')
            self._agents.stop(record)
            data_namespace = record['data_namespace']
            netlab.run(data_namespace, ['nft', 'flush', 'ruleset'])
            for vf in record['vfs'].values():
                links.flush_addresses(data_namespace, vf['ifname'])
                links.set_state(data_namespace, vf['ifname'], False)
            self._agents.spawn(record)
            LOG.info('Amphora %s rebooted, agent pid %s', server_id,
                     record['agent']['pid'])
            return Amphora.from_record(record)

    def get(self, server_id):
        """The ``Amphora`` booted as ``server_id``, or None."""
        record = self._records.load(server_id)
        return Amphora.from_record(record) if record else None

    def all(self):
        return [Amphora.from_record(record)
                for record in self._records.all()]

    def set_reachable(self, server_id, reachable):
        """Cut (or restore) the amphora's management link.

        The agent keeps running, as in a real management network outage:
        the controller's connections fail to get through (no answer to
        ARP, so "no route to host" or a timeout) instead of being refused.
        """
        with self._lock:
            record = self._records.get(server_id)
            links.set_state(None, record['mgmt']['peer'], reachable)
            record['reachable'] = bool(reachable)
            self._records.save(record)

    def delete(self, server_id):
        """Stop the agent and remove everything the amphora had.

        Deleting an amphora that is gone already does nothing, as deleting
        a server twice should not fail half way.
        """
        with self._lock:
            self._destroy(server_id, self._records.load(server_id))

    def _destroy(self, server_id, record):
        if record is not None:
            self._agents.stop(record)
            for vf in record['vfs'].values():
                links.delete(self._names.phys_namespace, vf['peer'])
        # haproxy and keepalived outlive the stopped agent.
        for name in (self._names.data_namespace(server_id),
                     self._names.amphora_namespace(server_id)):
            namespaces.remove(name, self._stop_grace)
        links.delete(None, self._names.mgmt_peer(server_id))
        self._records.remove(server_id)
        LOG.info('Amphora %s deleted', server_id)
