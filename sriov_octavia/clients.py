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
"""The one openstacksdk connection factory of the controller code.

The driver, the worker and the flows all reach Neutron, Nova and Glance
through ``connection()``, configured by ``[sriov_octavia] cloud`` and
``clouds_yaml``. A connection is built once per process and reused: building
one parses clouds.yaml and sets up an authenticated session, which is too
slow to repeat for every API request.
"""

import os
import threading

from openstack import config as os_config
from openstack import connection as os_connection
from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia import conf as sriov_conf

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

_APP_NAME = 'sriov-octavia'
_lock = threading.Lock()
_connections = {}


def _settings(conf):
    group = conf.sriov_octavia
    return (group.cloud, group.clouds_yaml or None, group.api_timeout)


def connection(conf=CONF):
    """Return this process's openstacksdk Connection for the configured cloud.

    :raises openstack.exceptions.ConfigException: the cloud is not defined
        in the clouds.yaml that was searched.
    """
    sriov_conf.register_opts(conf)
    # The process id is part of the key: a connection inherited through
    # fork (the driver-agent forks its provider agents) would share pooled
    # sockets with the parent.
    key = (os.getpid(),) + _settings(conf)
    with _lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _build(*key[1:])
            _connections[key] = conn
    return conn


def _build(cloud, clouds_yaml, api_timeout):
    loader = os_config.OpenStackConfig(
        config_files=[clouds_yaml] if clouds_yaml else None,
        app_name=_APP_NAME)
    region = loader.get_one(cloud=cloud, api_timeout=api_timeout)
    LOG.debug('openstacksdk connection for cloud %s from %s', cloud,
              clouds_yaml or 'the default clouds.yaml locations')
    return os_connection.Connection(config=region)
