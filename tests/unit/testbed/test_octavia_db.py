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
import sqlalchemy

from octavia.db import base_models
from sriov_octavia_testbed.services import octavia_db


def _referred_lookup_tables():
    referred = set()
    for table in base_models.BASE.metadata.tables.values():
        for key in table.foreign_keys:
            if key.column.name == 'name':
                referred.add(key.column.table.name)
    # Availability zones are made by operators, not looked up.
    return referred - {'availability_zone'}


def test_every_lookup_table_is_filled():
    assert _referred_lookup_tables() == set(octavia_db.LOOKUP_VALUES)


def test_init_is_idempotent(tmp_path):
    url = f'sqlite:///{tmp_path}/o.sqlite'
    octavia_db.init_db(url)
    octavia_db.init_db(url)
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        statuses = conn.execute(sqlalchemy.text(
            'select name from provisioning_status')).scalars().all()
    engine.dispose()
    assert sorted(statuses) == sorted(set(statuses))
    assert {'ACTIVE', 'PENDING_CREATE', 'ERROR', 'ALLOCATED'} <= set(
        statuses)
