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
"""How the testbed names the kernel objects of one testbed instance.

Every namespace and every root-namespace link starts with ``<prefix>-`` so
that ``cleanup`` can find them again and touch nothing else. Links inside
the testbed's own namespaces need no prefix, but Linux limits every link
name to 15 characters, which decides how much of an id each name keeps.
"""

import re

IFNAMSIZ = 15
MAX_PREFIX_LENGTH = 6
# Inside an amphora, as on a real one: eth0 is the management interface,
# hot-plugged VFs come as eth1, eth2, ...
MGMT_IFNAME = 'eth0'
HOST_IFNAME = 'eth0'

_PREFIX = re.compile(r'^[a-z][a-z0-9]{0,%d}$' % (MAX_PREFIX_LENGTH - 1))
_HOST_NAME = re.compile(r'^[a-z0-9][a-z0-9-]{0,11}$')
# Enough of a UUID to tell apart the handful of servers, ports and
# networks of one testbed, and short enough for a link name.
_SERVER_CHARS = 8
_PORT_CHARS = 12
_NETWORK_CHARS = 11


def short_id(identifier, length):
    """The first ``length`` letters and digits of an id, lower case."""
    chars = ''.join(c for c in str(identifier).lower() if c.isalnum())
    if not chars:
        raise ValueError(f'id without letters or digits: {identifier!r}')
    return chars[:length]


class Names:
    """Names of one testbed instance's kernel objects."""

    def __init__(self, prefix):
        if not _PREFIX.match(prefix or ''):
            raise ValueError(
                f'prefix must be a lower-case letter followed by at most '
                f'{MAX_PREFIX_LENGTH - 1} letters or digits: {prefix!r}')
        self.prefix = prefix

    def owns(self, name):
        return name.startswith(f'{self.prefix}-')

    @property
    def mgmt_bridge(self):
        """The management network's bridge, in the root namespace."""
        return f'{self.prefix}-mgmt'

    @property
    def phys_namespace(self):
        """The namespace holding one bridge per Neutron network."""
        return f'{self.prefix}-phys'

    def amphora_namespace(self, server_id):
        return f'{self.prefix}-amp-{short_id(server_id, _SERVER_CHARS)}'

    def data_namespace(self, server_id):
        return f'{self.amphora_namespace(server_id)}-lb'

    def mgmt_peer(self, server_id):
        """Root-namespace end of an amphora's management veth."""
        return f'{self.prefix}-{short_id(server_id, _SERVER_CHARS)}'

    def network_bridge(self, network_id):
        """A network's bridge inside the phys namespace."""
        return f'br-{short_id(network_id, _NETWORK_CHARS)}'

    def vf_peer(self, port_id):
        """The phys-namespace end of the veth standing in for a VF."""
        return f'v{short_id(port_id, _PORT_CHARS)}'

    def host_namespace(self, name):
        return f'{self.prefix}-host-{self._host_name(name)}'

    def host_peer(self, name):
        """The phys-namespace end of a client or member host's veth."""
        return f'h-{self._host_name(name)}'

    @staticmethod
    def _host_name(name):
        if not _HOST_NAME.match(name or ''):
            raise ValueError(
                f'host name {name!r} is not 1 to 12 lower-case letters, '
                f'digits or dashes starting with a letter or digit')
        return name
