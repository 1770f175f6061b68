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
"""The igb tier's guest: its kernel lookup, initramfs and console."""

import io
import json
import lzma
import os
import stat

import pytest

from sriov_octavia_testbed.sriov_guest import console
from sriov_octavia_testbed.sriov_guest import kernel


def _read_newc(data):
    """``{name: (mode, bytes)}`` from a cpio "newc" archive."""
    entries = {}
    offset = 0
    while True:
        assert data[offset:offset + 6] == b'070701'
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16)
                  for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        offset += 110
        name = data[offset:offset + name_size - 1].decode()
        offset += name_size + (-(offset + name_size) % 4)
        if name == 'TRAILER!!!':
            return entries
        entries[name] = (mode, data[offset:offset + size])
        offset += size + (-(offset + size) % 4)


@pytest.fixture
def kernel_dir(tmp_path):
    """A kernel tree as tools/install.sh leaves it, with fake modules."""
    version = '6.12.0-test-amd64'
    (tmp_path / 'boot').mkdir()
    (tmp_path / 'boot' / f'vmlinuz-{version}').write_bytes(b'kernel')
    modules = tmp_path / 'lib' / 'modules' / version
    for module in kernel.BOOT_MODULES:
        path = modules / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lzma.compress(b'\x7fELF ' + module.encode()))
    (modules / 'modules.dep').write_text('')
    return tmp_path


def test_find_names_the_version_and_paths(kernel_dir):
    found = kernel.Kernel.find(str(kernel_dir))

    assert found.version == '6.12.0-test-amd64'
    assert found.vmlinuz.endswith('/boot/vmlinuz-6.12.0-test-amd64')
    assert found.modules.endswith('/lib/modules/6.12.0-test-amd64')


def test_find_without_a_kernel_says_where_it_looked(tmp_path):
    with pytest.raises(kernel.KernelMissing, match=str(tmp_path)):
        kernel.Kernel.find(str(tmp_path))


def test_find_without_depmod_says_so(kernel_dir):
    os.remove(kernel.Kernel.find(str(kernel_dir)).modules + '/modules.dep')

    with pytest.raises(kernel.KernelMissing, match='depmod'):
        kernel.Kernel.find(str(kernel_dir))


def test_initramfs_holds_busybox_plain_modules_and_an_init(
        kernel_dir, tmp_path):
    found = kernel.Kernel.find(str(kernel_dir))
    path = kernel.build_initramfs(found, str(tmp_path / 'initrd'),
                                  '/venv/bin/python', '/tmp/work dir')

    with open(path, 'rb') as archive:
        entries = _read_newc(archive.read())

    mode, init = entries['init']
    assert stat.S_ISREG(mode) and mode & 0o111
    init = init.decode()
    assert init.startswith('#!/bin/busybox sh\n')
    # Loaded in dependency order, then root over 9p under an overlay.
    loads = [init.index(name) for name in
             ('netfs.ko', '9pnet.ko', '9pnet_virtio.ko', '9p.ko',
              'overlay.ko')]
    assert loads == sorted(loads)
    assert 'mount -t 9p -o trans=virtio,version=9p2000.L,ro' in init
    assert "/newroot'/tmp/work dir'" in init
    assert ("switch_root /newroot /venv/bin/python \\\n"
            "    -m sriov_octavia_testbed.sriov_guest.console") in init
    assert entries['bin/busybox'][0] & 0o111
    for module in kernel.BOOT_MODULES:
        name = 'modules/' + os.path.basename(module)[:-len('.xz')]
        assert entries[name][1].startswith(b'\x7fELF')


def _serve(*requests):
    reader = io.BytesIO(b''.join(json.dumps(r).encode() + b'\n'
                                 for r in requests))
    writer = io.BytesIO()
    console.Console(reader, writer).serve()
    return [json.loads(line) for line in writer.getvalue().splitlines()]


def test_console_runs_commands_and_reports_their_output():
    ready, answer = _serve({
        'op': 'run', 'argv': ['sh', '-c', 'cat; echo err >&2; exit 3'],
        'input': 'in'})

    assert ready['event'] == 'ready'
    assert answer == {'returncode': 3, 'stdout': 'in', 'stderr': 'err\n'}


def test_console_answers_a_bad_request_with_an_error_and_goes_on():
    _, unknown, missing, after = _serve(
        {'op': 'reboot-the-host'}, {'op': 'run', 'argv': ['/nonexistent']},
        {'op': 'run', 'argv': ['true']})

    assert unknown == {'error': 'ValueError: unknown operation'}
    assert missing['error'].startswith('FileNotFoundError')
    assert after['returncode'] == 0


def test_console_signals_only_what_it_spawned(tmp_path):
    log = str(tmp_path / 'sleep.log')
    _, spawned, stranger, *_ = _serve(
        {'op': 'spawn', 'argv': ['sleep', '30'], 'log': log},
        {'op': 'signal', 'pid': 1, 'signum': 15})

    assert spawned['pid'] > 1
    assert 'was not spawned by this console' in stranger['error']
    os.kill(spawned['pid'], 9)


def test_console_stops_reading_after_poweroff():
    answers = _serve({'op': 'poweroff'}, {'op': 'run', 'argv': ['true']})

    assert answers[1:] == [{'poweroff': True}]
