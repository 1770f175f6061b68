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
"""LEAST_CONNECTIONS by water-filling the next interval's new flows.

nftables cannot ask conntrack which member has the fewest flows when it
picks one, so the engine asks instead, every ``l4_refresh_interval``
seconds, and re-shares the slots of the ``numgen`` map: the flows expected
in the next interval are poured onto the members like water into vessels
whose floors are their active flows per unit of weight, so the emptiest
fill first and a member only gets new flows once it is as loaded as the
others. A member whose level stays above the water gets no slot.
"""

# Enough slots for a share to be finer than a few percent, few enough to
# keep the vmap small.
MIN_SLOTS = 64
MAX_SLOTS = 4096


def water_level(active, weights, expected):
    """The level L with sum(max(0, L * w - a)) == expected, and the shares.

    ``active``, ``weights``: {member: number}, weights > 0; ``expected``:
    the new flows to place (> 0). Returns {member: new flows}.
    """
    members = sorted(weights, key=lambda m: active.get(m, 0) / weights[m])
    poured_weight = 0
    poured_active = 0
    level = 0.0
    for index, member in enumerate(members):
        poured_weight += weights[member]
        poured_active += active.get(member, 0)
        level = (expected + poured_active) / poured_weight
        following = members[index + 1] if index + 1 < len(members) else None
        # The water stays below the next member's floor: it gets nothing.
        if (following is None or
                level <= active.get(following, 0) / weights[following]):
            break
    return {member: max(0.0, level * weights[member] - active.get(member, 0))
            for member in members}


def slots(active, weights, expected):
    """Integer slots of a ``numgen`` map, sharing ``expected`` new flows.

    Members of weight 0 get no slot; the remaining slots go by largest
    remainder so that the total is exact.
    """
    weights = {member: weight for member, weight in weights.items()
               if weight > 0}
    if not weights:
        return {}
    total = min(MAX_SLOTS, max(MIN_SLOTS, sum(weights.values())))
    shares = water_level(active, weights, max(expected, 1))
    poured = sum(shares.values()) or 1
    exact = {member: share * total / poured
             for member, share in shares.items()}
    result = {member: int(value) for member, value in exact.items()}
    left = total - sum(result.values())
    for member in sorted(exact, key=lambda m: (result[m] - exact[m],
                                               str(m)))[:left]:
        result[member] += 1
    return result
