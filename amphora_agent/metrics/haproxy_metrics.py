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
"""haproxy's own metrics, in the words upstream's amphorae use.

Octavia's template has haproxy serve its Prometheus exporter on
127.0.0.1:9101 in the data namespace. Upstream's prometheus proxy reads
it and renames what it keeps to Octavia's terms (``haproxy_frontend_`` ->
``octavia_listener_``, ``proxy=`` -> ``listener=``, ...), dropping the
rest. Its table of names (``METRIC_MAP`` of octavia.cmd.prometheus_proxy,
imported as a library: the module has no side effects until its main()
runs) is used here as it is, so that dashboards built for upstream's
amphorae work on these; so are its two host gauges,
``octavia_loadbalancer_cpu`` and ``octavia_loadbalancer_memory``.
"""

import os
import urllib.request

from octavia.cmd import prometheus_proxy
import psutil

from amphora_agent.metrics import text_format

EXPORTER_URL = prometheus_proxy.METRICS_URL
# The internal frontend and backend that carry the scrape itself: counting
# the scrape in the metrics it returns would only be noise.
_INTERNAL = 'prometheus-exporter'
_HELP = '# HELP '


def rename(lines):
    """The lines of haproxy's exporter that upstream keeps, renamed.

    A line is kept when it holds one of the table's keys (the first that
    matches, in the table's order): a HELP line may get the table's own
    text, a sample its labels renamed, and the key becomes the new name.
    """
    for line in lines:
        if _INTERNAL in line:
            continue
        key = next((key for key in prometheus_proxy.METRIC_MAP
                    if key in line), None)
        if key is None:
            continue
        # By position: one entry of the table has a fourth, unused item.
        entry = prometheus_proxy.METRIC_MAP[key]
        name, help_line, labels = entry[0], entry[1], entry[2]
        if help_line and line.startswith(_HELP):
            yield help_line
            continue
        if labels and not line.startswith('#'):
            for old, new in labels.items():
                line = line.replace(old, new)
        yield line.replace(key, name)


def host_families():
    """The amphora's load and memory use, as upstream's proxy adds them."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1) * 100
    return [
        text_format.Family(
            'octavia_loadbalancer_cpu', text_format.GAUGE,
            'Load balancer CPU utilization (percentage).',
            [({}, round(load, 1))]),
        text_format.Family(
            'octavia_loadbalancer_memory', text_format.GAUGE,
            'Load balancer memory utilization (percentage).',
            [({}, round(psutil.virtual_memory().percent, 1))]),
    ]


# Proxies from the environment must not apply to a connection to
# 127.0.0.1 in the data namespace.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url=EXPORTER_URL, timeout=4.0):
    """haproxy's exporter text, as lines ending in a newline.

    Raises OSError (urllib's errors included) or ValueError when it cannot
    be read. ``timeout`` stays below the 5 s the template gives the whole
    scrape.
    """
    with _OPENER.open(url, timeout=timeout) as answer:
        if answer.status != 200:
            raise ValueError(f'{url} answered {answer.status}')
        return answer.read().decode('utf-8').splitlines(keepends=True)
