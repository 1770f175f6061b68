#!/usr/bin/env bash
# sriov-octavia main job: a real SR-IOV load balancer on the local testbed.
#
# Brings the testbed up (the real Neutron, octavia-api and octavia-driver-agent
# with this provider and its worker, redis, the compute emulator whose
# amphorae are network namespaces running the real amphora agent), then does
# what an operator and a user do, with the real `openstack` CLI: an SR-IOV
# Octavia flavor, a load balancer, a listener limited to some CIDRs. It shows
# the direct VRRP port Neutron bound to a VF, and the firewall the amphora
# agent keeps on that VF.
#
# The testbed and the load balancer stay up to explore (the script prints how
# to reach them); with --down everything is taken down at the end.
# Needs root and `bash tools/install.sh`.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.venv/bin"
state="${SRIOV_TESTBED_STATE:-$top/.state/testbed}"
down_after=false
[ "${1:-}" = "--down" ] && down_after=true

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

testbed() { "$bin/sriov-octavia-testbed" --state-dir "$state" "$@"; }
if $down_after; then
    trap 'step "Taking the testbed down"; testbed down || true' EXIT
fi

step "The testbed (state, logs and clouds.yaml in $state)"
testbed up
export OS_CLIENT_CONFIG_FILE="$state/clouds.yaml" OS_CLOUD=sriov-testbed
export PATH="$bin:$PATH"

step "Operator: an Octavia flavor for SR-IOV VIPs"
compute_flavor=$(openstack flavor show amphora-sriov-flavor -f value -c id)
if ! openstack loadbalancer flavorprofile show demo-sriov-profile >/dev/null 2>&1; then
    run openstack loadbalancer flavorprofile create --name demo-sriov-profile \
        --provider amphora-sriov \
        --flavor-data "{\"compute_flavor\": \"$compute_flavor\", \"sriov_vip\": true}"
fi
if ! openstack loadbalancer flavor show demo-sriov >/dev/null 2>&1; then
    run openstack loadbalancer flavor create --name demo-sriov \
        --flavorprofile demo-sriov-profile --enable
fi

step "User: a load balancer with an SR-IOV VIP"
if ! openstack loadbalancer show demo-lb >/dev/null 2>&1; then
    run openstack loadbalancer create --name demo-lb --flavor demo-sriov \
        --vip-subnet-id vip-subnet --wait
fi
run openstack loadbalancer show demo-lb -c id -c provider -c vip_address \
    -c vip_vnic_type -c provisioning_status -c operating_status
lb_id=$(openstack loadbalancer show demo-lb -f value -c id)

step "User: a listener open to 198.51.100.0/24 only"
if ! openstack loadbalancer listener show demo-listener >/dev/null 2>&1; then
    run openstack loadbalancer listener create --name demo-listener \
        --protocol TCP --protocol-port 80 --allowed-cidr 198.51.100.0/24 --wait demo-lb
fi
run openstack loadbalancer listener show demo-listener -c protocol \
    -c protocol_port -c allowed_cidrs -c provisioning_status

step "Nova: the amphora, placed on an SR-IOV host"
run openstack server list --long -c Name -c Status -c Host -c Networks

step "Neutron: the direct VRRP base port holds a VF and the VIP"
vrrp_port=$(openstack port list -f value -c ID -c Name \
    | awk -v lb="octavia-lb-vrrp-$lb_id" 'index($2, lb) == 1 {print $1; exit}')
run openstack port show "$vrrp_port" -c name -c binding_vnic_type \
    -c binding_vif_type -c binding_host_id -c binding_profile \
    -c allowed_address_pairs -c security_group_ids

step "Real packets: a client inside the allowed CIDR and one outside it"
# Two client hosts with addresses Neutron gave them: one on member-net
# (198.51.100.0/24, allowed), one on vip-net itself (not allowed).
for host in demo-inside:member-net:member-subnet \
            demo-outside:vip-net:vip-subnet; do
    IFS=: read -r name net subnet <<<"$host"
    openstack port show "$name" >/dev/null 2>&1 || \
        openstack port create --network "$net" --fixed-ip "subnet=$subnet" \
            "$name" >/dev/null
done
"$bin/python" - "$state" "$lb_id" <<'PY'
import json
import subprocess
import sys

from sriov_octavia.amphora import client as agent_client
from testbed import clouds
from testbed import config
from testbed import plumbing

state_dir, lb_id = sys.argv[1:]
testbed = config.Testbed.load(state_dir)
fabric = plumbing.Fabric(testbed.state_dir, prefix=testbed.prefix)
conn = clouds.connect(testbed)
lb = conn.load_balancer.find_load_balancer(lb_id)

CONNECT = (
    'import socket, sys\n'
    'try:\n'
    '    socket.create_connection((sys.argv[1], 80), timeout=3)\n'
    '    print("connected")\n'
    'except ConnectionRefusedError:\n'
    '    print("reached the amphora (refused: no load-balancing engine '
    'listens yet)")\n'
    'except OSError:\n'
    '    print("no answer: dropped by the amphora firewall")\n')

for name in ('demo-inside', 'demo-outside'):
    port = conn.network.find_port(name, ignore_missing=False)
    subnet = conn.network.get_subnet(port.fixed_ips[0]['subnet_id'])
    address = port.fixed_ips[0]['ip_address']
    namespace = fabric.add_host(
        name, port.network_id, port.mac_address,
        f'{address}/{subnet.cidr.split("/")[1]}', gateway=subnet.gateway_ip)
    result = subprocess.run(
        ['ip', 'netns', 'exec', namespace, sys.executable, '-c', CONNECT,
         lb.vip_address], capture_output=True, text=True, check=True)
    print(f'{name} ({address}) -> {lb.vip_address}:80: '
          f'{result.stdout.strip()}')

for server in conn.compute.servers(details=True):
    if server.metadata.get('sriov_octavia_lb') != lb_id:
        continue
    mgmt_ip = server.addresses['lb-mgmt-net'][0]['addr']
    with agent_client.AgentClient((mgmt_ip, 9443),
                                  fabric.agent_client_cert,
                                  fabric.ca_cert) as agent:
        print(f'\n{server.name}: firewall in force (agent at {mgmt_ip})')
        print(json.dumps(agent.get_security_group()['security_group'],
                         indent=2))
        print('counters:')
        print(json.dumps(agent.get_counters(), indent=2))
PY

cat <<EOF

The load balancer runs. Explore it with:
  export OS_CLIENT_CONFIG_FILE=$state/clouds.yaml OS_CLOUD=sriov-testbed
  $bin/openstack loadbalancer list
  $bin/sriov-octavia-testbed --state-dir $state status
and take everything down with:
  $bin/sriov-octavia-testbed --state-dir $state down
EOF
