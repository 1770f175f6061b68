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
"""The controller's client for the amphora agent's API.

Every call is HTTPS with the controller's client certificate; the agent's
server certificate must be signed by ``server_ca``. ``server_name`` is the
name it must carry as a subjectAltName: the amphora id the controller
issued it to (``from_conf`` passes it), None for the address connected to,
or False for none at all.

Every agent operation is idempotent (a plug converges to the same state,
a security group is the whole desired state), so a request whose
connection failed or timed out is simply sent again. Failures end as one
of these exceptions a flow can log as they are:

- AgentUnreachable: no answer (with what the operator should check);
- AgentRejected: an answer refusing the request, with the agent's field
  and reason;
- InterfaceMissing (wait_for_interface): a hot-plugged VF did not appear.
"""

import socket
import ssl
import time
from urllib import parse

from cryptography import x509
from oslo_log import log as logging
import requests
from requests import adapters
from urllib3.util import retry as urllib3_retry

from sriov_octavia.amphora import errors
from sriov_octavia import conf as sriov_conf

# Its import registers every option this module reads.
CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

API_VERSION = '1.0'
_BACKOFF_MAX = 30.0
# How often wait_until_up() and wait_for_interface() ask again.
_POLL_INTERVAL = 1.0
# served_certificate() reads no more of the answer to "GET /".
_MAX_VERSION_ANSWER = 64 * 1024


# The errors the client raises, named here for its callers.
AgentError = errors.AgentError
AgentUnreachable = errors.AgentUnreachable
AgentTLSError = errors.AgentTLSError
AgentRejected = errors.AgentRejected
InterfaceMissing = errors.InterfaceMissing


class _AgentAdapter(adapters.HTTPAdapter):
    """Connection pools that check the agent certificate's name.

    ``server_name`` None checks the connected host (urllib3's default), a
    string checks that name instead, False checks none.
    """

    def __init__(self, server_name, **kwargs):
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        if self._server_name is not None:
            kwargs['assert_hostname'] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _retries(retries, interval):
    # Connection failures and read timeouts are retried, for every method
    # (all agent operations are idempotent). A TLS failure or an HTTP
    # error answer is final: sending the same again gives the same.
    return urllib3_retry.Retry(
        total=retries, connect=retries, read=retries, other=0, status=0,
        redirect=0, allowed_methods=None, backoff_factor=interval,
        backoff_max=_BACKOFF_MAX, raise_on_status=False)


def served_certificate(address, client_cert, ca_cert, server_name=None,
                       timeout=10.0):
    """The certificate the agent at ``address`` presents right now.

    One TLS connection, made as AgentClient's requests are: with the
    client certificate ``client_cert``, the server's verified against
    ``ca_cert`` and checked for ``server_name`` (None: the host connected
    to; a string: that name; False: no name). ``address`` is a
    ``(host, port)`` pair or an ``https://`` URL. The connection asks for
    ``GET /`` (version discovery) and reads the answer: with TLS 1.3 only
    an answer shows that the agent accepted the client certificate too.

    Returns a cryptography.x509.Certificate, for its expiry and names.
    Raises AgentTLSError when the handshake fails either way (the agent's
    certificate is not trusted or does not carry the name, or the agent
    refuses ours) and AgentUnreachable when the agent does not answer
    within ``timeout`` seconds.
    """
    if isinstance(address, str):
        url = address.rstrip('/')
        split = parse.urlsplit(url)
        host, port = split.hostname, split.port or 443
    else:
        host, port = address
        url = f'https://{f"[{host}]" if ":" in host else host}:{port}'
    context = ssl.create_default_context(cafile=ca_cert)
    context.load_cert_chain(client_cert)
    if server_name is False:
        context.check_hostname = False
        expected = None
    else:
        expected = server_name or host
    try:
        with socket.create_connection((host, port), timeout) as plain:
            with context.wrap_socket(plain,
                                     server_hostname=expected) as tls:
                der = tls.getpeercert(binary_form=True)
                _ask_version(tls, parse.urlsplit(url).netloc)
    except ssl.SSLError as error:  # ssl.CertificateError included
        raise AgentTLSError(url, str(error)) from None
    except OSError as error:
        raise AgentUnreachable(url, str(error)) from None
    return x509.load_der_x509_certificate(der)


def _ask_version(tls, netloc):
    """Send ``GET /`` and read the answer to its end.

    The agent ends the connection after its answer: reading to the end
    lets it close first, so that it never writes to a closed connection.
    """
    tls.sendall(f'GET / HTTP/1.1\r\nHost: {netloc}\r\n'
                'Accept: application/json\r\nConnection: close\r\n\r\n'
                .encode())
    answer = b''
    while len(answer) < _MAX_VERSION_ANSWER:
        data = tls.recv(4096)
        if not data:
            break
        answer += data
    if not answer.startswith(b'HTTP/'):
        raise ConnectionError('the agent closed the connection without '
                              'answering')


class AgentClient:
    """One amphora agent's API.

    ``address`` is a base URL (``https://192.0.2.5:9443``) or a
    ``(management ip, port)`` pair. ``client_cert`` is the PEM holding the
    controller's certificate and key, ``ca_cert`` the CA that signed the
    agent's certificate. ``timeout`` is a ``(connect, read)`` pair of
    seconds or one number for both.
    """

    def __init__(self, address, client_cert, ca_cert, timeout=(10.0, 60.0),
                 retries=5, retry_interval=2.0, server_name=None):
        if isinstance(address, str):
            self.base_url = address.rstrip('/')
        else:
            host, port = address
            host = f'[{host}]' if ':' in host else host
            self.base_url = f'https://{host}:{port}'
        self.timeout = timeout
        self._cert = client_cert
        self._ca_cert = ca_cert
        self._server_name = server_name
        self._session = self._new_session(
            server_name, _retries(retries, retry_interval))
        # For polling a booting agent: one attempt per poll.
        self._quick = self._new_session(server_name, _retries(0, 0))

    @staticmethod
    def _new_session(server_name, retries):
        session = requests.Session()
        # Neither proxies nor REQUESTS_CA_BUNDLE from the environment: the
        # agents sit on the management network and are verified against
        # their own CA (the variable would replace it).
        session.trust_env = False
        session.headers['Accept'] = 'application/json'
        session.mount('https://', _AgentAdapter(server_name,
                                                max_retries=retries))
        return session

    @classmethod
    def from_conf(cls, mgmt_ip, conf=CONF, amphora_id=None, retries=None,
                  timeout=None):
        """A client for the agent at ``mgmt_ip`` as the configuration says.

        The certificates are Octavia's own, [haproxy_amphora] client_cert
        and server_ca (the ones its amphora driver uses, so an operator sets
        them once); how to reach the agent is [sriov_amphora]. With
        ``server_name_check = amphora_id`` the agent's certificate must name
        ``amphora_id``, the id the controller issued it to; without an id
        (an amphora booted before ids were issued) the management address.
        ``retries`` overrides [sriov_amphora] request_retries, ``timeout``
        its connect_timeout and request_timeout.
        """
        group = conf.sriov_amphora
        server_name = None
        if group.server_name_check == 'none':
            server_name = False
        elif amphora_id:
            server_name = amphora_id
        return cls((mgmt_ip, group.agent_port),
                   conf.haproxy_amphora.client_cert,
                   conf.haproxy_amphora.server_ca,
                   timeout=timeout or (group.connect_timeout,
                                       group.request_timeout),
                   retries=(group.request_retries if retries is None
                            else retries),
                   retry_interval=group.retry_interval,
                   server_name=server_name)

    def close(self):
        self._session.close()
        self._quick.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Requests ------------------------------------------------------------

    def _url(self, path):
        return f'{self.base_url}/{API_VERSION}/{path}'

    def _request(self, method, path, body=None, session=None,
                 timeout=None, text=None):
        """``body`` is sent as JSON, ``text`` (a file) as it is."""
        url = self._url(path)
        try:
            response = (session or self._session).request(
                method, url, json=body, timeout=timeout or self.timeout,
                cert=self._cert, verify=self._ca_cert,
                data=None if text is None else text.encode('utf-8'),
                headers=None if text is None else {
                    'Content-Type': 'text/plain; charset=utf-8'})
        # Not chained: urllib3's exceptions hold its connection objects,
        # which taskflow cannot store with a failed task (the worker would
        # hand the job back and run the flow again instead of reverting).
        # Their words are in the message.
        except requests.exceptions.SSLError as error:
            raise AgentTLSError(url, str(error)) from None
        except requests.exceptions.RequestException as error:
            raise AgentUnreachable(url, str(error)) from None
        if response.status_code >= 400:
            field, reason = errors.error_fields(response)
            raise AgentRejected(method, url, response.status_code, field,
                                reason)
        try:
            return response.json()
        except ValueError as error:
            raise AgentRejected(
                method, url, response.status_code, 'body',
                f'the answer is not JSON: {response.text[:200]!r}'
            ) from error

    # The agent's API -----------------------------------------------------

    def get_info(self):
        return self._request('GET', 'info')

    def wait_until_up(self, timeout):
        """Ask for ``/info`` until the agent answers; return the answer.

        Raises the last AgentUnreachable after ``timeout`` seconds. An
        answer refusing the request (AgentRejected) ends the wait at once:
        the agent is up, something else is wrong.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return self._request(
                    'GET', 'info', session=self._quick,
                    timeout=(min(self._connect_timeout(), max(left, 0.1)),
                             self._read_timeout()))
            except AgentUnreachable as error:
                if time.monotonic() + _POLL_INTERVAL >= deadline:
                    LOG.warning('Amphora agent at %s still unreachable '
                                'after %s s', self.base_url, timeout)
                    raise
                LOG.debug('Waiting for the amphora agent: %s', error.reason)
                time.sleep(_POLL_INTERVAL)

    def _connect_timeout(self):
        return (self.timeout[0] if isinstance(self.timeout, tuple)
                else self.timeout)

    def _read_timeout(self):
        return (self.timeout[1] if isinstance(self.timeout, tuple)
                else self.timeout)

    def plug_vip(self, vip, mac_address, vrrp_ip, subnet_cidr, gateway=None,
                 host_routes=(), mtu=None, additional_vips=(),
                 vip_on_interface=True):
        """Configure the VF of the VRRP base port; the interface after.

        ``host_routes`` are ``{"destination", "nexthop"}`` dicts,
        ``additional_vips`` ``{"ip_address", "subnet_cidr", "gateway"}``;
        ``vip_on_interface`` False leaves the VIPs to keepalived
        (ACTIVE_STANDBY).
        """
        body = {'mac_address': mac_address, 'vrrp_ip': vrrp_ip,
                'subnet_cidr': subnet_cidr, 'gateway': gateway,
                'host_routes': list(host_routes), 'mtu': mtu,
                'additional_vips': list(additional_vips),
                'vip_on_interface': vip_on_interface}
        return self._request('POST', f'plug/vip/{vip}', body)['interface']

    def plug_network(self, mac_address, fixed_ips, mtu=None):
        """Configure a member network VF; the interface after.

        ``fixed_ips`` are ``{"ip_address", "subnet_cidr", "gateway",
        "host_routes"}`` dicts.
        """
        body = {'mac_address': mac_address, 'fixed_ips': list(fixed_ips),
                'mtu': mtu}
        return self._request('POST', 'plug/network', body)['interface']

    def unplug_network(self, mac_address, missing_ok=False):
        """Flush the VF's addresses and take it down before a detach.

        Returns the interface, or None when ``missing_ok`` and the agent
        has no interface with that MAC (it is gone already).
        """
        try:
            return self._request('DELETE',
                                 f'plug/network/{mac_address}')['interface']
        except AgentRejected as error:
            if missing_ok and error.status == 404 and (
                    error.field == 'mac_address'):
                return None
            raise

    def get_interfaces(self):
        return self._request('GET', 'interfaces')['interfaces']

    def wait_for_interface(self, mac_address, timeout):
        """Wait until a VF with ``mac_address`` is in the amphora.

        Returns the interface; raises AgentUnreachable when the agent does
        not answer, InterfaceMissing when the VF has not appeared within
        ``timeout`` seconds.
        """
        mac_address = mac_address.lower()
        deadline = time.monotonic() + timeout
        while True:
            for interface in self.get_interfaces():
                if interface['mac_address'] == mac_address:
                    return interface
            if time.monotonic() + _POLL_INTERVAL >= deadline:
                raise InterfaceMissing(url=self.base_url,
                                       mac_address=mac_address,
                                       timeout=timeout)
            time.sleep(_POLL_INTERVAL)

    def set_security_group(self, body):
        """Put the whole firewall state ``body`` in force; what is applied."""
        return self._request('POST', 'security-group', body)

    def get_security_group(self):
        return self._request('GET', 'security-group')

    def get_counters(self):
        return self._request('GET', 'security-group/counters')

    # The load-balancing engine ------------------------------------------

    def upload_haproxy_config(self, amphora_id, loadbalancer_id,
                              config_text):
        """Store a load balancer's haproxy configuration in the amphora.

        The agent checks it with ``haproxy -c`` first: an invalid one
        raises AgentRejected (status 400, field ``config``) whose reason is
        followed by haproxy's own words, and the stored one stays. Nothing
        is started or reloaded; loadbalancer_action() does that.
        """
        return self._request(
            'PUT', f'loadbalancer/{amphora_id}/{loadbalancer_id}/haproxy',
            text=config_text)

    def loadbalancer_action(self, loadbalancer_id, action):
        """Start, reload or stop the load balancer's haproxy.

        ``start`` and ``reload`` both make the stored configuration serve
        (a running haproxy is reloaded without dropping connections).
        """
        return self._request('PUT', f'loadbalancer/{loadbalancer_id}/'
                             f'{action}')

    def delete_loadbalancer(self, loadbalancer_id):
        """Stop the load balancer's haproxy and remove its configuration.

        Deleting one the amphora does not have succeeds.
        """
        return self._request('DELETE', f'loadbalancer/{loadbalancer_id}')

    def get_loadbalancer_status(self, loadbalancer_id):
        """haproxy's view: frontends, backends and their servers.

        None when no haproxy runs for the load balancer in the amphora.
        """
        try:
            return self._request('GET',
                                 f'loadbalancer/{loadbalancer_id}/status')
        except AgentRejected as error:
            if error.status == 404 and error.field == 'loadbalancer_id':
                return None
            raise

    def upload_l4_config(self, amphora_id, loadbalancer_id, document):
        """Put the L4 engine's whole ``document`` in force (UDP, SCTP).

        The agent validates all of it before anything changes and applies
        it atomically; an invalid one raises AgentRejected (400) whose
        ``field`` is a JSON path into the document (e.g.
        ``listeners[1].pool.members[0].weight``), and the document in
        force stays. A document without listeners removes the L4 engine's
        state and leaves haproxy alone. Another load balancer's document
        held by the amphora raises AgentRejected (409).
        """
        return self._request(
            'PUT', f'loadbalancer/{amphora_id}/{loadbalancer_id}/l4',
            document)

    def get_l4_config(self, loadbalancer_id):
        """The L4 document in force with each member's ``health``.

        None when the amphora holds none for the load balancer: the agent
        answers 404, or 405 when it predates the L4 engine (the path is
        then its haproxy action endpoint), and such an agent holds none
        either.
        """
        try:
            return self._request('GET', f'loadbalancer/{loadbalancer_id}/l4')
        except AgentRejected as error:
            if error.status in (404, 405):
                return None
            raise

    def upload_keepalived_config(self, config_text):
        """Store the keepalived configuration.

        The agent checks it with ``keepalived -t`` in its data namespace
        first; an invalid one raises AgentRejected (400, ``config``).
        """
        return self._request('PUT', 'vrrp/upload', text=config_text)

    def vrrp_action(self, action):
        """``start``, ``reload`` or ``stop`` keepalived."""
        return self._request('PUT', f'vrrp/{action}')

    # TLS files of a load balancer (haproxy.cfg names their paths) -------

    def _tls_file(self, method, missing_ok, amphora_id, loadbalancer_id,
                  filename, text=None):
        """None for a file the agent does not have, if ``missing_ok``."""
        try:
            return self._request(method, f'loadbalancer/{amphora_id}/'
                                 f'{loadbalancer_id}/certificates/{filename}',
                                 text=text)
        except AgentRejected as error:
            if missing_ok and error.status == 404 and (
                    error.field == 'filename'):
                return None
            raise

    def upload_certificate_file(self, amphora_id, loadbalancer_id, filename,
                                pem_text):
        """Store ``filename``, a PEM bundle or a crt-list; {"md5sum": ..}.

        One the agent refuses raises AgentRejected (400; field ``filename``,
        ``private_key``, ``certificate``, ``intermediates[0]``, ``crt_list``).
        """
        text = pem_text.decode() if isinstance(pem_text, bytes) else pem_text
        return self._tls_file('PUT', False, amphora_id, loadbalancer_id,
                              filename, text=text)

    def certificate_file_md5(self, amphora_id, loadbalancer_id, filename):
        """The stored file's md5sum (hex), None when it has none."""
        answer = self._tls_file('GET', True, amphora_id, loadbalancer_id,
                                filename)
        return answer and answer['md5sum']

    def delete_certificate_file(self, amphora_id, loadbalancer_id, filename,
                                missing_ok=False):
        """Delete the file; None when ``missing_ok`` and it was not there."""
        return self._tls_file('DELETE', missing_ok, amphora_id,
                              loadbalancer_id, filename)

    # The agent's server certificate -------------------------------------

    def upload_certificate(self, pem_text):
        """Replace the agent's server certificate with ``pem_text``.

        ``pem_text`` is the certificate followed by its private key, the
        layout of the agent's ``agent_server_cert``. The agent checks it
        (one key, the certificate for it, valid now) before anything
        changes, stores it for its next start and presents it from its
        next connection on; connections already open finish on the old
        one. A refused one raises AgentRejected (400, ``field``
        ``certificate``, ``private_key`` or ``body``).
        """
        return self._request('PUT', 'certificate', text=pem_text)

    def served_certificate(self):
        """The agent's certificate now (cryptography.x509.Certificate).

        One connection, verified as this client's requests are; see the
        module's served_certificate().
        """
        return served_certificate(self.base_url, self._cert, self._ca_cert,
                                  server_name=self._server_name,
                                  timeout=self._connect_timeout())
