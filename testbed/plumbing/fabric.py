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
"""The testbed's stand-in for hypervisors, VFs and physical networks.

An amphora is a pair of network namespaces running the real amphora agent,
started as the image's unit starts it from the files its boot request's
user data carried (``cloud_init``), in a file system view of its own
(``amphora_init``):
``<prefix>-amp-<id>`` holds the management interface and the agent (an
amphora's root namespace), ``<prefix>-amp-<id>-lb`` the VIP and member
interfaces (the agent's ``network_namespace``). The management network is
the bridge ``<prefix>-mgmt`` in the root namespace, carrying the management
subnets' gateway addresses, so the controller reaches every agent directly.
A VF is a veth pair: one end, with the Neutron port's MAC address, appears
in the amphora's data namespace as a hot-plugged VF would (down, without an
address); the other joins the bridge of the port's network in
``<prefix>-phys``. That namespace is also the router between networks: a
subnet's gateway address sits on its network's bridge. Clients and members
are namespaces with one interface on a network's bridge.

What has to survive a restart of the process using the fabric (agent PIDs,
which VF is which interface) is kept in ``<state>/amphorae/<id>/``; all
else is read back from the kernel.
"""

import configparser
import dataclasses
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import ssl
import sys
import threading
import time

from oslo_log import log as logging
from pyroute2 import netns as pyroute2_netns

from testbed import certs
from testbed import netlab
from testbed.plumbing import cloud_init
from testbed.plumbing import links
from testbed.plumbing import names as names_mod
from testbed.plumbing import processes

LOG = logging.getLogger(__name__)

AGENT_EXECUTABLE = 'amphora-sriov-agent'
CONTROLLER_CERT_NAME = 'octavia-controller'
# The image's contract (elements/amphora-sriov-agent): where the agent's
# configuration is, and the directory of the image's own settings.
AGENT_CONF = '/etc/octavia/amphora-sriov-agent.conf'
AGENT_CONF_DIR = '/etc/octavia/amphora-sriov-agent.d'
AGENT_PORT = 9443
DATA_NAMESPACE = 'amphora-haproxy'
# What this platform's amphora image knows of its hardware: its "VFs" are
# veth ends (a real image finds real VFs through their physical function).
IMAGE_SETTINGS = {'emulated-vfs.conf': {'amphora_agent': {
    'vf_link_kinds': 'veth'}}}
_RECORD = 'amphora.json'
_POLL_INTERVAL = 0.2


class PlumbingError(Exception):
    """A request the fabric cannot carry out as asked."""


@dataclasses.dataclass(frozen=True)
class Amphora:
    server_id: str
    mgmt_ip: str
    agent_url: str
    pid: int
    namespace: str
    data_namespace: str


def _url_host(ip):
    return f'[{ip}]' if ipaddress.ip_address(ip).version == 6 else ip


def _fixed_ips(port):
    ips = [fixed['ip_address'] for fixed in port.get('fixed_ips') or ()]
    if not ips:
        raise PlumbingError(f"port {port.get('id')} has no fixed IP")
    return ips


def mgmt_interfaces(fixed_ips, gateway_addresses):
    """Match a port's fixed IPs with the management gateways.

    ``gateway_addresses`` are the ip_interfaces on the management bridge
    (one per management subnet). Returns ``[(ip_interface, gateway_ip)]``,
    one per fixed IP, in the port's order.
    """
    matched = []
    for ip in fixed_ips:
        address = ipaddress.ip_address(ip)
        gateway = next((gw for gw in gateway_addresses
                        if address in gw.network and address != gw.ip), None)
        if gateway is None:
            raise PlumbingError(
                f'{ip} is on no management subnet this fabric routes; '
                f'ensure_mgmt_network() must be given its subnet first')
        matched.append((ipaddress.ip_interface(
            f'{address}/{gateway.network.prefixlen}'), gateway.ip))
    return matched


def _subnet_gateway(subnet):
    """The gateway's ip_interface of a Neutron subnet dict, or None."""
    gateway = (subnet or {}).get('gateway_ip')
    if not gateway:
        return None
    network = ipaddress.ip_network(subnet['cidr'], strict=False)
    return ipaddress.ip_interface(f'{gateway}/{network.prefixlen}')


class _StateLock:
    """Serialises the fabric's work across threads and processes.

    The flock covers a second process on the same state directory (the
    emulator and the testbed CLI's ``down``); the re-entrant lock lets one
    public method call another.
    """

    def __init__(self, path):
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._file = None

    def __enter__(self):
        self._thread_lock.acquire()
        if self._depth == 0:
            self._file = open(self._path, 'a')
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            self._file.close()
            self._file = None
        self._thread_lock.release()


class Fabric:
    """Kernel objects and agent processes of one testbed instance."""

    def __init__(self, state_dir, prefix='sotb', agent_executable=None,
                 stop_grace=10.0):
        self.state_dir = os.path.abspath(state_dir)
        self.names = names_mod.Names(prefix)
        self.prefix = prefix
        # The agent installed beside the running interpreter: the testbed
        # runs from the project's virtualenv, which is not on PATH.
        self.agent_executable = agent_executable or os.path.join(
            os.path.dirname(sys.executable), AGENT_EXECUTABLE)
        self.stop_grace = stop_grace
        for directory in (self._path('amphorae'), self._path('certs'),
                          self._path('logs'), self._path('run')):
            os.makedirs(directory, exist_ok=True)
        self._lock = _StateLock(self._path('run', 'fabric.lock'))
        # Agents started by this process, kept to reap them when stopped.
        self._children = {}

    def _path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    # Certificates -------------------------------------------------------

    @property
    def ca_cert(self):
        """The CA that signed every agent's and the controller's cert."""
        return self._certificate_authority().path

    @property
    def ca_key(self):
        """The CA's private key, for the controller's certificate issuing."""
        self._certificate_authority()
        return self._path('certs', 'ca.pem.key')

    @property
    def agent_client_cert(self):
        """Certificate + key PEM the controller presents to the agents."""
        path = self._path('certs', 'controller.pem')
        with self._lock:
            if not os.path.exists(path):
                self._certificate_authority().issue_client(
                    path, CONTROLLER_CERT_NAME)
        return path

    def _certificate_authority(self):
        path = self._path('certs', 'ca.pem')
        with self._lock:
            if os.path.exists(path):
                return certs.CertificateAuthority.load(path)
            return certs.CertificateAuthority.create(
                path, name=f'{self.prefix} testbed CA')

    # Networks -----------------------------------------------------------

    def ensure_mgmt_network(self, subnet):
        """Bridge ``<prefix>-mgmt`` with the subnet's gateway address.

        ``subnet`` is a Neutron subnet dict (``cidr``, ``gateway_ip``); the
        root namespace gets the gateway address, hence a route to every
        amphora on the subnet. Call once per management subnet (IPv4 and
        IPv6 may both be used). Returns the bridge's name.
        """
        gateway = _subnet_gateway(subnet)
        if gateway is None:
            raise PlumbingError(
                f"management subnet {(subnet or {}).get('cidr')} has no "
                f'gateway_ip: the controller reaches agents through it')
        bridge = self.names.mgmt_bridge
        with self._lock:
            clash = [
                f'{network} (dev {ifname})'
                for network, ifname in links.routed_networks(None)
                if ifname != bridge and network.overlaps(gateway.network)]
            if clash:
                # The gateway address would hijack the machine's own
                # traffic to that network (even its default gateway).
                raise PlumbingError(
                    f'management subnet {gateway.network} overlaps routes '
                    f'of this machine: {", ".join(clash)}; choose another')
            links.ensure_bridge(None, bridge)
            links.ensure_address(None, bridge, gateway)
        return bridge

    def ensure_network(self, network_id, subnet=None):
        """The bridge of a Neutron network in the phys namespace.

        With ``subnet`` (``cidr``, ``gateway_ip``), the bridge also gets the
        subnet's gateway address, making the phys namespace the router
        between the testbed's subnets. Returns the bridge's name.
        """
        bridge = self.names.network_bridge(network_id)
        gateway = _subnet_gateway(subnet)
        with self._lock:
            phys = self._ensure_phys_namespace()
            links.ensure_bridge(phys, bridge)
            if gateway is not None:
                links.ensure_address(phys, bridge, gateway)
        return bridge

    def _ensure_phys_namespace(self):
        name = self.names.phys_namespace
        if not netlab.namespace_exists(name):
            self._create_infrastructure_namespace(name)
            netlab.run(name, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1',
                              'net.ipv6.conf.all.forwarding=1'])
        return name

    @staticmethod
    def _create_infrastructure_namespace(name):
        """A namespace of the testbed's own (network, client, member).

        Its interfaces skip IPv6 duplicate address detection, link-local
        addresses included: a tentative link-local address delays neighbour
        discovery through the router by a second or more, and Neutron keeps
        the testbed's addresses unique anyway. Amphorae keep the kernel's
        defaults, as a real one would.
        """
        pyroute2_netns.create(name)
        links.set_state(name, 'lo', True)
        netlab.run(name, ['sysctl', '-q', '-w',
                          'net.ipv6.conf.all.accept_dad=0',
                          'net.ipv6.conf.default.accept_dad=0'])

    # Amphorae -----------------------------------------------------------

    def boot_amphora(self, server_id, mgmt_port, mgmt_subnet=None,
                     user_data=None):
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
            if self._load(server_id) is not None:
                raise PlumbingError(f'amphora {server_id} exists already')
            if mgmt_subnet is not None:
                self.ensure_mgmt_network(mgmt_subnet)
            record = self._new_record(server_id, mgmt_port)
            try:
                self._create_namespaces(record)
                self._plug_mgmt(record)
                self._first_boot(record, user_data)
            except BaseException:
                LOG.exception('Booting amphora %s failed; removing what was '
                              'created', server_id)
                self._destroy(server_id, record)
                raise
            LOG.info('Amphora %s booted: namespaces %s and %s, agent pid %s',
                     server_id, record['namespace'],
                     record['data_namespace'], record['agent']['pid'])
            return self._amphora(record)

    def _new_record(self, server_id, mgmt_port):
        namespace = self.names.amphora_namespace(server_id)
        for existing in self._records():
            if existing['namespace'] == namespace:
                raise PlumbingError(
                    f"servers {existing['server_id']} and {server_id} would "
                    f'share namespace {namespace}')
        for name in (namespace, self.names.data_namespace(server_id)):
            if netlab.namespace_exists(name):
                raise PlumbingError(f'namespace {name} exists already')
        bridge = self.names.mgmt_bridge
        gateways = ([address for address in links.addresses(None, bridge)
                     if not address.ip.is_link_local]
                    if links.find(None, bridge) else [])
        interfaces = mgmt_interfaces(_fixed_ips(mgmt_port), gateways)
        directory = self._path('amphorae', server_id)
        os.makedirs(directory, exist_ok=True)
        return {
            'server_id': server_id,
            'namespace': namespace,
            'data_namespace': self.names.data_namespace(server_id),
            'mgmt': {
                'ifname': names_mod.MGMT_IFNAME,
                'peer': self.names.mgmt_peer(server_id),
                'mac': mgmt_port['mac_address'],
                'addresses': [str(iface) for iface, _gw in interfaces],
                'gateways': sorted({str(gw) for _iface, gw in interfaces}),
                'ip': str(interfaces[0][0].ip),
            },
            'agent': {'pid': None, 'start_time': None,
                      'url': 'https://%s:%d' % (
                          _url_host(str(interfaces[0][0].ip)), AGENT_PORT),
                      'log_file': self._path('logs',
                                             f'amphora-{server_id}.log')},
            'reachable': True,
            'vfs': {},
        }

    def _create_namespaces(self, record):
        for name in (record['namespace'], record['data_namespace']):
            pyroute2_netns.create(name)
            # Written at once: from here on cleanup must find this amphora.
            self._save(record)
            links.set_state(name, 'lo', True)

    def _plug_mgmt(self, record):
        mgmt = record['mgmt']
        namespace = record['namespace']
        links.add_veth(None, mgmt['peer'], namespace, mgmt['ifname'],
                       mgmt['mac'])
        links.set_master(None, mgmt['peer'], self.names.mgmt_bridge)
        links.set_state(None, mgmt['peer'], True)
        links.set_state(namespace, mgmt['ifname'], True)
        for address in mgmt['addresses']:
            links.ensure_address(namespace, mgmt['ifname'],
                                 ipaddress.ip_interface(address))
        for gateway in mgmt['gateways']:
            links.add_default_route(namespace, gateway)

    def _root(self, server_id, *path):
        """The amphora's own file system, seen by it as ``/``."""
        return self._path('amphorae', server_id, 'root',
                          *[part.lstrip('/') for part in path])

    def amphora_path(self, server_id, path):
        """Where the amphora's file ``path`` is on this machine."""
        return self._root(server_id, path)

    def _first_boot(self, record, user_data):
        """cloud-init's files, the image's settings, then the agent."""
        server_id = record['server_id']
        console = record['agent']['log_file']
        written = []
        if user_data:
            try:
                written = cloud_init.write_files(user_data,
                                                 self._root(server_id))
            except cloud_init.UserDataError as error:
                self._console(console, f'cloud-init: {error}')
        self._console(console, f'cloud-init wrote {written or "nothing"}')
        for name, sections in IMAGE_SETTINGS.items():
            config = configparser.ConfigParser(interpolation=None)
            config.read_dict(sections)
            path = self._root(server_id, AGENT_CONF_DIR, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as settings:
                config.write(settings)
        self._spawn_agent(record)

    @staticmethod
    def _console(path, line):
        with open(path, 'a') as console:
            console.write(f'{line}\n')

    def _agent_settings(self, server_id):
        """(data namespace name, port) from the agent's configuration."""
        config = configparser.ConfigParser(interpolation=None)
        config.read(self._root(server_id, AGENT_CONF))
        return (config.get('amphora_agent', 'network_namespace',
                           fallback=DATA_NAMESPACE),
                config.getint('haproxy_amphora', 'bind_port',
                              fallback=AGENT_PORT))

    def _spawn_agent(self, record):
        """Start the agent as the image's unit would, if it would."""
        server_id = record['server_id']
        agent = record['agent']
        if not os.path.exists(self._root(server_id, AGENT_CONF)):
            # The unit's ConditionPathExists: no configuration, no agent.
            self._console(agent['log_file'],
                          f'{AGENT_CONF} does not exist: the agent does not '
                          f'start')
            agent.update(pid=None, start_time=None)
            self._save(record)
            return
        data_name, port = self._agent_settings(server_id)
        agent['url'] = 'https://%s:%d' % (_url_host(record['mgmt']['ip']),
                                          port)
        child = processes.start(
            record['namespace'],
            [sys.executable, '-m', 'testbed.plumbing.amphora_init',
             '--root', self._root(server_id),
             '--netns', f"{record['data_namespace']}:{data_name}", '--',
             self.agent_executable, '--config-file', AGENT_CONF,
             '--config-dir', AGENT_CONF_DIR],
            agent['log_file'])
        self._children[child.pid] = child
        agent.update(pid=child.pid,
                     start_time=processes.start_time(child.pid))
        self._save(record)

    def reboot_amphora(self, server_id):
        """Restart the amphora as a reboot would, VFs and all.

        The agent is stopped, the data namespace loses what lived in its
        memory (nftables rules, VF addresses and routes; the VFs go down),
        and the agent starts again from its files: whatever firewall it
        persisted is all that protects the VFs afterwards.
        """
        with self._lock:
            record = self._record(server_id)
            if not os.path.exists(self._root(server_id, AGENT_CONF)):
                raise PlumbingError(f'amphora {server_id} was booted '
                                    f'without an agent configuration')
            self._stop_agent(record)
            data_namespace = record['data_namespace']
            netlab.run(data_namespace, ['nft', 'flush', 'ruleset'])
            for vf in record['vfs'].values():
                links.flush_addresses(data_namespace, vf['ifname'])
                links.set_state(data_namespace, vf['ifname'], False)
            self._spawn_agent(record)
            LOG.info('Amphora %s rebooted, agent pid %s', server_id,
                     record['agent']['pid'])
            return self._amphora(record)

    def amphora(self, server_id):
        """The ``Amphora`` booted as ``server_id``, or None."""
        record = self._load(server_id)
        return self._amphora(record) if record else None

    def amphorae(self):
        return [self._amphora(record) for record in self._records()]

    @staticmethod
    def _amphora(record):
        return Amphora(server_id=record['server_id'],
                       mgmt_ip=record['mgmt']['ip'],
                       agent_url=record['agent']['url'],
                       pid=record['agent']['pid'],
                       namespace=record['namespace'],
                       data_namespace=record['data_namespace'])

    def agent_running(self, server_id):
        agent = self._record(server_id)['agent']
        return bool(agent['pid']) and processes.is_running(
            agent['pid'], agent['start_time'])

    def wait_for_agent(self, server_id, timeout=60.0):
        """Wait until the agent completes a TLS handshake on its mgmt IP.

        The handshake is the controller's: its client certificate, and the
        agent's certificate checked against the CA (the name it carries is
        the controller's to check), so a certificate mix-up shows here
        rather than in the first API call. Raises PlumbingError, with the
        end of the agent's log, if the agent exits or does not answer
        within ``timeout`` seconds.
        """
        record = self._record(server_id)
        address = (record['mgmt']['ip'],
                   self._agent_settings(server_id)[1])
        context = ssl.create_default_context(cafile=self.ca_cert)
        context.check_hostname = False
        context.load_cert_chain(self.agent_client_cert)
        deadline = time.monotonic() + timeout
        while True:
            if not self.agent_running(server_id):
                raise PlumbingError(
                    f'the agent of amphora {server_id} is not running:\n'
                    f'{self._log_tail(record)}')
            try:
                with socket.create_connection(address, timeout=2) as sock:
                    with context.wrap_socket(sock,
                                             server_hostname=address[0]):
                        return
            except ssl.SSLCertVerificationError as error:
                # Retrying cannot fix a wrong certificate.
                raise PlumbingError(
                    f'the agent of amphora {server_id} presents a '
                    f'certificate that does not verify: {error}') from error
            except OSError as error:
                if time.monotonic() >= deadline:
                    raise PlumbingError(
                        f'the agent of amphora {server_id} does not answer '
                        f'on {address} ({error}):\n'
                        f'{self._log_tail(record)}') from error
            time.sleep(_POLL_INTERVAL)

    @staticmethod
    def _log_tail(record, lines=20):
        path = record['agent'].get('log_file')
        if not path or not os.path.exists(path):
            return '(no agent log)'
        with open(path, errors='replace') as log:
            return ''.join(log.readlines()[-lines:])

    def set_agent_reachable(self, server_id, reachable):
        """Cut (or restore) the amphora's management link.

        The agent keeps running, as in a real management network outage:
        the controller's connections fail to get through (no answer to
        ARP, so "no route to host" or a timeout) instead of being refused.
        """
        with self._lock:
            record = self._record(server_id)
            links.set_state(None, record['mgmt']['peer'], reachable)
            record['reachable'] = bool(reachable)
            self._save(record)

    def delete_amphora(self, server_id):
        """Stop the agent and remove everything the amphora had.

        Deleting an amphora that is gone already does nothing, as deleting
        a server twice should not fail half way.
        """
        with self._lock:
            self._destroy(server_id, self._load(server_id))

    def _destroy(self, server_id, record):
        if record is not None:
            self._stop_agent(record)
            for vf in record['vfs'].values():
                links.delete(self.names.phys_namespace, vf['peer'])
        for name in (self.names.data_namespace(server_id),
                     self.names.amphora_namespace(server_id)):
            self._end_processes_in(name)
            if netlab.namespace_exists(name):
                pyroute2_netns.remove(name)
        links.delete(None, self.names.mgmt_peer(server_id))
        shutil.rmtree(self._path('amphorae', server_id), ignore_errors=True)
        LOG.info('Amphora %s deleted', server_id)

    def _end_processes_in(self, namespace):
        """End every process left in ``namespace``, by PID; their PIDs.

        haproxy and keepalived outlive the agent that started them (an
        agent restart must not interrupt traffic), so once the agent is
        stopped they are still there: left alone they would keep running,
        and keep the namespace and its VFs alive, after the amphora is gone.
        """
        if not netlab.namespace_exists(namespace):
            return []
        found = netlab.run(None, ['ip', 'netns', 'pids', namespace],
                           check=False).stdout.split()
        ended = []
        for pid in map(int, found):
            started = processes.start_time(pid)
            # A haproxy worker ends with its master: gone by its turn.
            if started is not None and processes.stop(
                    pid, started, grace=self.stop_grace):
                ended.append(pid)
        if ended:
            LOG.info('Ended processes %s left in namespace %s', ended,
                     namespace)
        return ended

    def _stop_agent(self, record):
        """Stop the recorded agent; True if it was running."""
        pid = record['agent']['pid']
        if not pid:
            return False
        return processes.stop(pid, record['agent']['start_time'],
                              grace=self.stop_grace,
                              child=self._children.pop(pid, None))

    # VFs ----------------------------------------------------------------

    def attach_vf(self, server_id, port, subnet=None):
        """Hot-plug a "VF" for a Neutron port into the amphora.

        ``port`` is the Neutron port dict (``id``, ``mac_address``,
        ``network_id``); ``subnet``, if given, makes sure the network's
        bridge carries the subnet's gateway. The VF appears in the data
        namespace as ``eth<N>`` with the port's MAC, down and without
        address, like a freshly plugged VF. Returns its interface name.
        """
        with self._lock:
            record = self._record(server_id)
            if port['id'] in record['vfs']:
                raise PlumbingError(f"port {port['id']} is attached to "
                                    f'amphora {server_id} already')
            bridge = self.ensure_network(port['network_id'], subnet)
            phys = self.names.phys_namespace
            peer = self.names.vf_peer(port['id'])
            if links.find(phys, peer):
                raise PlumbingError(f"port {port['id']} is attached to "
                                    f'another amphora')
            ifname = self._free_ifname(record['data_namespace'])
            links.add_veth(phys, peer, record['data_namespace'], ifname,
                           port['mac_address'])
            try:
                links.set_master(phys, peer, bridge)
                links.set_state(phys, peer, True)
            except BaseException:
                links.delete(phys, peer)
                raise
            record['vfs'][port['id']] = {
                'ifname': ifname, 'peer': peer, 'mac': port['mac_address'],
                'network_id': port['network_id'], 'bridge': bridge}
            self._save(record)
            LOG.info('Port %s attached to amphora %s as %s', port['id'],
                     server_id, ifname)
            return ifname

    @staticmethod
    def _free_ifname(namespace):
        taken = set(links.names(namespace))
        number = 1
        while f'eth{number}' in taken:
            number += 1
        return f'eth{number}'

    def detach_vf(self, server_id, port_id):
        with self._lock:
            record = self._record(server_id)
            vf = record['vfs'].pop(port_id, None)
            if vf is None:
                raise PlumbingError(f'port {port_id} is not attached to '
                                    f'amphora {server_id}')
            # The veth pair goes with either end, wherever the amphora's
            # agent may have moved or renamed its own end.
            links.delete(self.names.phys_namespace, vf['peer'])
            self._save(record)
            LOG.info('Port %s detached from amphora %s', port_id, server_id)

    def vfs(self, server_id):
        """``{port id: {'ifname', 'peer', 'mac', 'network_id', 'bridge'}}``."""
        return dict(self._record(server_id)['vfs'])

    # Hosts --------------------------------------------------------------

    def add_host(self, name, network_id, mac, cidr, gateway=None):
        """A client or member: namespace ``<prefix>-host-<name>``.

        Its ``eth0`` (MAC ``mac``, address ``cidr``) sits on the network's
        bridge; with ``gateway``, the host routes through it and the bridge
        gets that address (the phys namespace routes between subnets).
        Returns the namespace's name.
        """
        namespace = self.names.host_namespace(name)
        interface = ipaddress.ip_interface(cidr)
        subnet = ({'cidr': str(interface.network), 'gateway_ip': gateway}
                  if gateway else None)
        with self._lock:
            if netlab.namespace_exists(namespace):
                raise PlumbingError(f'host {name} exists already')
            bridge = self.ensure_network(network_id, subnet)
            phys = self.names.phys_namespace
            peer = self.names.host_peer(name)
            try:
                self._create_infrastructure_namespace(namespace)
                links.add_veth(phys, peer, namespace, names_mod.HOST_IFNAME,
                               mac)
                links.set_master(phys, peer, bridge)
                links.set_state(phys, peer, True)
                links.set_state(namespace, names_mod.HOST_IFNAME, True)
                links.ensure_address(namespace, names_mod.HOST_IFNAME,
                                     interface)
                if gateway:
                    links.add_default_route(namespace, gateway)
            except BaseException:
                self.remove_host(name)
                raise
        return namespace

    def remove_host(self, name):
        namespace = self.names.host_namespace(name)
        with self._lock:
            # Servers a test or the demo started on the host go with it.
            self._end_processes_in(namespace)
            if netlab.namespace_exists(namespace):
                pyroute2_netns.remove(namespace)
            links.delete(self.names.phys_namespace, self.names.host_peer(name))

    # Everything ---------------------------------------------------------

    def cleanup(self):
        """Remove every namespace, link and agent of this testbed instance.

        Agents are stopped first (by the PIDs recorded at boot), then what
        is left running in any of the testbed's namespaces (haproxy and
        keepalived in amphorae, servers on hosts): a process inside a
        namespace keeps the namespace, and its links, alive after the name
        is removed. Returns what was removed, by kind.
        """
        removed = {'agents': [], 'processes': [], 'namespaces': [],
                   'links': []}
        with self._lock:
            for record in self._records():
                if self._stop_agent(record):
                    removed['agents'].append(record['agent']['pid'])
                for name in (record['data_namespace'], record['namespace']):
                    removed['processes'] += self._end_processes_in(name)
            for name in pyroute2_netns.listnetns():
                if self.names.owns(name):
                    # Hosts' servers, and whatever an amphora without a
                    # record still runs.
                    removed['processes'] += self._end_processes_in(name)
                    pyroute2_netns.remove(name)
                    removed['namespaces'].append(name)
            # Bridge ports first, so that deleting the bridge finds none.
            root_links = sorted(
                (name for name in links.names(None) if self.names.owns(name)),
                key=lambda name: name == self.names.mgmt_bridge)
            for name in root_links:
                if links.delete(None, name):
                    removed['links'].append(name)
            for server_id in os.listdir(self._path('amphorae')):
                shutil.rmtree(self._path('amphorae', server_id),
                              ignore_errors=True)
        LOG.info('Testbed %s cleaned up: %s', self.prefix, removed)
        return removed

    # Records ------------------------------------------------------------

    def _record_path(self, server_id):
        return self._path('amphorae', server_id, _RECORD)

    def _load(self, server_id):
        try:
            with open(self._record_path(server_id)) as record_file:
                return json.load(record_file)
        except FileNotFoundError:
            return None

    def _record(self, server_id):
        record = self._load(server_id)
        if record is None:
            raise PlumbingError(f'no amphora {server_id}')
        return record

    def _records(self):
        records = []
        for server_id in sorted(os.listdir(self._path('amphorae'))):
            record = self._load(server_id)
            if record is not None:
                records.append(record)
        return records

    def _save(self, record):
        path = self._record_path(record['server_id'])
        # Written whole and renamed, so a crash never leaves half a record.
        temporary = f'{path}.tmp'
        with open(temporary, 'w') as record_file:
            json.dump(record, record_file, indent=2, sort_keys=True)
        os.replace(temporary, path)
