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
from sriov_octavia_testbed import schema_cache

BUILDER = 'sriov_octavia_testbed.services.octavia_db'


def test_a_stored_schema_is_restored(tmp_path, monkeypatch):
    monkeypatch.setenv(schema_cache.CACHE_ENV, str(tmp_path / 'cache'))
    target = tmp_path / 'new.sqlite'
    assert not schema_cache.restore('octavia', BUILDER, str(target))
    built = tmp_path / 'built.sqlite'
    built.write_bytes(b'schema')
    schema_cache.store('octavia', BUILDER, str(built))
    assert schema_cache.restore('octavia', BUILDER, str(target))
    assert target.read_bytes() == b'schema'
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [
        schema_cache.cache_file('octavia', BUILDER).rsplit('/', 1)[1]]


def test_the_key_follows_package_version_and_builder(monkeypatch):
    key = schema_cache.cache_file('octavia', BUILDER)
    assert schema_cache.cache_file(
        'octavia', 'sriov_octavia_testbed.services.neutron_db') != key
    monkeypatch.setattr(schema_cache.importlib.metadata, 'version',
                        lambda package: '0.0.1')
    assert schema_cache.cache_file('octavia', BUILDER) != key
