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
"""A guest with an igb PF, run by qemu under TCG, driven from this machine.

KVM guests do not run on these machines; TCG does, at the cost of speed,
so a guest is booted once and shared by many tests (about 30 s to the
console's ``ready``).

qemu's igb registers its VF BARs before their type is known, as 32-bit
BARs, while the PF's SR-IOV capability offers 64-bit ones: a VF BAR that
the guest places above 4 GiB is then mapped at its low half only, and the
VF's registers read as zero, so igbvf never sees the PF's reset-done and
says "PF still in reset state". Without a 64-bit PCI hole the guest places
every BAR below 4 GiB, where both halves agree (doc/source/testbed.rst).
"""

import json
import os
import socket
import subprocess
import sys
import time

from oslo_log import log as logging

from sriov_octavia_testbed.plumbing import processes
from sriov_octavia_testbed.sriov_guest import console
from sriov_octavia_testbed.sriov_guest import kernel as guest_kernel

LOG = logging.getLogger(__name__)

QEMU = 'qemu-system-x86_64'
BOOT_DEADLINE = 300
STOP_DEADLINE = 30
PF_MAC = '52:54:00:00:1f:01'
MANAGEMENT_MAC = '52:54:00:00:1f:02'
UPLINK_MAC = '52:54:00:00:1f:03'
# The guest's address on qemu's user network ("slirp"), which carries the
# management traffic: qemu forwards a port of this machine's loopback to it.
MANAGEMENT_ADDRESS = '10.0.2.15'


class GuestError(Exception):
    """The guest did not boot, or a command in it failed."""


class Result:

    def __init__(self, argv, answer):
        self.argv = argv
        self.returncode = answer['returncode']
        self.stdout = answer['stdout']
        self.stderr = answer['stderr']

    def check(self):
        if self.returncode != 0:
            raise GuestError(f'{" ".join(self.argv)} exited with '
                             f'{self.returncode}: {self.stderr.strip()}')
        return self


class Machine:
    """One qemu guest with an igb NIC, a management NIC and an uplink.

    The igb PF (``PF_MAC``) is the compute node's SR-IOV NIC. Its wire is a
    qemu hub whose other port is a virtio-net NIC of the guest
    (``UPLINK_MAC``): the physical network's far side, where what lives
    outside the compute node goes (this machine's kernel has no VLAN
    support, so the tagged provider networks end in the guest's kernel).
    The management NIC (``MANAGEMENT_MAC``) is on qemu's user network.

    ``workdir`` holds the console log, the control socket and the
    initramfs, and is the one directory the guest may write to (mounted at
    the same path inside). ``forwards`` maps loopback ports of this
    machine to ports of the guest's management address.
    """

    def __init__(self, workdir, forwards=(), memory='1G', cpus=2,
                 kernel=None):
        self.workdir = workdir
        self.forwards = dict(forwards)
        self.memory = memory
        self.cpus = cpus
        self.kernel = kernel or guest_kernel.Kernel.find()
        self.console_log = os.path.join(workdir, 'console.log')
        self._socket_path = os.path.join(workdir, 'control.sock')
        self._process = None
        self._started = None
        self._channel = None
        self._reader = None
        self.kernel_release = None

    def _argv(self, initramfs):
        forwards = ''.join(
            f',hostfwd=tcp:127.0.0.1:{host}-{MANAGEMENT_ADDRESS}:{guest}'
            for host, guest in sorted(self.forwards.items()))
        return [
            QEMU, '-accel', 'tcg', '-machine', 'q35', '-cpu', 'max',
            '-m', self.memory, '-smp', str(self.cpus),
            '-display', 'none', '-monitor', 'none', '-no-reboot',
            '-serial', f'file:{self.console_log}',
            '-kernel', self.kernel.vmlinuz, '-initrd', initramfs,
            '-append', 'console=ttyS0 panic=-1 quiet',
            # See the module's docstring: every BAR below 4 GiB.
            '-global', 'q35-pcihost.pci-hole64-size=0',
            '-virtfs', (f'local,path=/,mount_tag={guest_kernel.ROOT_TAG},'
                        'security_model=passthrough,readonly=on'),
            '-virtfs', (f'local,path={self.workdir},'
                        f'mount_tag={guest_kernel.SHARE_TAG},'
                        'security_model=passthrough'),
            '-device', 'virtio-serial-pci',
            '-chardev', (f'socket,id=control,path={self._socket_path},'
                         'server=on,wait=off'),
            '-device', (f'virtserialport,chardev=control,'
                        f'name={console.PORT_NAME}'),
            '-netdev', 'hubport,id=wire,hubid=0',
            '-device', f'igb,netdev=wire,mac={PF_MAC}',
            '-netdev', 'hubport,id=uplink,hubid=0',
            '-device', f'virtio-net-pci,netdev=uplink,mac={UPLINK_MAC}',
            '-netdev', f'user,id=management{forwards}',
            '-device', ('virtio-net-pci,netdev=management,'
                        f'mac={MANAGEMENT_MAC}'),
        ]

    def start(self):
        initramfs = guest_kernel.build_initramfs(
            self.kernel, os.path.join(self.workdir, 'initramfs.cpio'),
            sys.executable, self.workdir)
        with open(os.path.join(self.workdir, 'qemu.log'), 'ab') as log:
            self._process = subprocess.Popen(
                self._argv(initramfs), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self._started = processes.start_time(self._process.pid)
        try:
            self._connect()
            ready = self._receive(BOOT_DEADLINE)
            if ready.get('event') != 'ready':
                raise GuestError(f'unexpected first message {ready}')
            self.kernel_release = ready['kernel']
        except BaseException:
            self.stop()
            raise
        LOG.info('Guest %s up (kernel %s)', self._process.pid,
                 self.kernel_release)
        return self

    def _connect(self):
        deadline = time.monotonic() + 30
        while True:
            self._check_alive()
            try:
                channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                channel.connect(self._socket_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                channel.close()
                if time.monotonic() > deadline:
                    raise GuestError('qemu opened no control socket')
                time.sleep(0.1)
        self._channel = channel
        self._reader = channel.makefile('rb')

    def _check_alive(self):
        if self._process.poll() is not None:
            raise GuestError(f'qemu exited with {self._process.returncode}; '
                             f'console:\n{self.console_tail()}')

    def console_tail(self, lines=40):
        try:
            with open(self.console_log, errors='replace') as log:
                return ''.join(log.readlines()[-lines:])
        except FileNotFoundError:
            return ''

    def _receive(self, timeout):
        self._channel.settimeout(timeout)
        try:
            line = self._reader.readline()
        except socket.timeout:
            raise GuestError(f'no answer from the guest in {timeout} s; '
                             f'console:\n{self.console_tail()}')
        if not line:
            self._process.wait(STOP_DEADLINE)
            self._check_alive()
        answer = json.loads(line)
        if 'error' in answer:
            raise GuestError(answer['error'])
        return answer

    def _request(self, deadline, **request):
        self._channel.sendall(json.dumps(request).encode() + b'\n')
        return self._receive(deadline)

    def run(self, argv, input=None, timeout=120, check=True, env=None):
        """Run ``argv`` in the guest; return a ``Result``."""
        # The guest's own timeout first, so that the answer still comes.
        answer = self._request(timeout + 30, op='run', argv=list(argv),
                               input=input, timeout=timeout, env=env)
        result = Result(list(argv), answer)
        return result.check() if check else result

    def sh(self, script, **kwargs):
        return self.run(['sh', '-ec', script], **kwargs)

    def spawn(self, argv, log, env=None):
        """Start a program that outlives the request; return its PID."""
        return self._request(60, op='spawn', argv=list(argv), log=log,
                             env=env)['pid']

    def signal(self, pid, signum, wait=0):
        """Signal a spawned program; its exit code if it ended in ``wait``."""
        return self._request(wait + 30, op='signal', pid=pid, signum=signum,
                             wait=wait)['returncode']

    def stop(self):
        """Power the guest off; end qemu by its PID if it does not go."""
        if self._process is None:
            return
        try:
            if self._channel is not None and self._process.poll() is None:
                try:
                    self._request(STOP_DEADLINE, op='poweroff')
                except (OSError, GuestError, ValueError):
                    LOG.warning('Guest %s did not take the poweroff',
                                self._process.pid)
            try:
                self._process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                if processes.is_running(self._process.pid, self._started):
                    self._process.kill()
                self._process.wait()
        finally:
            if self._channel is not None:
                self._reader.close()
                self._channel.close()
            self._channel = self._process = None
