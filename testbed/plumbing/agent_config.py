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
"""The configuration file of one emulated amphora's agent.

On a real amphora the controller puts an agent configuration on the config
drive; here the fabric writes the equivalent: the same option names, with
paths inside the testbed's state directory and the emulated VFs (veths)
declared as VFs.
"""

import configparser

AGENT_PORT = 9443


def write(path, *, server_ca, server_cert, data_namespace,
          firewall_state_file, bind_host, log_file, bind_port=AGENT_PORT):
    config = configparser.ConfigParser(interpolation=None)
    config['DEFAULT'] = {
        'debug': 'true',
        'log_file': log_file,
        'use_stderr': 'false',
    }
    config['amphora_agent'] = {
        'agent_server_ca': server_ca,
        'agent_server_cert': server_cert,
        'network_namespace': data_namespace,
        'firewall_state_file': firewall_state_file,
        'vf_link_kinds': 'veth',
    }
    config['haproxy_amphora'] = {
        'bind_host': bind_host,
        'bind_port': str(bind_port),
    }
    with open(path, 'w') as conf_file:
        config.write(conf_file)
    return path
