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
"""One guest with a real (emulated) SR-IOV NIC, set up as a cloud sets it.

The guest (``sriov_octavia_testbed.sriov_guest``) boots once for the whole
tier. Its root namespace is the amphora: the management NIC and the real
``amphora-sriov-agent``, into which the VIP port's VF is hot-plugged, as
in an amphora. Around it, in namespaces of their own:

- ``hypervisor``: the PF (qemu's igb) with ``VF_COUNT`` VFs. Each VF is
  given its Neutron port's MAC and VLAN, spoof checking on, before igbvf
  binds it, as Nova and the sriov-nic-agent do;
- ``client``: a VF on the VIP's VLAN; ``other``: a VF on another VLAN.

The PF's wire ends at the guest's uplink NIC, in namespace ``outside``, with
one VLAN interface per provider network: the client outside and the member
live there. The agent is reached from here through qemu's user network.
"""

import dataclasses
import json
import os
import sys
import time

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import certs
from sriov_octavia_testbed.sriov_guest import machine as guest_machine
from tests.functional.amphora_agent import conftest as agent_tests

AGENT_PORT = 9443
# Loopback ports qemu may forward to the agent; the first free one is.
HOST_AGENT_PORTS = range(19510, 19520)
PF = 'eth0'
VF_COUNT = 4
VIP_VLAN = 100
OTHER_VLAN = 200
SUBNET = '192.0.2.0/24'
PREFIXLEN = 24
VRRP_IP = '192.0.2.10'
VIP = '192.0.2.100'
PEER_VRRP_IP = '192.0.2.11'
CLIENT_ALLOWED = '192.0.2.20'
CLIENT_REFUSED = '192.0.2.21'
OUTSIDE_ALLOWED = '192.0.2.50'
OUTSIDE_REFUSED = '192.0.2.51'
MEMBER = '192.0.2.60'
# The other VLAN's network; TEST-NET-3 for addresses put on both VLANs.
OTHER_SUBNET_GUEST = '198.51.100.30'
OTHER_SUBNET_OUTSIDE = '198.51.100.31'
MTU = 1400
PATIENCE = 60.0


@dataclasses.dataclass(frozen=True)
class Port:
    """A Neutron port bound to a VF, and where the VF goes in the guest."""
    vf: int
    mac: str
    vlan: int
    namespace: str


VIP_PORT = Port(0, 'fa:16:3e:1f:00:10', VIP_VLAN, None)
CLIENT_PORT = Port(1, 'fa:16:3e:1f:00:20', VIP_VLAN, 'client')
OTHER_PORT = Port(2, 'fa:16:3e:1f:00:30', OTHER_VLAN, 'other')
SPARE_PORT = Port(3, 'fa:16:3e:1f:00:40', VIP_VLAN, 'spare')
HYPERVISOR = 'hypervisor'
PORTS = (VIP_PORT, CLIENT_PORT, OTHER_PORT, SPARE_PORT)


def _python_module(module, *args):
    return [sys.executable, '-m', module, *args]


class Lab:

    def __init__(self, workdir):
        self.workdir = workdir
        self.guest = None
        self.agent_pid = None
        self.vf_netdevs = {}
        self.pki = None

    # Start ---------------------------------------------------------------

    def start(self):
        self.agent_port = agent_tests.free_port(HOST_AGENT_PORTS)
        self.guest = guest_machine.Machine(
            self.workdir, forwards={self.agent_port: AGENT_PORT})
        self.guest.start()
        self.guest.sh('modprobe igb; modprobe virtio_net; modprobe 8021q')
        self._outside()
        self._compute_node()
        self._agent()
        return self

    def netdev_with_mac(self, mac):
        return self.guest.sh(
            f"ip -o link | awk -F': ' '/link.ether {mac}/ {{print $2}}'"
        ).stdout.strip()

    def _outside(self):
        uplink = self.netdev_with_mac(guest_machine.UPLINK_MAC)
        script = ['ip netns add outside',
                  f'ip link set {uplink} netns outside',
                  'ip -n outside link set lo up',
                  f'ip -n outside link set {uplink} name wire up']
        for vlan, addresses in ((VIP_VLAN, (OUTSIDE_ALLOWED, OUTSIDE_REFUSED,
                                            MEMBER)),
                                (OTHER_VLAN, (OTHER_SUBNET_OUTSIDE,))):
            script += [f'ip -n outside link add link wire name wire.{vlan} '
                       f'type vlan id {vlan}',
                       f'ip -n outside link set wire.{vlan} up']
            script += [f'ip -n outside addr add {address}/{PREFIXLEN} '
                       f'dev wire.{vlan}' for address in addresses]
        self.guest.sh('\n'.join(script))

    def pf(self, *args):
        return self.in_namespace(HYPERVISOR, _python_module(
            'sriov_octavia_testbed.sriov_guest.pf', *args))

    def _compute_node(self):
        pf = self.netdev_with_mac(guest_machine.PF_MAC)
        self.guest.sh(f'ip netns add {HYPERVISOR}\n'
                      f'ip link set {pf} netns {HYPERVISOR}\n'
                      f'ip -n {HYPERVISOR} link set {pf} name {PF} up')
        self.pf('create', PF, str(VF_COUNT))
        for port in PORTS:
            self.pf('set', PF, str(port.vf), '--mac', port.mac, '--vlan',
                    str(port.vlan), '--spoofchk', 'on')
        self.guest.run(['modprobe', 'igbvf'])
        self.pf('bind', PF, 'igbvf')
        # igbvf makes the VFs' interfaces in the root namespace: the
        # amphora's, where Nova's hot-plug puts them, down, no address.
        self.vf_netdevs = self._wait_for_vf_netdevs()
        for port in PORTS:
            if port.namespace:
                self.guest.sh(f'ip netns add {port.namespace}\n'
                              f'ip link set {self.vf_netdevs[port.vf]} '
                              f'netns {port.namespace}')
        management = self.netdev_with_mac(guest_machine.MANAGEMENT_MAC)
        self.guest.sh(
            f'ip addr add {guest_machine.MANAGEMENT_ADDRESS}/24 '
            f'dev {management}\n'
            f'ip link set {management} up')
        for port, addresses in ((CLIENT_PORT, (CLIENT_ALLOWED,
                                               CLIENT_REFUSED)),
                                (OTHER_PORT, (OTHER_SUBNET_GUEST,))):
            ifname = self.vf_netdevs[port.vf]
            script = [f'ip -n {port.namespace} link set lo up',
                      f'ip -n {port.namespace} link set {ifname} up']
            script += [f'ip -n {port.namespace} addr add {address}/'
                       f'{PREFIXLEN} dev {ifname}' for address in addresses]
            self.guest.sh('\n'.join(script))

    def _wait_for_vf_netdevs(self):
        deadline = time.monotonic() + PATIENCE
        while True:
            found = {}
            for port in PORTS:
                name = self.netdev_with_mac(port.mac)
                if name:
                    found[port.vf] = name
            if len(found) == len(PORTS):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f'igbvf bound only {found}')
            time.sleep(0.5)

    def _agent(self):
        pki = os.path.join(self.workdir, 'pki')
        os.makedirs(pki)
        ca = certs.CertificateAuthority.create(os.path.join(pki, 'ca.pem'),
                                               'igb tier controller CA')
        self.pki = dataclasses.make_dataclass('Pki', ['ca', 'server',
                                                      'client'])(
            ca.path,
            ca.issue_server(os.path.join(pki, 'server.pem'),
                            ips=['127.0.0.1']),
            ca.issue_client(os.path.join(pki, 'client.pem'), 'controller'))
        config = os.path.join(self.workdir, 'agent.conf')
        with open(config, 'w') as conf:
            conf.write(
                '[DEFAULT]\n'
                'debug = true\n'
                '[amphora_agent]\n'
                f'agent_server_ca = {self.pki.ca}\n'
                f'agent_server_cert = {self.pki.server}\n'
                'network_namespace = amphora-haproxy\n'
                '[haproxy_amphora]\n'
                f'bind_host = {guest_machine.MANAGEMENT_ADDRESS}\n'
                f'bind_port = {AGENT_PORT}\n')
        agent = os.path.join(os.path.dirname(sys.executable),
                             'amphora-sriov-agent')
        self.agent_log = os.path.join(self.workdir, 'agent.log')
        self.agent_pid = self.guest.spawn([agent, '--config-file', config],
                                          self.agent_log)
        self.api = agent_client.AgentClient(
            ('127.0.0.1', self.agent_port), self.pki.client, self.pki.ca,
            server_name='127.0.0.1')
        self.api.wait_until_up(180)

    # Stop ----------------------------------------------------------------

    def close(self):
        if self.guest is not None:
            self.guest.stop()

    # Helpers -------------------------------------------------------------

    def in_namespace(self, namespace, argv, **kwargs):
        return self.guest.run(['ip', 'netns', 'exec', namespace, *argv],
                              **kwargs)

    def start_member(self, port, body):
        """An HTTP server on the wire, behind the PF, as a member."""
        root = os.path.join(self.workdir, 'member')
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, 'index.html'), 'w') as page:
            page.write(body)
        self.guest.spawn(['ip', 'netns', 'exec', 'outside', sys.executable,
                          '-m', 'http.server', '--bind', MEMBER,
                          '--directory', root, str(port)],
                         os.path.join(self.workdir, 'member.log'))
        deadline = time.monotonic() + PATIENCE
        while self.in_namespace('outside', [
                'curl', '-sf', '-m', '5', f'http://{MEMBER}:{port}/'],
                check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError('the member does not serve')
            time.sleep(0.5)

    def http_get(self, namespace, source, url, timeout=5):
        """The body fetched from ``source``, or None if nothing came."""
        result = self.in_namespace(namespace, [
            'curl', '-sf', '-m', str(timeout), '--interface', source, url],
            check=False, timeout=timeout + 30)
        return result.stdout if result.returncode == 0 else None

    def counters(self):
        return self.api.get_counters()

    def pf_view(self):
        return {vf['vf']: vf for vf in json.loads(self.pf('show', PF).stdout)}

    def agent_log_text(self):
        with open(self.agent_log, errors='replace') as log:
            return log.read()
