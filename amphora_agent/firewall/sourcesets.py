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
"""A listener's source sets, named after their content.

Re-creating a listener's interval set costs libnftables and the kernel
about 10 ms per 1000 elements, so an apply that re-creates every set takes
most of a second at 50k CIDRs even when only a member changed. A set whose
name is a digest of its content can be kept instead: the next generation's
listener chain looks it up as it is, and only a set whose content changed
is created (and its predecessor deleted once unused).

The digest covers the sorted canonical networks of one family, which decide
the intervals and so the elements; the listener's protocol and port stay in
the name so that drift reports and hand inspection still say whose set it
is.
"""

import dataclasses
import hashlib
import re

from amphora_agent.firewall import addresses

PREFIX = 's_'
DIGEST_HEX = 16
# s_<digest>_<protocol>_<port>_<family>: never a generation name (r<n>_).
NAME = re.compile(r'^s_[0-9a-f]{%d}_' % DIGEST_HEX)


@dataclasses.dataclass(frozen=True)
class SourceSet:
    """The sources of one family: its intervals and their digest."""

    family: int
    intervals: list
    digest: str

    @property
    def everything(self):
        return addresses.covers_everything(self.intervals, self.family)

    def name(self, suffix):
        return f'{PREFIX}{self.digest}_{suffix}_{self.family}'


def of_networks(networks):
    """The non-empty SourceSets of sorted network tuples, by family.

    Computed once per parsed listener (model.Listener.sources): the
    collapse sorts every network, the digest reads every canonical text.
    """
    result = {}
    for family in (4, 6):
        intervals = addresses.collapse(networks, family)
        if not intervals:
            continue
        digest = hashlib.blake2b(
            '\n'.join(network[3] for network in networks
                      if network[0] == family).encode(),
            digest_size=DIGEST_HEX // 2).hexdigest()
        result[family] = SourceSet(family, intervals, digest)
    return result


def is_content_named(name):
    return NAME.match(name) is not None
