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
"""What can go wrong with the engine, in words an operator can act on."""


class EngineError(Exception):
    """An engine operation failed; ``output`` is the program's own words."""

    def __init__(self, message, output=''):
        super().__init__(message)
        self.message = message
        self.output = output


class ConfigRejected(EngineError):
    """The program's own check refused a configuration."""


class UnknownLoadBalancer(EngineError):
    """No configuration is stored for this load balancer."""

    def __init__(self, loadbalancer_id):
        super().__init__(f'no haproxy configuration stored for load '
                         f'balancer {loadbalancer_id}')


class NotRunning(EngineError):
    """The program is not running, so there is nothing to ask it."""


class NoConfiguration(EngineError):
    """keepalived cannot start before a configuration was uploaded."""


class CommandFailed(EngineError):
    """The program refused to start or did not answer in time."""


class InvalidName(EngineError):
    """A name from the URL that cannot become part of a file name."""


class UnknownFile(EngineError):
    """No TLS file of that name is stored for the load balancer."""

    def __init__(self, loadbalancer_id, filename):
        super().__init__(f'no file {filename} stored for load balancer '
                         f'{loadbalancer_id}')
