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
"""Runs octavia_db's lookups against a fresh Octavia database on SQLite.

Octavia's database engine is configured once per process, so the lookups
are exercised in a process of their own:
``python -m tests.functional.sriov_octavia.driver_db_probe DB_FILE``
prints a JSON report of what each lookup returned.
"""

import json
import sys

from octavia.common import config as octavia_config
from octavia.common import constants
from octavia.db import api as db_api
from octavia.db import repositories
from octavia_lib.api.drivers import exceptions as lib_exceptions
from oslo_config import cfg

from sriov_octavia import octavia_db
from sriov_octavia_testbed.services import octavia_db as testbed_octavia_db

LB = '11111111-1111-4111-8111-111111111111'
LISTENER = '22222222-2222-4222-8222-222222222222'
POOL = '33333333-3333-4333-8333-333333333333'
POLICY = '44444444-4444-4444-8444-444444444444'
FLAVOR = '55555555-5555-4555-8555-555555555555'
PROFILE = '66666666-6666-4666-8666-666666666666'
AZ_PROFILE = '77777777-7777-4777-8777-777777777777'
MISSING = '99999999-9999-4999-8999-999999999999'
PROJECT = 'a' * 32
ACTIVE = {'provisioning_status': constants.ACTIVE,
          'operating_status': constants.ONLINE, 'enabled': True,
          'project_id': PROJECT}


def fill(session):
    repos = repositories.Repositories()
    repos.flavor_profile.create(
        session, id=PROFILE, name='p', provider_name='amphora-sriov',
        flavor_data=json.dumps({'sriov_vip': True,
                                'allow_member_sriov': True}))
    repos.flavor.create(session, id=FLAVOR, name='f', enabled=True,
                        flavor_profile_id=PROFILE)
    repos.availability_zone_profile.create(
        session, id=AZ_PROFILE, name='azp', provider_name='amphora-sriov',
        availability_zone_data=json.dumps({'compute_zone': 'az-sriov'}))
    repos.availability_zone.create(
        session, name='az1', enabled=True,
        availability_zone_profile_id=AZ_PROFILE)
    repos.create_load_balancer_and_vip(
        session, dict(ACTIVE, id=LB, name='lb', provider='amphora-sriov',
                      flavor_id=FLAVOR, availability_zone='az1',
                      topology=constants.TOPOLOGY_SINGLE),
        {'ip_address': '203.0.113.9', 'port_id': MISSING,
         'subnet_id': MISSING, 'network_id': MISSING}, [])
    repos.listener.create(session, **dict(
        ACTIVE, id=LISTENER, load_balancer_id=LB, protocol='HTTP',
        protocol_port=80))
    repos.pool.create(session, **dict(
        ACTIVE, id=POOL, load_balancer_id=LB, protocol='HTTP',
        lb_algorithm='ROUND_ROBIN'))
    repos.l7policy.create(session, **dict(
        ACTIVE, id=POLICY, listener_id=LISTENER, action='REJECT',
        position=1))


def missing(lookup):
    try:
        lookup(MISSING)
    except lib_exceptions.DriverError as e:
        return e.user_fault_string
    return None


def main(db_file):
    url = 'sqlite:///' + db_file
    testbed_octavia_db.init_db(url)
    # Octavia's options, [database] included, set up as octavia-api does.
    octavia_config.init([])
    cfg.CONF.set_override('connection', url, group='database')
    cfg.CONF.set_override('pool_timeout', None, group='database')
    session = db_api.get_session()
    with session.begin():
        fill(session)
    flavor, zone = octavia_db.load_balancer_flavor_and_zone(LB)
    lb = octavia_db.provider_load_balancer(LB).to_dict(
        recurse=True, render_unsets=False)
    print(json.dumps({
        'pool': octavia_db.pool_load_balancer_id(POOL),
        'listener': list(
            octavia_db.listener_load_balancer_id_and_protocol(LISTENER)),
        'l7policy': octavia_db.l7policy_load_balancer_id(POLICY),
        'flavor': flavor,
        'zone': zone,
        'lb': lb,
        'missing': {
            'pool': missing(octavia_db.pool_load_balancer_id),
            'listener': missing(
                octavia_db.listener_load_balancer_id_and_protocol),
            'l7policy': missing(octavia_db.l7policy_load_balancer_id),
            'lb': missing(octavia_db.load_balancer_flavor_and_zone),
            'provider_lb': missing(octavia_db.provider_load_balancer),
        },
    }))


if __name__ == '__main__':
    main(sys.argv[1])
