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
"""How a call to an amphora agent fails, in words an operator can act on.

The exceptions hold only text: taskflow stores a failed task's exception
with the flow, and urllib3's exceptions hold connection objects it cannot.
"""


class AgentError(Exception):
    """Talking to an amphora agent failed."""


class AgentUnreachable(AgentError):
    """The agent did not answer (network, TLS, agent down)."""

    def __init__(self, url, reason, hint=None):
        self.url = url
        self.reason = reason
        self.hint = hint or (
            'check that the amphora is running, that this controller has a '
            'route to its management address, that the management port '
            'lets the agent port in, and the agent\'s log in the amphora')
        super().__init__(f'amphora agent at {url} unreachable: {reason}; '
                         f'{self.hint}')


class AgentTLSError(AgentUnreachable):
    """The TLS handshake failed: a certificate problem on either side."""

    def __init__(self, url, reason):
        super().__init__(
            url, reason,
            hint='check that [haproxy_amphora] server_ca signed the '
                 'agent\'s server certificate and that it names the '
                 'management address, and that the agent\'s '
                 'agent_server_ca signed [haproxy_amphora] client_cert')


class AgentRejected(AgentError):
    """The agent answered with an error.

    ``status`` is the HTTP status, ``field`` the part of the request the
    agent refused (a JSON path such as ``host_routes[0].nexthop``,
    ``mac_address``, ``firewall``) and ``reason`` its words.
    """

    def __init__(self, method, url, status, field, reason):
        self.method = method
        self.url = url
        self.status = status
        self.field = field
        self.reason = reason
        super().__init__(f'amphora agent refused {method} {url} with '
                         f'{status}: {field}: {reason}')


class InterfaceMissing(AgentError):
    """A hot-plugged VF did not show up in the amphora in time."""

    def __init__(self, url, mac_address, timeout):
        self.url = url
        self.mac_address = mac_address
        super().__init__(
            f'amphora agent at {url} has no interface with MAC '
            f'{mac_address} after {timeout} s; check that Nova attached the '
            'port (server interface list), and the amphora\'s kernel log '
            'for the VF driver')


def error_fields(response):
    """``(field, reason)`` from an agent error answer (or a foreign one)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and 'field' in body and 'reason' in body:
        # The engine endpoints add the program's own output (haproxy -c):
        # the line at fault is named there.
        if body.get('details'):
            return body['field'], f"{body['reason']}: {body['details']}"
        return body['field'], body['reason']
    if isinstance(body, dict) and 'message' in body:
        return 'request', str(body['message'])
    text = response.text.strip()[:500]
    return 'request', text or response.reason or 'no reason given'
