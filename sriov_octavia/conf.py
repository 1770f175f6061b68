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
"""Every option the controller side reads, registered in one place.

Importing this module registers on ``cfg.CONF`` this provider's own groups
and the Octavia groups it shares with Octavia's amphora provider
(``[controller_worker]``, ``[haproxy_amphora]``, ``[certificates]``,
``[task_flow]``, ``[house_keeping]``, ``[service_auth]``, ``[neutron]``,
``[nova]``, ``[glance]``, ...) as Octavia itself registers them, plus the
keystoneauth adapter options Octavia leaves out of ``[nova]`` and
``[glance]``. No other module registers options, and none does so lazily;
``register_opts`` does the same for a private ``ConfigOpts`` (tests).
``list_opts`` feeds oslo-config-generator with this provider's groups.
"""

from keystoneauth1 import loading as ks_loading
from octavia.certificates.common import local as octavia_local
from octavia.common import config as octavia_config
from oslo_config import cfg

CONF = cfg.CONF

SERVICE_AUTH = 'service_auth'
# octavia.conf sections holding the adapter options of each service.
SERVICES = ('neutron', 'nova', 'glance')

# Groups are added by the parts that read them: keep one list per group here.
_GROUPS = {}

# [sriov_octavia]: how long controller code waits for Neutron, Nova and
# Glance (their credentials and endpoints are Octavia's [service_auth],
# [neutron], [nova] and [glance], see sriov_octavia.clients), and how the
# provider driver checks flavor and availability zone metadata.
_GROUPS['sriov_octavia'] = [
    cfg.FloatOpt('api_timeout', default=30.0, min=1.0,
                 help='Seconds one request to Neutron, Nova or Glance (or '
                      'to Keystone for a token) may take before it fails; '
                      'it is the timeout of the keystoneauth session built '
                      'from [service_auth], in place of its timeout option. '
                      'The provider driver calls these services while '
                      'octavia-api answers a request, so a hung service '
                      'must not hold that request forever.'),
    cfg.BoolOpt('check_cloud_resources', default=True,
                help='When validating flavor and availability zone metadata, '
                     'check that the compute flavor, image tag, compute '
                     'zone and networks they name exist. A service that '
                     'cannot be reached is logged and skipped, so an outage '
                     'does not block load balancer creation.'),
]

# [sriov_worker]: what is this provider's own about its jobboard and worker.
# Where to reach the jobboard, the flow persistence and the taskflow engine
# are Octavia's own [task_flow] options (jobboard_backend_driver, _hosts,
# _port, _username, _password, jobboard_redis_backend_db,
# jobboard_redis_sentinel, jobboard_expiration_time, jobboard_save_logbook,
# persistence_connection, engine, max_workers), so a cloud whose Octavia
# already runs a jobboard configures the backend once.
_GROUPS['sriov_worker'] = [
    cfg.StrOpt('jobboard_name', default='sriov_octavia_jobboard',
               help='Name of this provider\'s jobboard: Redis key namespace, '
                    'ZooKeeper and etcd path. Workers and drivers sharing '
                    'jobs must use the same name, and it must differ from '
                    '[task_flow] jobboard_backend_namespace, the board of '
                    'Octavia\'s own amphora controller, whose workers would '
                    'otherwise claim these jobs.'),
    cfg.IntOpt('max_simultaneous_jobs', default=4, min=1,
               deprecated_name='max_workers',
               help='How many jobs one worker runs at the same time. (The '
                    'threads of the parallel engine within one job are '
                    '[task_flow] max_workers.)'),
    cfg.FloatOpt('poll_interval', default=0.5, min=0.01,
                 help='Seconds an idle worker waits before looking at the '
                      'jobboard again.'),
    cfg.StrOpt('status_socket_path',
               default='/var/run/octavia/status.sock',
               help='octavia-driver-agent status socket; must match '
                    '[driver_agent] status_socket_path.'),
    cfg.StrOpt('stats_socket_path',
               default='/var/run/octavia/stats.sock',
               help='octavia-driver-agent statistics socket; must match '
                    '[driver_agent] stats_socket_path.'),
    cfg.StrOpt('get_socket_path',
               default='/var/run/octavia/get.sock',
               help='octavia-driver-agent get socket; must match '
                    '[driver_agent] get_socket_path.'),
    cfg.IntOpt('health_interval', default=10, min=0,
               help='Seconds between two rounds asking every amphora '
                    'agent for haproxy\'s view (member, pool and listener '
                    'operating status, listener statistics) and reporting '
                    'it to Octavia, and between two checks that each '
                    'amphora answers ([health_manager] heartbeat_timeout '
                    'and failover_threshold decide when it is failed over). '
                    '0 turns health checks and automatic failover off.'),
    cfg.IntOpt('health_check_threads', default=16, min=1,
               help='How many amphora agents one worker asks at the same '
                    'time in a health round. A silent agent holds a thread '
                    'for up to health_interval seconds, so a few hung '
                    'amphorae do not delay the checks of the others.'),
    cfg.StrOpt('coordination_url', secret=True,
               help='tooz URL of the backend through which workers share '
                    'the health checks, each load balancer checked by one '
                    'of them (redis://, kazoo://, etcd3+http:// ...). '
                    'Unset: the jobboard\'s own backend from [task_flow].'),
    cfg.IntOpt('orphan_grace_period', default=3600, min=0,
               help='Seconds a server, server group, security group, VRRP '
                    'or member port of this provider must have existed, '
                    'and have been seen without its load balancer in '
                    'Octavia (deleted, or DELETED), before the worker\'s '
                    'housekeeping deletes it; it looks every '
                    '[house_keeping] cleanup_interval seconds. A load '
                    'balancer being created has ports and servers before '
                    'octavia-api commits its row: keep this well above the '
                    'time that takes, and above any clock difference '
                    'between this host and Nova and Neutron. (Not '
                    '[house_keeping] amphora_expiry_age: that is how long '
                    'Octavia keeps the database rows of deleted amphorae, '
                    'a week by default, while an orphan holds a VF.)'),
]


# [sriov_amphora]: how the controller reaches the amphora agents (port,
# name check, timeouts, retries); the certificates are Octavia's own
# [haproxy_amphora] client_cert and server_ca. Read by
# sriov_octavia.amphora.client; l4_flow_limit by
# sriov_octavia.engine.l4_config.
_GROUPS['sriov_amphora'] = [
    cfg.StrOpt('server_name_check', default='amphora_id',
               choices=[('amphora_id', 'The agent certificate must name the '
                                       'amphora id the controller issued it '
                                       'to (a DNS subjectAltName), as '
                                       'Octavia\'s amphora certificates do'),
                        ('none', 'Only check that server_ca signed the '
                                 'agent certificate')],
               help='What the agent\'s server certificate must name besides '
                    'being signed by [haproxy_amphora] server_ca.'),
    cfg.PortOpt('agent_port', default=9443,
                help='The port the amphora agents listen on '
                     '([haproxy_amphora] bind_port in the amphora).'),
    cfg.FloatOpt('connect_timeout', default=10.0, min=0.1,
                 help='Seconds to wait for a TCP and TLS connection to an '
                      'agent.'),
    cfg.FloatOpt('request_timeout', default=60.0, min=1.0,
                 help='Seconds to wait for an agent\'s answer once a request '
                      'is sent (applying a large firewall takes a while).'),
    cfg.IntOpt('request_retries', default=5, min=0,
               help='How often a request is retried after the connection '
                    'failed or timed out. Every agent operation is '
                    'idempotent, so retrying is safe.'),
    cfg.FloatOpt('retry_interval', default=2.0, min=0.0,
                 help='Seconds before the first retry; each further retry '
                      'waits twice as long, up to 30 seconds.'),
    cfg.IntOpt('boot_timeout', default=600, min=1,
               help='Seconds to wait for the agent of a newly booted '
                    'amphora to answer.'),
    cfg.IntOpt('interface_timeout', default=60, min=1,
               help='Seconds to wait for a hot-plugged VF to show up in '
                    'the amphora.'),
    cfg.IntOpt('l4_flow_limit', default=65536, min=1, max=4194304,
               help='How many UDP and SCTP flows one amphora tracks at '
                    'most, over all the UDP and SCTP listeners of its load '
                    'balancer. Each tracked flow costs about 320 bytes of '
                    'kernel memory (a conntrack entry with its NAT '
                    'binding), so the default bounds them to about 20 MiB; '
                    'a new flow beyond the limit is dropped and counted. '
                    'A listener\'s connection_limit bounds its own flows '
                    'within this one.'),
]


# Octavia's groups this provider reads, with Octavia's own option lists.
_OCTAVIA_GROUPS = {
    'api_settings': octavia_config.api_opts,
    'amphora_agent': octavia_config.amphora_agent_opts,
    'certificates': (octavia_config.certificate_opts
                     + octavia_local.certgen_opts
                     + octavia_local.certmgr_opts),
    'controller_worker': octavia_config.controller_worker_opts,
    'driver_agent': octavia_config.driver_agent_opts,
    'glance': octavia_config.glance_opts,
    'haproxy_amphora': octavia_config.haproxy_amphora_opts,
    'health_manager': octavia_config.health_manager_opts,
    'house_keeping': octavia_config.house_keeping_opts,
    'keepalived_vrrp': octavia_config.keepalived_vrrp_opts,
    'networking': octavia_config.networking_opts,
    'neutron': octavia_config.neutron_opts,
    'nova': octavia_config.nova_opts,
    'task_flow': octavia_config.task_flow_opts,
}


def _register_keystoneauth(conf):
    if conf is not CONF:
        # Octavia's config module registered these on CONF only.
        for group in (SERVICE_AUTH, 'neutron'):
            ks_loading.register_auth_conf_options(conf, group)
            ks_loading.register_session_conf_options(conf, group)
    for group in (SERVICE_AUTH,) + SERVICES:
        # Octavia registers the adapter options in [service_auth] and
        # [neutron], and in [nova] and [glance] only its own service_name
        # and region_name (the same meaning): add what is missing.
        conf.register_group(cfg.OptGroup(group))
        present = set(conf[group])
        conf.register_opts(
            [opt for opt in ks_loading.get_adapter_conf_options(
                include_deprecated=False) if opt.dest not in present],
            group=group)


def register_opts(conf=CONF):
    """Register every option the controller side reads on ``conf``."""
    for group, opts in _GROUPS.items():
        conf.register_opts(opts, group=group)
    if conf is not CONF:
        for group, opts in _OCTAVIA_GROUPS.items():
            conf.register_opts(opts, group=group)
    _register_keystoneauth(conf)


def list_opts():
    return sorted(_GROUPS.items())


register_opts(CONF)
