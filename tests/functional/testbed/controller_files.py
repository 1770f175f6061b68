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
"""The controller's part, for tests that boot amphorae on the fabric alone.

The user data an amphora boots from, made as the controller makes it
(``sriov_octavia.amphora.bootstrap``), with a certificate from the
testbed's CA that also names the management address, so that plain HTTPS
clients verify it.
"""

import os

from sriov_octavia.amphora import bootstrap
from sriov_octavia_testbed import certs


def user_data(fabric, amphora_id, mgmt_ip=None):
    ca = certs.CertificateAuthority.load(fabric.ca_cert)
    pem_path = ca.issue_server(
        os.path.join(fabric.state_dir, 'certs', f'{amphora_id}.pem'),
        hostnames=[amphora_id], ips=[mgmt_ip] if mgmt_ip else [])
    with open(pem_path, 'rb') as pem, open(fabric.ca_cert, 'rb') as client_ca:
        files = [
            bootstrap.BootFile(bootstrap.AGENT_CONF,
                               bootstrap.agent_config(amphora_id).encode(),
                               '0644'),
            bootstrap.BootFile(bootstrap.CLIENT_CA, client_ca.read(), '0644'),
            bootstrap.BootFile(bootstrap.SERVER_PEM, pem.read(), '0600')]
    return bootstrap.user_data(files)
