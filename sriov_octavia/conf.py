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
"""Every option of the controller side (driver, worker), in one place.

Each group has its own list; ``list_opts`` feeds oslo-config-generator.
"""

from oslo_config import cfg

CONF = cfg.CONF

# Groups are added by the parts that read them: keep one list per group here.
_GROUPS = {}


def register_opts(conf=CONF):
    for group, opts in _GROUPS.items():
        conf.register_opts(opts, group=group)


def list_opts():
    return sorted(_GROUPS.items())
