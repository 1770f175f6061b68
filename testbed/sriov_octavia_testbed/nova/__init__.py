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
"""A compute emulator standing in for Nova (and a minimal Glance).

It speaks the part of the Compute API v2.1 and Image API v2 that
openstacksdk and the ``openstack`` CLI use, places servers by aggregate
metadata, availability zone, server group policy and free SR-IOV virtual
functions, binds ports in the real Neutron the way Nova does, and turns
servers into network namespaces through ``sriov_octavia_testbed.plumbing``.
"""
