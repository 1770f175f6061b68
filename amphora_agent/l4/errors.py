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
"""What the L4 engine raises."""


class L4Error(Exception):
    """The kernel refused a transaction; what was in force stays."""


class Conflict(Exception):
    """Another load balancer's L4 document is in force on this amphora."""

    def __init__(self, held, requested):
        super().__init__(f'load balancer {held} holds this amphora\'s L4 '
                         f'engine; delete it before serving {requested}')
        self.held = held
        self.requested = requested


class NotStarted(RuntimeError):
    """start() has not been called, or stop() has."""
