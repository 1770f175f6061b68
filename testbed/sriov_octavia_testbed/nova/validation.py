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
"""A create request checked as nova-api checks it, before any scheduling.

What nova-api refuses is refused here, with its words: user data that is
not base64 or too long, an unknown key pair or security group, a port in
use, a flavor, image, zone, host or server group that does not exist.
"""

import base64
import binascii

from sriov_octavia_testbed.nova import errors
from sriov_octavia_testbed.nova import neutron as neutron_ports
from sriov_octavia_testbed.nova import scheduler

# nova-api's limit on user data, base64 encoded.
MAX_USER_DATA = 65535


def resource_id(ref):
    """Nova accepts ids and full URLs for flavorRef/imageRef."""
    return str(ref).rstrip('/').rsplit('/', 1)[-1]


def create_request(neutron, body, project_id):
    """``(server, hints, checked)`` of a create body, as nova-api has them.

    ``checked`` holds what nova-api resolves before it looks at its
    database: the requested networks, user data, config drive and
    security groups.
    """
    req = body.get('server')
    if not isinstance(req, dict) or not req.get('name'):
        raise errors.BadRequest("Invalid input: 'name' is a required "
                                "property")
    hints = (body.get('OS-SCH-HNT:scheduler_hints')
             or body.get('os:scheduler_hints') or {})
    checked = {
        'requested_networks': _requested_networks(neutron,
                                                  req.get('networks')),
        'user_data': _user_data(req.get('user_data')),
        'config_drive': _config_drive(req.get('config_drive')),
        'security_groups': _security_groups(
            neutron, req.get('security_groups'), project_id),
    }
    if req.get('key_name') is not None:
        # No key pair exists here, so none can be named; nova-api
        # answers this for a name it does not know.
        raise errors.BadRequest('Invalid key_name provided.')
    return req, hints, checked


def references(data, req, hints, zones):
    """``(flavor_id, image_id, zone, host, group_id)`` the request names.

    ``zones`` maps every host to its availability zone.
    """
    flavor_id = resource_id(req.get('flavorRef', ''))
    if flavor_id not in data['flavors']:
        raise errors.BadRequest(f'Flavor {flavor_id} could not be found.')
    image_id = resource_id(req.get('imageRef', ''))
    if image_id not in data['images']:
        raise errors.BadRequest('Can not find requested image')
    zone, host = scheduler.parse_availability_zone(
        req.get('availability_zone'))
    if zone and zone not in zones.values():
        raise errors.BadRequest(
            'The requested availability zone is not available')
    if host and host not in zones:
        raise errors.BadRequest(f'Compute host {host} could not be found.')
    group_id = hints.get('group')
    if group_id and group_id not in data['server_groups']:
        raise errors.BadRequest(
            f'Instance group {group_id} could not be found.')
    return flavor_id, image_id, zone, host, group_id


def _user_data(user_data):
    """nova-api's checks: base64, at most MAX_USER_DATA bytes."""
    if user_data is None:
        return None
    if not isinstance(user_data, str):
        raise errors.BadRequest("Invalid input for field/attribute "
                                "user_data.")
    if len(user_data) > MAX_USER_DATA:
        raise errors.BadRequest(
            f'User data too large. User data must be no larger than '
            f'{MAX_USER_DATA} bytes once base64 encoded. Your data is '
            f'{len(user_data)} bytes')
    try:
        base64.b64decode(user_data, validate=True)
    except binascii.Error:
        raise errors.BadRequest('User data needs to be valid base 64.')
    return user_data


def _config_drive(value):
    """As nova-api: a boolean or its string, shown as 'True' or ''."""
    if value in (None, '', False, 'False', 'false'):
        return ''
    if value in (True, 'True', 'true'):
        return 'True'
    raise errors.BadRequest("Invalid input for field/attribute "
                            f"config_drive. Value: {value}.")


def _security_groups(neutron, requested, project_id):
    """Resolve ``[{"name": name or id}]`` as nova-api does in Neutron.

    Returns ``[{"id", "name"}]``; None when the request named none
    (Neutron then gives Nova's ports the project's default group).
    """
    if requested is None:
        return None
    if not isinstance(requested, list) or not all(
            isinstance(entry, dict) and entry.get('name')
            for entry in requested):
        raise errors.BadRequest("Invalid input for field/attribute "
                                "security_groups.")
    resolved = []
    for entry in requested:
        group = neutron.find_security_group(entry['name'], project_id)
        if group is None:
            raise errors.BadRequest(
                f"Security group {entry['name']} not found for project "
                f"{project_id}.")
        resolved.append({'id': group.id, 'name': group.name})
    return resolved


def _requested_networks(neutron, networks):
    """Validate ``networks`` like nova-api does, before any scheduling."""
    if networks in (None, 'none'):
        return []
    if not isinstance(networks, list):
        raise errors.BadRequest(
            'Automatic network allocation is not available here: pass '
            'a list of networks or ports')
    requested = []
    for entry in networks:
        if entry.get('port'):
            requested.append(_requested_port(neutron, entry['port']))
        elif entry.get('uuid'):
            existing_network(neutron, entry['uuid'], errors.BadRequest)
            requested.append({'network_id': entry['uuid'],
                              'fixed_ip': entry.get('fixed_ip'),
                              'vnic_type': 'normal',
                              'physical_network': None})
        else:
            raise errors.BadRequest(
                'Bad networks format: each entry needs a port or uuid')
    return requested


def _requested_port(neutron, port_id):
    port = free_port(neutron, port_id, errors.BadRequest)
    return {'port_id': port_id, 'network_id': port.network_id,
            'vnic_type': port.binding_vnic_type or 'normal',
            'physical_network': neutron_ports.physical_network(neutron,
                                                               port)}


def free_port(neutron, port_id, missing):
    """The port, if it exists (else ``missing``) and no server uses it."""
    try:
        port = neutron.get_port(port_id)
    except neutron_ports.PortNotFound as e:
        raise missing(str(e))
    if port.device_id:
        raise errors.Conflict(f'Port {port_id} is still in use.')
    return port


def existing_network(neutron, network_id, missing):
    """Check the network exists; ``missing`` is the error if not."""
    try:
        neutron.get_network(network_id)
    except neutron_ports.NetworkNotFound as e:
        raise missing(str(e))
