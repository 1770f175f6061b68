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
"""Every option of the controller side (driver, worker), in one place.

Each group has its own list; ``list_opts`` feeds oslo-config-generator.
"""

from oslo_config import cfg

CONF = cfg.CONF

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

# [sriov_worker]: the jobboard the driver posts to, the flow persistence and
# the driver-agent sockets the worker reports status through.
_GROUPS['sriov_worker'] = [
    cfg.StrOpt('jobboard_backend_driver', default='redis_taskflow_driver',
               choices=[('redis_taskflow_driver', 'Redis (default)'),
                        ('zookeeper_taskflow_driver',
                         'ZooKeeper (needs the kazoo package)'),
                        ('etcd_taskflow_driver',
                         'etcd v3 (needs the etcd3gw package)')],
               help='Which taskflow jobboard carries the jobs from the '
                    'provider driver to the workers.'),
    cfg.ListOpt('jobboard_backend_hosts', default=['127.0.0.1'],
                help='Jobboard hosts. With Redis Sentinel these are the '
                     'sentinels; otherwise only the first one is used for '
                     'Redis and etcd, all of them for ZooKeeper.'),
    cfg.PortOpt('jobboard_backend_port', default=6379,
                help='Port of the jobboard hosts (Redis or its sentinels, '
                     'ZooKeeper, etcd).'),
    cfg.StrOpt('jobboard_backend_username',
               help='User name for the jobboard (Redis ACL).'),
    cfg.StrOpt('jobboard_backend_password', secret=True,
               help='Password for the jobboard (Redis).'),
    cfg.IntOpt('jobboard_redis_db', default=0, min=0,
               help='Redis database number holding the jobboard.'),
    cfg.StrOpt('jobboard_redis_sentinel',
               help='Name of the Redis Sentinel master; set it to reach '
                    'Redis through the sentinels in jobboard_backend_hosts.'),
    cfg.StrOpt('jobboard_name', default='sriov_octavia_jobboard',
               help='Name of the jobboard: Redis key namespace, ZooKeeper '
                    'and etcd path. Workers and drivers sharing jobs must '
                    'use the same name.'),
    cfg.IntOpt('jobboard_expiration_time', default=30, min=5,
               help='Seconds a claim on a job lives without being renewed. '
                    'A worker renews the claims of the jobs it runs; when a '
                    'worker dies, its jobs become claimable by the other '
                    'workers after this time and resume from the persisted '
                    'flow state.'),
    cfg.StrOpt('persistence_connection',
               default='sqlite:////var/lib/octavia/'
                       'sriov_octavia_taskflow.sqlite',
               secret=True,
               help='SQLAlchemy URL of the flow persistence database '
                    '(taskflow logbooks): sqlite for a single host, MySQL '
                    'or PostgreSQL when workers run on several hosts.'),
    cfg.BoolOpt('save_logbook', default=False,
                help='Keep the persisted flow state of finished jobs '
                     '(for debugging); by default it is deleted when the '
                     'job is consumed.'),
    cfg.IntOpt('max_workers', default=4, min=1,
               help='How many jobs one worker runs at the same time.'),
    cfg.StrOpt('engine', default='parallel',
               choices=[('serial', 'Run the tasks of a flow one by one'),
                        ('parallel', 'Run independent tasks of a flow '
                                     'concurrently')],
               help='Taskflow engine that runs each flow.'),
    cfg.IntOpt('engine_max_workers', default=4, min=1,
               help='Threads of the parallel engine for one flow.'),
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
                    'it to Octavia. 0 turns the reports off.'),
]


# [sriov_amphora]: how the controller reaches the amphora agents (port,
# name check, timeouts, retries); the certificates are Octavia's own
# [haproxy_amphora] client_cert and server_ca. Read by
# sriov_octavia.amphora.client.
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
]


def register_opts(conf=CONF):
    for group, opts in _GROUPS.items():
        conf.register_opts(opts, group=group)


def list_opts():
    return sorted(_GROUPS.items())
