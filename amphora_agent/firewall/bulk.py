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
"""Building large acyclic structures without the cyclic garbage collector.

Parsing a request and rendering its sets allocate one tuple or dict per
CIDR; every 700 allocations the collector walks the young objects and now
and then everything alive, the growing request included. None of these
objects form cycles, so pausing the collector for the duration loses
nothing and saves 25-60 % of the time (measured: build of 10k CIDRs 31 ms
-> 11 ms, parse of 50k ~25 % faster).
"""

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic collector (process-wide) for the ``with`` block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
