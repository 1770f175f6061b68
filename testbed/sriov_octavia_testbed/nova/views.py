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
"""Response documents, shaped like Nova's and Glance's at a microversion."""

import hashlib


def _link(base, *parts):
    return '/'.join([base.rstrip('/')] + [str(p) for p in parts])


def links(base, collection, item_id):
    return [{'rel': 'self', 'href': _link(base, collection, item_id)},
            {'rel': 'bookmark', 'href': _link(base, collection, item_id)}]


def flavor(flavor_record, base, version):
    body = {
        'id': flavor_record['id'], 'name': flavor_record['name'],
        'ram': flavor_record['ram'], 'vcpus': flavor_record['vcpus'],
        'disk': flavor_record['disk'],
        'OS-FLV-EXT-DATA:ephemeral': flavor_record['ephemeral'],
        'OS-FLV-DISABLED:disabled': False,
        'os-flavor-access:is_public': flavor_record['is_public'],
        'rxtx_factor': flavor_record['rxtx_factor'],
        # An empty string for no swap until 2.75, 0 afterwards.
        'swap': flavor_record['swap'] or (0 if version >= (2, 75) else ''),
        'links': links(base, 'flavors', flavor_record['id']),
    }
    if version >= (2, 55):
        body['description'] = flavor_record['description']
    if version >= (2, 61):
        body['extra_specs'] = dict(flavor_record['extra_specs'])
    return body


def flavor_summary(flavor_record, base, version):
    body = {'id': flavor_record['id'], 'name': flavor_record['name'],
            'links': links(base, 'flavors', flavor_record['id'])}
    if version >= (2, 55):
        body['description'] = flavor_record['description']
    return body


def aggregate(record, version):
    body = {
        'id': record['id'], 'name': record['name'],
        'availability_zone': record['metadata'].get('availability_zone'),
        'hosts': list(record['hosts']),
        'metadata': dict(record['metadata']),
        'created_at': record['created_at'],
        'updated_at': record['updated_at'],
        'deleted_at': None, 'deleted': False,
    }
    if version >= (2, 41):
        body['uuid'] = record['uuid']
    return body


def server_group(record, version):
    body = {'id': record['id'], 'name': record['name'],
            'members': list(record['members']),
            'project_id': record['project_id'],
            'user_id': record['user_id']}
    if version >= (2, 64):
        body['policy'] = record['policy']
        body['rules'] = dict(record['rules'])
    else:
        body['policies'] = [record['policy']]
        body['metadata'] = {}
    return body


def interface(record):
    return {'port_id': record['port_id'], 'net_id': record.get('net_id'),
            'mac_addr': record.get('mac_addr'),
            'port_state': record.get('port_state'),
            'fixed_ips': list(record.get('fixed_ips') or []),
            'tag': record.get('tag')}


def _addresses(server):
    addresses = {}
    for iface in server['interfaces']:
        if 'net_id' not in iface:
            continue
        for ip in iface['fixed_ips']:
            addresses.setdefault(iface['network_name'], []).append({
                'version': 6 if ':' in ip['ip_address'] else 4,
                'addr': ip['ip_address'],
                'OS-EXT-IPS:type': 'fixed',
                'OS-EXT-IPS-MAC:mac_addr': iface['mac_addr']})
    return addresses


def _host_id(server):
    # Nova's hostId: an opaque per-project hash of the host name.
    if not server['host']:
        return ''
    return hashlib.sha224(
        (server['project_id'] + server['host']).encode()).hexdigest()


def _server_flavor(flavor_record, base, version):
    if version < (2, 47):
        return {'id': flavor_record['id'],
                'links': [{'rel': 'bookmark',
                           'href': _link(base, 'flavors',
                                         flavor_record['id'])}]}
    return {'vcpus': flavor_record['vcpus'], 'ram': flavor_record['ram'],
            'disk': flavor_record['disk'],
            'ephemeral': flavor_record['ephemeral'],
            'swap': flavor_record['swap'],
            'original_name': flavor_record['name'],
            'extra_specs': dict(flavor_record['extra_specs'])}


def security_groups(record):
    """The server's groups by name, as Nova shows them."""
    groups = record.get('security_groups')
    if groups is None:
        return [{'name': 'default'}]
    return [{'name': group['name']} for group in groups]


def server(record, base, version):
    body = {
        'id': record['id'], 'name': record['name'],
        'status': record['status'],
        'tenant_id': record['project_id'], 'user_id': record['user_id'],
        'metadata': dict(record['metadata']),
        'hostId': _host_id(record),
        'image': {'id': record['image_id'],
                  'links': [{'rel': 'bookmark',
                             'href': _link(base, 'images',
                                           record['image_id'])}]},
        'flavor': _server_flavor(record['flavor'], base, version),
        'created': record['created'], 'updated': record['updated'],
        'addresses': _addresses(record),
        'accessIPv4': '', 'accessIPv6': '',
        'links': links(base, 'servers', record['id']),
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': record['availability_zone'],
        'config_drive': record['config_drive'],
        'key_name': record['key_name'],
        'OS-SRV-USG:launched_at': record['launched_at'],
        'OS-SRV-USG:terminated_at': None,
        'OS-EXT-SRV-ATTR:host': record['host'],
        'OS-EXT-SRV-ATTR:instance_name': 'instance-' + record['id'][:8],
        'OS-EXT-SRV-ATTR:hypervisor_hostname': record['host'],
        'OS-EXT-STS:task_state': record['task_state'],
        'OS-EXT-STS:vm_state': record['vm_state'],
        'OS-EXT-STS:power_state': record['power_state'],
        'os-extended-volumes:volumes_attached': [],
        'security_groups': security_groups(record),
    }
    if record['status'] in ('BUILD', 'ACTIVE'):
        body['progress'] = 100 if record['status'] == 'ACTIVE' else 0
    if record['fault']:
        body['fault'] = dict(record['fault'])
    if version >= (2, 3):
        body.update({
            'OS-EXT-SRV-ATTR:reservation_id': 'r-' + record['id'][:8],
            'OS-EXT-SRV-ATTR:launch_index': 0,
            'OS-EXT-SRV-ATTR:hostname': record['name'],
            'OS-EXT-SRV-ATTR:kernel_id': '',
            'OS-EXT-SRV-ATTR:ramdisk_id': '',
            'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
            'OS-EXT-SRV-ATTR:user_data': record['user_data']})
    if version >= (2, 9):
        body['locked'] = False
    if version >= (2, 16):
        body['host_status'] = 'UP' if record['host'] else ''
    if version >= (2, 19):
        body['description'] = record['description']
    if version >= (2, 26):
        body['tags'] = []
    if version >= (2, 63):
        body['trusted_image_certificates'] = None
    if version >= (2, 71):
        body['server_groups'] = ([record['group_id']]
                                 if record['group_id'] else [])
    if version >= (2, 73):
        body['locked_reason'] = None
    return body


def server_summary(record, base):
    return {'id': record['id'], 'name': record['name'],
            'links': links(base, 'servers', record['id'])}


def hypervisor(index, host, host_ip, version, servers, detail,
               with_servers):
    body = {'id': _hypervisor_id(index, host, version),
            'hypervisor_hostname': host, 'state': 'up',
            'status': 'enabled'}
    if detail:
        body.update({
            'host_ip': host_ip, 'hypervisor_type': 'fake',
            'hypervisor_version': 1000,
            'service': {'host': host, 'disabled_reason': None,
                        'id': _hypervisor_id(index, host, version)}})
        if version < (2, 88):
            running = len(servers)
            body.update({
                'vcpus': 64, 'vcpus_used': running, 'memory_mb': 262144,
                'memory_mb_used': 0, 'free_ram_mb': 262144,
                'local_gb': 1000, 'local_gb_used': 0, 'free_disk_gb': 1000,
                'disk_available_least': 1000, 'current_workload': 0,
                'running_vms': running, 'cpu_info': '{}'})
    if with_servers:
        body['servers'] = [{'uuid': s['id'], 'name': s['name']}
                           for s in servers]
    return body


def _hypervisor_id(index, host, version):
    # UUIDs from 2.53, integers before, like Nova.
    if version >= (2, 53):
        return host_uuid(host)
    return index + 1


def host_uuid(host):
    """A stable UUID per host name (compute node and service ids)."""
    digest = hashlib.sha1(('testbed-compute-node:' + host).encode())
    hexdigest = digest.hexdigest()
    return '-'.join([hexdigest[:8], hexdigest[8:12], hexdigest[12:16],
                     hexdigest[16:20], hexdigest[20:32]])


def availability_zones(host_zones, detail, updated_at):
    zones = {}
    for host, zone in host_zones.items():
        zones.setdefault(zone, []).append(host)
    body = []
    for zone in sorted(zones):
        hosts = None
        if detail:
            hosts = {host: {'nova-compute': {
                'available': True, 'active': True,
                'updated_at': updated_at}} for host in zones[zone]}
        body.append({'zoneName': zone, 'zoneState': {'available': True},
                     'hosts': hosts})
    return body


def image(record):
    body = dict(record)
    body.update({'self': f"/v2/images/{record['id']}",
                 'file': f"/v2/images/{record['id']}/file",
                 'schema': '/v2/schemas/image'})
    return body
