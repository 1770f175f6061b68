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
"""The reserved-ports list, on a file standing in for the sysctl.

The real sysctl is exercised by every testbed the functional tests start
(tests/functional/testbed/test_fixture.py checks it).
"""

import pytest

from sriov_octavia_testbed import ports


@pytest.fixture
def sysctl(tmp_path):
    path = tmp_path / 'ip_local_reserved_ports'
    path.write_text('8000-8002,9000\n')
    return path


def test_parse_and_render_round_trip():
    assert ports.parse('8000-8002,9000\n') == {8000, 8001, 8002, 9000}
    assert ports.parse('') == set()
    assert ports.render({9000, 8002, 8000, 8001}) == '8000-8002,9000'
    assert ports.render(set()) == ''


def test_reserve_adds_and_release_takes_out_only_what_was_added(sysctl):
    added = ports.reserve([9000, 9001, 19696], path=str(sysctl))

    assert added == {9001, 19696}
    assert sysctl.read_text() == '8000-8002,9000-9001,19696\n'
    ports.release(added, path=str(sysctl))
    # 9000 was somebody else's: it stays.
    assert sysctl.read_text() == '8000-8002,9000\n'


def test_reserved_block(sysctl):
    with ports.reserved([59380], path=str(sysctl)):
        assert 59380 in ports.parse(sysctl.read_text())
    assert 59380 not in ports.parse(sysctl.read_text())


def test_no_right_to_change_it_is_a_warning_not_an_error(tmp_path):
    missing = str(tmp_path / 'no-such-sysctl')

    assert ports.reserve([19696], path=missing) == set()
    ports.release({19696}, path=missing)
