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
"""Metrics of Octavia's PROMETHEUS listeners, served by the agent.

Octavia's haproxy template forwards a PROMETHEUS listener to
127.0.0.1:9102 in the data namespace, where upstream's amphora runs its
prometheus proxy; this driver's amphora has the agent serve it instead
(server), with haproxy's metrics renamed as upstream's proxy renames them
(haproxy_metrics) and the SR-IOV firewall's counters added
(firewall_metrics).
"""
