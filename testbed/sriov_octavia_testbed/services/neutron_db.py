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
"""Create Neutron's schema on SQLite and record the emulated agents.

Neutron's alembic migrations do not run on SQLite, but its models describe
the head schema completely. The schema is created by running this module
(``python -m sriov_octavia_testbed.services.neutron_db``), so that
Neutron's many modules stay out of the caller's process; recording the
agents needs SQLAlchemy only.
"""

import datetime
import importlib
import json

import sqlalchemy

from sriov_octavia_testbed.services import base
from sriov_octavia_testbed.services import neutron


def create_schema(engine):
    # Imported here: importing the module for record_agents stays cheap.
    importlib.import_module('neutron.db.migration.models.head')
    model_base = importlib.import_module('neutron_lib.db.model_base')
    model_base.BASEV2.metadata.create_all(engine)


def record_agents(engine, inv):
    """Insert the agents, or refresh their heartbeat and configuration."""
    agents = sqlalchemy.Table('agents', sqlalchemy.MetaData(),
                              autoload_with=engine)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with engine.begin() as connection:
        for record in neutron.agent_records(inv):
            values = {'configurations': json.dumps(record['configurations']),
                      'heartbeat_timestamp': now}
            updated = connection.execute(
                agents.update().where(agents.c.id == record['id'])
                .values(**values))
            if updated.rowcount == 0:
                connection.execute(agents.insert().values(
                    id=record['id'], agent_type=record['agent_type'],
                    binary=record['binary'], topic='N/A',
                    host=record['host'], admin_state_up=True,
                    created_at=now, started_at=now, load=0,
                    resources_synced=True, **values))


def init_db(connection):
    engine = sqlalchemy.create_engine(connection)
    try:
        create_schema(engine)
    finally:
        engine.dispose()


def refresh_agents(connection, inv):
    engine = sqlalchemy.create_engine(connection)
    try:
        record_agents(engine, inv)
    finally:
        engine.dispose()


if __name__ == '__main__':
    base.schema_main(init_db, __doc__)
