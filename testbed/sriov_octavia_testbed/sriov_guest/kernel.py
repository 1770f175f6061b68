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
"""The guest's kernel and the initramfs that mounts this machine's root.

``tools/install.sh`` unpacks Debian's backports kernel package into
``KERNEL_DIR`` (``boot/vmlinuz-<version>``, ``lib/modules/<version>`` with
``modules.dep``); this machine's running kernel is never touched.

The initramfs holds a static busybox, the few modules needed to mount the
host's root (9p over virtio, overlayfs), and an ``/init`` that mounts it
read-only under a tmpfs overlay, so that the guest may write anywhere and
nothing it writes reaches this machine, except in the one shared
directory. The kernel's other modules are bound at ``/lib/modules`` and
loaded on demand by the host's own ``modprobe``.
"""

import dataclasses
import glob
import io
import lzma
import os
import shlex
import stat

KERNEL_DIR = os.environ.get('SRIOV_GUEST_KERNEL_DIR',
                            '/var/cache/sriov-octavia/guest-kernel')
BUSYBOX = '/bin/busybox'
# In load order: each needs the ones before it.
BOOT_MODULES = (
    'kernel/fs/netfs/netfs.ko.xz',
    'kernel/net/9p/9pnet.ko.xz',
    'kernel/net/9p/9pnet_virtio.ko.xz',
    'kernel/fs/9p/9p.ko.xz',
    'kernel/fs/overlayfs/overlay.ko.xz',
)
ROOT_TAG = 'hostroot'
SHARE_TAG = 'share'


class KernelMissing(Exception):
    """The guest kernel is not unpacked where it is looked for."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    version: str
    vmlinuz: str
    modules: str

    @classmethod
    def find(cls, directory=KERNEL_DIR):
        images = sorted(glob.glob(os.path.join(directory, 'boot',
                                               'vmlinuz-*')))
        if not images:
            raise KernelMissing(
                f'no guest kernel in {directory}/boot: tools/install.sh '
                f'unpacks it there')
        vmlinuz = images[-1]
        version = os.path.basename(vmlinuz)[len('vmlinuz-'):]
        modules = os.path.join(directory, 'lib', 'modules', version)
        if not os.path.exists(os.path.join(modules, 'modules.dep')):
            raise KernelMissing(f'{modules} has no modules.dep: run '
                                f'depmod -b {directory} {version}')
        return cls(version, vmlinuz, modules)


def _init_script(kernel, python, share):
    modules = ' '.join(os.path.basename(m)[:-len('.xz')]
                       for m in BOOT_MODULES)
    quoted = {name: shlex.quote(value) for name, value in (
        ('python', python), ('share', share), ('modules', kernel.modules),
        ('version', kernel.version))}
    return f"""#!/bin/busybox sh
set -e
bb=/bin/busybox
$bb mkdir -p /proc /dev /lower /upper /newroot
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for module in {modules}; do $bb insmod /modules/$module; done
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 \\
    {ROOT_TAG} /lower
$bb mount -t tmpfs -o mode=0755 upper /upper
$bb mkdir -p /upper/data /upper/work
$bb mount -t overlay \\
    -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work \\
    overlay /newroot
$bb mkdir -p /newroot/usr/lib/modules/{quoted['version']}
$bb mount --bind /newroot{quoted['modules']} \\
    /newroot/usr/lib/modules/{quoted['version']}
$bb mkdir -p /newroot{quoted['share']}
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 \\
    {SHARE_TAG} /newroot{quoted['share']}
$bb umount /proc
$bb umount /dev
exec $bb switch_root /newroot {quoted['python']} \\
    -m sriov_octavia_testbed.sriov_guest.console
"""


class _Cpio:
    """An archive in the kernel's initramfs format (cpio "newc")."""

    def __init__(self):
        self._out = io.BytesIO()
        self._inode = 0

    def _pad(self):
        self._out.write(b'\0' * (-self._out.tell() % 4))

    def _entry(self, name, mode, data=b''):
        self._inode += 1
        encoded = name.encode() + b'\0'
        fields = (self._inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                  len(encoded), 0)
        self._out.write(b'070701' + b''.join(b'%08X' % f for f in fields))
        self._out.write(encoded)
        self._pad()
        self._out.write(data)
        self._pad()

    def directory(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def close(self):
        self._inode = 0
        self._entry('TRAILER!!!', 0)
        self._out.write(b'\0' * (-self._out.tell() % 512))
        return self._out.getvalue()


def build_initramfs(kernel, path, python, share):
    """Write the initramfs to ``path``.

    ``python`` is the interpreter that runs the guest's console (this
    machine's virtualenv, seen through the shared root); ``share`` is the
    directory of this machine that the guest mounts writable at the same
    path.
    """
    archive = _Cpio()
    for directory in ('bin', 'modules'):
        archive.directory(directory)
    with open(BUSYBOX, 'rb') as busybox:
        archive.file('bin/busybox', busybox.read(), 0o755)
    for module in BOOT_MODULES:
        with open(os.path.join(kernel.modules, module), 'rb') as packed:
            # busybox's insmod loads plain modules only.
            archive.file('modules/' + os.path.basename(module)[:-3],
                         lzma.decompress(packed.read()))
    archive.file('init', _init_script(kernel, python, share).encode(), 0o755)
    with open(path, 'wb') as out:
        out.write(archive.close())
    return path
