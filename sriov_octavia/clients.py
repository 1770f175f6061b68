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
through ``connection()``, configured the way Octavia itself is, in
octavia.conf:

* ``[service_auth]``: the keystoneauth auth plugin and its credentials, and
  the session (TLS) options; its ``region_name`` and ``valid_interfaces``
  are the defaults of every service;
* ``[neutron]``, ``[nova]``, ``[glance]``: keystoneauth adapter options of
  each service (``endpoint_override``, ``region_name``,
  ``valid_interfaces``, ``service_type``, ...), read by keystoneauth the
  way openstacksdk reads them from oslo.config (``cloud_region.from_conf``).
  Octavia's own ``endpoint`` and ``endpoint_type`` of these sections are
  honoured when the keystoneauth ones are not set.

``sriov_octavia.conf`` registers all of these, as Octavia does plus the
keystoneauth adapter options Octavia leaves out of ``[nova]`` and
``[glance]``.

A connection is built once per process and reused: building one loads the
auth plugin and sets up a session, which is too slow to repeat for every API
request.
"""

import os
import threading

from keystoneauth1.identity import base as ks_identity
from keystoneauth1 import loading as ks_loading
from keystoneauth1.loading import adapter as ks_adapter
from openstack.config import cloud_region
from openstack import connection as os_connection
from openstack import exceptions as os_exceptions
from oslo_config import cfg
from oslo_log import log as logging

from sriov_octavia import conf as sriov_conf

CONF = sriov_conf.CONF
LOG = logging.getLogger(__name__)

_APP_NAME = 'sriov-octavia'
SERVICE_AUTH = sriov_conf.SERVICE_AUTH
# octavia.conf section (the project name openstacksdk's from_conf looks
# for) -> the service type it configures.
SERVICES = {'neutron': 'network', 'nova': 'compute', 'glance': 'image'}
# Octavia's own adapter-like options of those sections (deprecated in
# [neutron]), used when the keystoneauth option is not set.
_OCTAVIA_ENDPOINT = 'endpoint'
_OCTAVIA_ENDPOINT_TYPE = 'endpoint_type'

_lock = threading.Lock()
_connections = {}


def _frozen(value):
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value


def _snapshot(conf, group):
    values = conf[group]
    return tuple((name, _frozen(values[name])) for name in sorted(values))


def _settings(conf):
    """What a connection depends on, hashable (part of the cache key)."""
    return ((conf.sriov_octavia.api_timeout,)
            + tuple(_snapshot(conf, group)
                    for group in (SERVICE_AUTH,) + tuple(SERVICES))
            + (_api_base_uri(conf),))


def _api_base_uri(conf):
    try:
        return conf.api_settings.api_base_uri
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return None


def connection(conf=CONF):
    """Return this process's openstacksdk Connection, as octavia.conf says.

    :raises openstack.exceptions.ConfigException: ``[service_auth]`` names
        no auth plugin.
    :raises keystoneauth1.exceptions.ClientException: the auth plugin is
        unknown or lacks options, or an option value is invalid.
    """
    settings = _settings(conf)
    # The process id is part of the key: a connection inherited through
    # fork (the driver-agent forks its provider agents) would share pooled
    # sockets with the parent.
    key = (os.getpid(),) + settings
    with _lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _build(conf)
            _connections[key] = conn
            # Loading the auth plugin registered its options (username,
            # password, ...), which later keys include.
            _connections[(os.getpid(),) + _settings(conf)] = conn
    return conn


def _auth(conf):
    auth = ks_loading.load_auth_from_conf_options(conf, SERVICE_AUTH)
    if auth is None:
        raise os_exceptions.ConfigException(
            f'[{SERVICE_AUTH}] auth_type is not set: set it and its '
            f'credentials (for example "password" with auth_url, username, '
            f'password, project_name and the domains), or "none" for '
            f'services that run without Keystone')
    return auth


def _is_set(conf, section, name):
    if name not in conf[section]:
        return False
    location = conf.get_location(name, section)
    return bool(location and location.location != cfg.Locations.opt_default
                and conf[section][name])


def _service_options(conf, section, service_type):
    """The ``<service_type>_*`` CloudRegion settings of one section."""
    group = conf[section]
    options = {}
    # The same conversion openstacksdk's cloud_region.from_conf applies;
    # raises TypeError on contradicting options.
    ks_adapter.process_conf_options(group, options)
    if not options.get('endpoint_override'):
        options['endpoint_override'] = getattr(group, _OCTAVIA_ENDPOINT,
                                               None)
    if not options.get('interface') and _is_set(conf, section,
                                                _OCTAVIA_ENDPOINT_TYPE):
        # Octavia's publicURL, internalURL, adminURL. Its default
        # (publicURL in [nova] and [glance]) would hide [service_auth]'s.
        options['interface'] = getattr(
            group, _OCTAVIA_ENDPOINT_TYPE).replace('URL', '')
    prefix = service_type.replace('-', '_') + '_'
    return {prefix + name: value for name, value in options.items()
            if value is not None}


def _build(conf):
    auth = _auth(conf)
    session = ks_loading.load_session_from_conf_options(
        conf, SERVICE_AUTH, auth=auth,
        timeout=conf.sriov_octavia.api_timeout)
    defaults = conf[SERVICE_AUTH]
    config = {}
    if defaults.valid_interfaces:
        config['interface'] = defaults.valid_interfaces
    for section, service_type in SERVICES.items():
        try:
            config.update(_service_options(conf, section, service_type))
        except TypeError as e:
            raise os_exceptions.ConfigException(f'[{section}]: {e}')
    api_base_uri = _api_base_uri(conf)
    # Identity plugins (password, token, application credential, ...) get
    # a service catalog with their token; none and http_basic do not.
    if api_base_uri and not isinstance(auth,
                                       ks_identity.BaseIdentityPlugin):
        # No catalog to find Octavia's own API in (preflight reads
        # flavors through it): it is where octavia.conf says it is.
        config['load_balancer_endpoint_override'] = api_base_uri
    region = cloud_region.from_session(
        session, name=_APP_NAME, region_name=defaults.region_name,
        app_name=_APP_NAME, **config)
    LOG.debug('openstacksdk connection from [%s] (auth type %s), '
              'endpoints: %s', SERVICE_AUTH, conf[SERVICE_AUTH].auth_type,
              {st: region.get_endpoint(st) for st in SERVICES.values()})
    return os_connection.Connection(config=region)
