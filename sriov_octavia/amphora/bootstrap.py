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
"""What an amphora boots from: its identity and its agent's configuration.

The controller issues each amphora a server certificate named after the
amphora's id, signed by the CA of Octavia's ``[certificates]`` through
Octavia's own certificate generator, and renders the agent configuration.
Both reach the amphora in the Nova boot request as cloud-init user data
(``write_files``); the image's element starts the agent from exactly these
paths, so nothing about an amphora's identity is baked into the image.

The private key travels between flow tasks only encrypted with Octavia's
``[certificates] server_certs_key_passphrase`` (Fernet), as Octavia's own
flows keep it, so the persisted flow state never holds it in clear.
"""

import base64
import configparser
import dataclasses
import io

from cryptography import x509
from octavia.common import utils as octavia_utils
from stevedore import driver as stevedore_driver
import yaml

from sriov_octavia import conf as sriov_conf

# Its import registers every option this module reads.
CONF = sriov_conf.CONF

AGENT_CONF = '/etc/octavia/amphora-sriov-agent.conf'
SERVER_PEM = '/etc/octavia/certs/server.pem'
CLIENT_CA = '/etc/octavia/certs/client_ca.pem'
# Settings of the image itself (the platform it was built for), read after
# the controller's file by the element's unit (``--config-dir``); the
# controller writes nothing there.
AGENT_CONF_DIR = '/etc/octavia/amphora-sriov-agent.d'
DATA_NAMESPACE = 'amphora-haproxy'
STATE_DIR = '/var/lib/octavia'
FIREWALL_STATE_FILE = STATE_DIR + '/sriov-firewall.json'
# Nova refuses user data above 65535 bytes once base64 encoded.
MAX_USER_DATA = 65535


class IdentityError(Exception):
    """The controller could not issue an amphora's identity."""


def _fernet():
    return octavia_utils.get_server_certs_key_passphrases_fernet()


def new_server_pem(amphora_id, conf=CONF):
    """A new server certificate and key for ``amphora_id``, as PEM bytes.

    The certificate followed by its key: the agent's ``agent_server_cert``
    layout. Keep it out of logs and persisted state (``issue_server_pem``).

    :raises IdentityError: naming what is missing or wrong, never the key.
    """
    certificates = conf.certificates
    try:
        generator = stevedore_driver.DriverManager(
            namespace='octavia.cert_generator',
            name=certificates.cert_generator,
            invoke_on_load=True).driver
        cert = generator.generate_cert_key_pair(
            cn=amphora_id, validity=certificates.cert_validity_time)
    except Exception as error:
        raise IdentityError(
            f'cannot issue the server certificate of amphora {amphora_id} '
            f'with [certificates] cert_generator '
            f'{certificates.cert_generator}, ca_certificate '
            f'{certificates.ca_certificate} and ca_private_key '
            f'{certificates.ca_private_key}: {error}') from None
    pem = cert.get_certificate() + cert.get_private_key()
    return pem.encode('utf-8') if isinstance(pem, str) else pem


def issue_server_pem(amphora_id, conf=CONF):
    """``new_server_pem``, encrypted: a Fernet token (str) for the flow."""
    return _fernet().encrypt(new_server_pem(amphora_id, conf)).decode(
        'ascii')


def decrypt_server_pem(token):
    """The PEM bytes behind an ``issue_server_pem`` token."""
    return _fernet().decrypt(token.encode('ascii'))


def certificate_of(pem):
    """The certificate (first PEM block) of a server PEM, parsed."""
    return x509.load_pem_x509_certificate(pem)


def agent_config(amphora_id, conf=CONF):
    """The agent's configuration file for ``amphora_id``, as text."""
    parser = configparser.ConfigParser(interpolation=None)
    # The amphora logs as verbosely as the controller does (oslo.log's
    # option, registered wherever logging is set up).
    debug = bool(conf.debug) if 'debug' in conf else False
    parser['DEFAULT'] = {'debug': str(debug).lower()}
    parser['amphora_agent'] = {
        'amphora_id': amphora_id,
        'agent_server_ca': CLIENT_CA,
        'agent_server_cert': SERVER_PEM,
        'agent_request_read_timeout':
            str(conf.amphora_agent.agent_request_read_timeout),
        'network_namespace': DATA_NAMESPACE,
        'firewall_state_file': FIREWALL_STATE_FILE,
    }
    parser['haproxy_amphora'] = {
        'bind_host': '::',
        'bind_port': str(conf.sriov_amphora.agent_port),
        # Where upstream's agent keeps haproxy's files, across reboots.
        'base_path': STATE_DIR,
    }
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


@dataclasses.dataclass(frozen=True)
class BootFile:
    path: str
    content: bytes
    permissions: str


def boot_files(amphora_id, server_pem, conf=CONF):
    """The files an amphora needs at first boot.

    :param server_pem: the PEM bytes (``decrypt_server_pem``).
    :raises IdentityError: the controller's client CA cannot be read.
    """
    client_ca_path = conf.controller_worker.client_ca
    try:
        with open(client_ca_path, 'rb') as ca_file:
            client_ca = ca_file.read()
    except OSError as error:
        raise IdentityError(
            f'cannot read [controller_worker] client_ca {client_ca_path}, '
            f'the CA the agent of amphora {amphora_id} trusts for the '
            f'controller: {error}') from None
    return [
        BootFile(AGENT_CONF,
                 agent_config(amphora_id, conf).encode('utf-8'), '0644'),
        BootFile(CLIENT_CA, client_ca, '0644'),
        BootFile(SERVER_PEM, server_pem, '0600'),
    ]


def user_data(files):
    """cloud-init ``#cloud-config`` user data writing ``files``.

    Contents go base64 encoded, so PEM line breaks and any byte survive
    YAML untouched.
    """
    document = {'write_files': [
        {'path': boot_file.path,
         'encoding': 'b64',
         'content': base64.b64encode(boot_file.content).decode('ascii'),
         'owner': 'root:root',
         'permissions': boot_file.permissions}
        for boot_file in files]}
    text = '#cloud-config\n' + yaml.safe_dump(document,
                                              default_flow_style=False)
    encoded = len(base64.b64encode(text.encode('utf-8')))
    if encoded > MAX_USER_DATA:
        raise IdentityError(f'the user data is {encoded} bytes once '
                            f'encoded, more than the {MAX_USER_DATA} Nova '
                            f'accepts')
    return text
