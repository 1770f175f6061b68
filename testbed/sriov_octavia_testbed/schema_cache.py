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
"""Reuse freshly created SQLite schemas across testbed instances.

Creating Neutron's and Octavia's schemas means importing all their models,
seconds of CPU each; the result depends only on the installed versions. The
first instance built on a machine stores its empty databases here, later
ones start from a copy.
"""

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile

CACHE_ENV = 'SRIOV_TESTBED_CACHE'


def cache_dir():
    return os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser('~'), '.cache', 'sriov-octavia-testbed')


def cache_file(package, builder):
    """Where the schema module ``builder`` made for ``package`` is kept.

    The key covers the installed version and the builder's code, so a
    change to either builds afresh.
    """
    version = importlib.metadata.version(package)
    with open(importlib.util.find_spec(builder).origin, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return os.path.join(cache_dir(), f'{package}-{version}-{digest}.sqlite')


def restore(package, builder, path):
    """Copy the cached schema to ``path``; True if there was one."""
    cached = cache_file(package, builder)
    if not os.path.exists(cached):
        return False
    shutil.copyfile(cached, path)
    return True


def store(package, builder, path):
    """Keep ``path`` (a just created, still empty schema) for next time."""
    cached = cache_file(package, builder)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    # Instances may come up side by side: write aside, rename atomically.
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(cached),
                                   suffix='.partial')
    os.close(fd)
    shutil.copyfile(path, partial)
    os.replace(partial, cached)
