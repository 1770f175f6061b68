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

import contextlib
import sqlite3
from unittest import mock

from oslo_config import cfg
import pytest
from taskflow import exceptions as tf_exc
from taskflow.persistence import models

from sriov_octavia import conf as sriov_conf
from sriov_octavia.worker import persistence


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    sriov_conf.register_opts(conf)
    conf([], project='octavia')
    conf.set_override('persistence_connection',
                      'sqlite:///%s' % (tmp_path / 'tf.sqlite'),
                      group='sriov_worker')
    return conf


def test_sqlite_schema_is_created_and_logbooks_persist(conf, tmp_path):
    book = models.LogBook('listener.create l-1')
    with persistence.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as connection:
            connection.save_logbook(book)
    # Another process would open the file anew.
    with persistence.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as connection:
            assert [b.name for b in connection.get_logbooks()] == [
                'listener.create l-1']
    with contextlib.closing(sqlite3.connect(tmp_path / 'tf.sqlite')) as db:
        assert db.execute('PRAGMA journal_mode').fetchone() == ('wal',)


def test_schema_upgrade_is_retried_when_another_process_races(conf):
    backend = mock.Mock()
    backend.get_connection.return_value.upgrade.side_effect = [
        tf_exc.StorageFailure('table logbooks already exists'), None]
    with mock.patch('time.sleep'):
        persistence._ensure_schema(backend, 'sqlite:///race-test')
    assert backend.get_connection.return_value.upgrade.call_count == 2
