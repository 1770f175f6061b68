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
"""The testbed's CA and the controller's client certificate.

The CA signed every agent's and the controller's certificate; it is made
on first use and kept in ``<state>/certs``.
"""

import os

from sriov_octavia_testbed import certs

CONTROLLER_CERT_NAME = 'octavia-controller'


class Certificates:

    def __init__(self, records, prefix):
        self._records = records
        self._prefix = prefix

    @property
    def ca_cert(self):
        """The CA that signed every agent's and the controller's cert."""
        return self._certificate_authority().path

    @property
    def ca_key(self):
        """The CA's private key, for the controller's certificate issuing."""
        self._certificate_authority()
        return self._records.path('certs', 'ca.pem.key')

    @property
    def agent_client_cert(self):
        """Certificate + key PEM the controller presents to the agents."""
        path = self._records.path('certs', 'controller.pem')
        with self._records.lock:
            if not os.path.exists(path):
                self._certificate_authority().issue_client(
                    path, CONTROLLER_CERT_NAME)
        return path

    def _certificate_authority(self):
        path = self._records.path('certs', 'ca.pem')
        with self._records.lock:
            if os.path.exists(path):
                return certs.CertificateAuthority.load(path)
            return certs.CertificateAuthority.create(
                path, name=f'{self._prefix} testbed CA')
