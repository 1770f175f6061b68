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
"""An emulated amphora's init: its own files, then the agent's unit.

Amphorae of one testbed share this machine's file system, where a real one
has a disk of its own. Run inside the amphora's network namespace by ``ip
netns exec`` (which gives it a mount namespace of its own, a slave of this
machine's), this bind-mounts the amphora's directories over the paths an
amphora image uses (``/etc/octavia``, ``/var/lib/octavia``), and gives it a
``/run/netns`` of its own in which the data namespace the fabric made
carries the name the agent's configuration asks for, as it would inside a
VM. Then it runs the command line of the image's systemd unit, as that
process (exec), so the fabric's PID is the agent's.

Run as ``python -m sriov_octavia_testbed.plumbing.amphora_init --root DIR
[--netns HOST_NAME:NAME] -- ARGV...``.
"""

import argparse
import os
import subprocess
import sys

# The directories of an amphora image its processes write or read.
PRIVATE_DIRS = ('/etc/octavia', '/var/lib/octavia')
_NETNS_DIR = '/run/netns'


def _bind(source, target, recursive=False):
    subprocess.run(['mount', '--rbind' if recursive else '--bind', source,
                    target], check=True)


def _touch(path):
    with open(path, 'a'):
        pass


def prepare(root, netns=()):
    """Mount the amphora's own directories; map its network namespaces."""
    for directory in PRIVATE_DIRS:
        own = os.path.join(root, directory.lstrip('/'))
        os.makedirs(own, exist_ok=True)
        # The mount point on this machine: an empty directory, which the
        # mount hides from the amphora only.
        os.makedirs(directory, exist_ok=True)
        _bind(own, directory)
    own_netns = os.path.join(root, _NETNS_DIR.lstrip('/'))
    os.makedirs(own_netns, exist_ok=True)
    for host_name, name in netns:
        # Bound while this machine's /run/netns is still visible.
        target = os.path.join(own_netns, name)
        _touch(target)
        _bind(os.path.join(_NETNS_DIR, host_name), target)
    # Recursive: the namespaces bound inside it come along.
    _bind(own_netns, _NETNS_DIR, recursive=True)


def _netns_pair(text):
    host_name, sep, name = text.partition(':')
    if not sep or not host_name or not name:
        raise argparse.ArgumentTypeError(f'{text!r} is not HOST_NAME:NAME')
    return host_name, name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', required=True)
    parser.add_argument('--netns', action='append', default=[],
                        type=_netns_pair)
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else \
        args.command
    if not command:
        parser.error('no command to run')
    prepare(args.root, args.netns)
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == '__main__':
    main()
