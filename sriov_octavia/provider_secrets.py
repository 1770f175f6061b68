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
"""Certificate and key material that Octavia puts into provider dicts.

octavia-api hands a driver its listeners and pools with the TLS secrets'
contents (``*_container_data``: certificates and private keys) beside
their Barbican refs, and the driver-agent's get socket does the same. This
provider reads the secrets from the certificate manager when it pushes
them (``sriov_octavia.engine.tls_files``), so the contents are dropped on
the way in: a job, a flow's persisted store and a log never hold a key.
"""

from octavia_lib.common import constants as lib_consts

DATA_KEYS = frozenset((
    lib_consts.DEFAULT_TLS_CONTAINER_DATA, lib_consts.SNI_CONTAINER_DATA,
    lib_consts.CLIENT_CA_TLS_CONTAINER_DATA,
    lib_consts.CLIENT_CRL_CONTAINER_DATA, lib_consts.TLS_CONTAINER_DATA,
    lib_consts.CA_TLS_CONTAINER_DATA, lib_consts.CRL_CONTAINER_DATA))


def without_secret_data(value):
    """A copy of ``value`` (dicts and lists, nested) without the data keys."""
    if isinstance(value, dict):
        return {key: without_secret_data(item) for key, item in value.items()
                if key not in DATA_KEYS}
    if isinstance(value, (list, tuple)):
        return [without_secret_data(item) for item in value]
    return value
