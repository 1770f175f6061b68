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
"""Create Octavia's schema on SQLite and fill its lookup tables.

``octavia-db-manage upgrade`` fails on SQLite (it alters constraints), but
Octavia's models describe the head schema. The lookup tables that the
migrations fill (statuses, protocols, algorithms, ...) are filled here from
the constants Octavia validates against, or inserts fail on foreign keys.
Run as ``python -m sriov_octavia_testbed.services.octavia_db``.
"""


from octavia.common import constants
from octavia.db import base_models
from octavia.db import models  # noqa: F401 (registers every table)
import sqlalchemy

from sriov_octavia_testbed.services import base

# Lookup table -> the values Octavia accepts for the columns referring to it.
LOOKUP_VALUES = {
    'provisioning_status': constants.SUPPORTED_PROVISIONING_STATUSES,
    'operating_status': constants.SUPPORTED_OPERATING_STATUSES,
    'protocol': constants.SUPPORTED_PROTOCOLS,
    'algorithm': constants.SUPPORTED_LB_ALGORITHMS,
    'amphora_roles': constants.SUPPORTED_AMPHORA_ROLES,
    'lb_topology': constants.SUPPORTED_LB_TOPOLOGIES,
    'session_persistence_type': constants.SUPPORTED_SP_TYPES,
    'health_monitor_type': constants.SUPPORTED_HEALTH_MONITOR_TYPES,
    'vrrp_auth_method': constants.SUPPORTED_VRRP_AUTH,
    'l7rule_type': constants.SUPPORTED_L7RULE_TYPES,
    'l7rule_compare_type': constants.SUPPORTED_L7RULE_COMPARE_TYPES,
    'l7policy_action': constants.SUPPORTED_L7POLICY_ACTIONS,
    'client_authentication_mode': constants.SUPPORTED_CLIENT_AUTH_MODES,
}


def init_db(connection):
    engine = sqlalchemy.create_engine(connection)
    metadata = base_models.BASE.metadata
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name, values in LOOKUP_VALUES.items():
                table = metadata.tables[name]
                present = set(conn.execute(
                    sqlalchemy.select(table.c.name)).scalars())
                for value in values:
                    if value not in present:
                        conn.execute(table.insert().values(name=value))
    finally:
        engine.dispose()


if __name__ == '__main__':
    base.schema_main(init_db, __doc__)
