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
"""Every option of the amphora agent, registered in one place.

The option names follow upstream Octavia's amphora agent where one exists, so
an amphora-agent.conf written for upstream keeps working here.
"""

from oslo_config import cfg
from oslo_log import log as logging

CONF = cfg.CONF

amphora_agent_opts = [
    cfg.StrOpt('amphora_id',
               help='The id the controller issued this amphora, and its '
                    'server certificate, to; reported by /info.'),
    cfg.StrOpt('agent_server_ca', default='/etc/octavia/certs/client_ca.pem',
               help='The CA that must have signed the client certificate '
                    'of every caller (the Octavia controller).'),
    cfg.StrOpt('agent_server_cert', default='/etc/octavia/certs/server.pem',
               help='The server certificate and its private key, both in '
                    'this one PEM file.'),
    cfg.IntOpt('agent_request_read_timeout', default=180, min=1,
               help='Seconds to wait for a request body to arrive.'),
    cfg.StrOpt('network_namespace', default='amphora-haproxy',
               help='Network namespace holding the VIP and member '
                    'interfaces that the firewall filters. Empty means the '
                    'namespace the agent itself runs in.'),
    cfg.StrOpt('firewall_state_file',
               default='/var/lib/octavia/sriov-firewall.json',
               help='Where the last applied firewall rule set is kept, so '
                    'that it is restored when the agent starts again (for '
                    'example after an amphora reboot).'),
    cfg.IntOpt('max_request_body_size', default=16 * 1024 * 1024, min=1024,
               help='Largest request body accepted, in bytes; larger '
                    'requests are refused with 413.'),
    cfg.ListOpt('vf_link_kinds', default=[],
                help='Link kinds (as "ip -d link" names them, e.g. veth or '
                     'macvlan) to treat as SR-IOV virtual functions. Real '
                     'VFs are recognised by their physical function in '
                     'sysfs; this is for emulated VFs in test beds.'),
    cfg.IntOpt('firewall_verify_interval', default=30, min=0,
               help='Seconds between two checks that the firewall\'s '
                    'nftables table still holds exactly what the agent '
                    'put there. A difference (a rule or set element '
                    'added, removed or changed by hand, the table '
                    'deleted) is logged as a warning, repaired by putting '
                    'the state in force again, and counted: the count and '
                    'the time of the last repair show in GET '
                    '/1.0/security-group/counters and GET /1.0/info. '
                    'A check reads the whole table back, about 0.5 s with '
                    '50,000 CIDRs. 0 turns the checks off.'),
]

haproxy_amphora_opts = [
    cfg.StrOpt('bind_host', default='::',
               help='The address the agent listens on.'),
    cfg.PortOpt('bind_port', default=9443,
                help='The port the agent listens on.'),
    cfg.StrOpt('base_path',
               help='Directory of the load-balancing engine: haproxy '
                    'configurations, pid files and stats sockets, the '
                    'keepalived configuration and the VRRP check script. '
                    'haproxy refuses socket paths longer than 97 bytes, so '
                    'keep it short. Unset: a directory under /run named '
                    'after the directory of [amphora_agent] '
                    'firewall_state_file, so that agents sharing one '
                    'file system (test beds) never share it.'),
    cfg.StrOpt('haproxy_cmd', default='/usr/sbin/haproxy',
               help='The haproxy executable.'),
    cfg.StrOpt('base_cert_dir', default='/var/lib/octavia/certs',
               help='Directory of the load balancers\' TLS files '
                    '(certificates with their keys, crt-lists, client CAs, '
                    'CRLs), one subdirectory per load balancer. The '
                    'controller renders these paths into haproxy.cfg from '
                    'its own [haproxy_amphora] base_cert_dir: both must '
                    'have the same value.'),
]

engine_opts = [
    cfg.StrOpt('keepalived_cmd', default='/usr/sbin/keepalived',
               help='The keepalived executable.'),
    cfg.IntOpt('engine_command_timeout', default=60, min=1,
               help='Seconds a configuration check or the start of haproxy '
                    'or keepalived may take before it counts as failed.'),
    cfg.IntOpt('engine_stop_timeout', default=30, min=1,
               help='Seconds to wait for haproxy or keepalived to exit '
                    'after SIGTERM before SIGKILL ends it.'),
    cfg.IntOpt('engine_verify_interval', default=30, min=0,
               help='Seconds between two checks that the haproxy and '
                    'keepalived configurations are the ones the controller '
                    'uploaded and that what was started still runs. A file '
                    'changed by hand is put back and its program reloaded, '
                    'a program that died is started again; each repair is '
                    'logged and counted in GET /1.0/info. 0 turns the '
                    'checks off.'),
    cfg.StrOpt('ping_wrapper_path',
               default='/var/lib/octavia/ping-wrapper.sh',
               help='Where the agent installs, at start, the script '
                    'haproxy runs for PING health monitors. Octavia\'s '
                    'haproxy template names /var/lib/octavia/ping-wrapper.sh'
                    ', so only a test bed with its own template has a '
                    'reason to change it. Empty: not installed.'),
    cfg.PortOpt('prometheus_proxy_port', default=9102,
                help='Port on 127.0.0.1 in the data namespace where the '
                     'agent serves the metrics of PROMETHEUS listeners '
                     '(haproxy\'s, renamed as upstream Octavia\'s '
                     'prometheus proxy does, and the SR-IOV firewall\'s). '
                     'Octavia\'s haproxy template forwards those listeners '
                     'to 127.0.0.1:9102. 0 turns it off.'),
    cfg.FloatOpt('l4_refresh_interval', default=2.0, min=0,
                 help='Seconds between two re-shares of the new flows of '
                      'UDP and SCTP pools with the LEAST_CONNECTIONS '
                      'algorithm: the active flows of each member are '
                      'counted in conntrack and the members with the '
                      'fewest per unit of weight get the next interval\'s '
                      'new flows first. Shorter follows load changes '
                      'sooner at the cost of reading conntrack more '
                      'often. 0 turns the re-sharing off (the weights '
                      'alone then share the flows).'),
]


def register_opts(conf=CONF):
    conf.register_opts(amphora_agent_opts, group='amphora_agent')
    conf.register_opts(engine_opts, group='amphora_agent')
    conf.register_opts(haproxy_amphora_opts, group='haproxy_amphora')


def list_opts():
    return [('amphora_agent', amphora_agent_opts + engine_opts),
            ('haproxy_amphora', haproxy_amphora_opts)]


def init(argv, conf=CONF):
    """Register the options, parse the command line and set up logging."""
    logging.register_options(conf)
    register_opts(conf)
    conf(argv, project='amphora-sriov-agent')
    logging.setup(conf, 'amphora-sriov-agent')
