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
"""Taskflow flows the sriov-octavia worker runs, by name.

The ``sriov_octavia.flows`` entry points (setup.cfg) map the names the
provider driver posts (``"<object>.<operation>"``) to flow factories; each
takes the flavor's ``topology`` and ``sriov_vip``, which shape the flow
(``sriov_octavia.worker.jobboard.build_flow``).
"""
