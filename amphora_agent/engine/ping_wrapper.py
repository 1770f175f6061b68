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
"""The script haproxy runs for PING health monitors.

Octavia's template renders ``external-check command
/var/lib/octavia/ping-wrapper.sh`` into every pool with a PING monitor;
upstream's amphora image ships that file, this driver's image does not,
so the agent installs it at start from its own package
(``amphora_agent/data/ping-wrapper.sh``). It is written only when missing
or different, so an agent start does not touch a script haproxy may be
running at that very moment.
"""

from importlib import resources
import os

from oslo_log import log as logging

from amphora_agent.engine import files

LOG = logging.getLogger(__name__)

DEFAULT_PATH = '/var/lib/octavia/ping-wrapper.sh'
_MODE = 0o755


def script():
    """The script's text, from the package."""
    return resources.files('amphora_agent').joinpath(
        'data', 'ping-wrapper.sh').read_text()


def install(path):
    """Make ``path`` the script, mode 0755; ``path``, or None on failure.

    A failure is logged, not raised: the agent serves everything else,
    and only pools with a PING monitor find their members down.
    """
    try:
        text = script()
        try:
            with open(path) as installed:
                current = installed.read()
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            current = mode = None
        if current == text and mode == _MODE:
            return path
        # haproxy's workers run it as an unprivileged user: the file, and
        # a directory made for it, are readable by all.
        files.write_atomically(path, text, mode=_MODE)
    except (OSError, UnicodeDecodeError) as error:
        LOG.error('Cannot install the PING health monitor script %s: %s; '
                  'members of pools with a PING monitor will be seen down',
                  path, error)
        return None
    LOG.info('PING health monitor script installed as %s', path)
    return path
