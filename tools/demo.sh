#!/usr/bin/env bash
# sriov-octavia main job: a real SR-IOV load balancer on the local testbed.
#
# Brings the testbed up (the real Neutron, octavia-api and octavia-driver-agent
# with this provider and its worker, redis, the compute emulator whose
# amphorae are network namespaces running the real amphora agent), then does
# what an operator and a user do, with the real `openstack` CLI: an SR-IOV
# Octavia flavor, a load balancer, an HTTP listener limited to some CIDRs, a
# pool with a health monitor and two members. It shows the direct VRRP port
# Neutron bound to a VF, real HTTP requests balanced over the members (and
# refused from outside the CIDRs), the firewall the amphora agent keeps on
# that VF, and member health and statistics as Octavia reports them.
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

step "User: an HTTP listener open to 198.51.100.0/24 only, a pool, two members"
if ! openstack loadbalancer listener show demo-listener >/dev/null 2>&1; then
    run openstack loadbalancer listener create --name demo-listener \
        --protocol HTTP --protocol-port 80 --allowed-cidr 198.51.100.0/24 --wait demo-lb
fi
run openstack loadbalancer listener show demo-listener -c protocol \
    -c protocol_port -c allowed_cidrs -c provisioning_status
if ! openstack loadbalancer pool show demo-pool >/dev/null 2>&1; then
    run openstack loadbalancer pool create --name demo-pool \
        --listener demo-listener --protocol HTTP --lb-algorithm ROUND_ROBIN --wait
    run openstack loadbalancer healthmonitor create --name demo-monitor \
        --type HTTP --delay 2 --timeout 1 --max-retries 2 --wait demo-pool
fi
# The members are hosts on member-net (198.51.100.0/24) with addresses
# Neutron gave them; the amphora reaches them through the subnets' router.
for member in demo-web-1 demo-web-2; do
    openstack port show "$member" >/dev/null 2>&1 || \
        openstack port create --network member-net \
            --fixed-ip subnet=member-subnet "$member" >/dev/null
    address=$(openstack port show "$member" -f json -c fixed_ips \
        | "$bin/python" -c 'import json,sys; print(json.load(sys.stdin)["fixed_ips"][0]["ip_address"])')
    openstack loadbalancer member show demo-pool "$member" >/dev/null 2>&1 || \
        run openstack loadbalancer member create --name "$member" \
            --subnet-id member-subnet --address "$address" \
            --protocol-port 8080 --wait demo-pool
done

step "Nova: the amphora, placed on an SR-IOV host"
run openstack server list --long -c Name -c Status -c Host -c Networks

step "Neutron: the direct VRRP base port holds a VF and the VIP"
vrrp_port=$(openstack port list -f value -c ID -c Name \
    | awk -v lb="octavia-lb-vrrp-$lb_id" 'index($2, lb) == 1 && !n++ {print $1}')
run openstack port show "$vrrp_port" -c name -c binding_vnic_type \
    -c binding_vif_type -c binding_host_id -c binding_profile \
    -c allowed_address_pairs -c security_group_ids

step "Real HTTP through the VIP: a client inside the allowed CIDR and one outside it"
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
import time

from sriov_octavia.amphora import client as agent_client
from sriov_octavia_testbed import clouds
from sriov_octavia_testbed import config
from sriov_octavia_testbed import netlab
from sriov_octavia_testbed import plumbing

state_dir, lb_id = sys.argv[1:]
testbed = config.Testbed.load(state_dir)
fabric = plumbing.Fabric(testbed.state_dir, prefix=testbed.prefix)
conn = clouds.connect(testbed)
lb = conn.load_balancer.find_load_balancer(lb_id)

# A member answers with its name, so the client sees who served it.
MEMBER = (
    'import http.server, sys\n'
    'name = sys.argv[1].encode()\n'
    'class H(http.server.BaseHTTPRequestHandler):\n'
    '    def do_GET(self):\n'
    '        self.send_response(200)\n'
    '        self.send_header("Content-Length", str(len(name)))\n'
    '        self.end_headers()\n'
    '        self.wfile.write(name)\n'
    '    def log_message(self, *args):\n'
    '        pass\n'
    'http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()\n')
GET = (
    'import sys, urllib.request\n'
    'try:\n'
    '    print(urllib.request.urlopen(f"http://{sys.argv[1]}/", '
    'timeout=3).read().decode())\n'
    'except OSError:\n'
    '    print("no answer: dropped by the amphora firewall")\n')


def host(name):
    port = conn.network.find_port(name, ignore_missing=False)
    subnet = conn.network.get_subnet(port.fixed_ips[0]['subnet_id'])
    address = port.fixed_ips[0]['ip_address']
    namespace = fabric.names.host_namespace(name)
    if not netlab.namespace_exists(namespace):
        fabric.add_host(name, port.network_id, port.mac_address,
                        f'{address}/{subnet.cidr.split("/")[1]}',
                        gateway=subnet.gateway_ip)
    return namespace, address


for name in ('demo-web-1', 'demo-web-2'):
    namespace, address = host(name)
    if not netlab.run(namespace, ['ss', '-Htln', 'sport = :8080']).stdout:
        # Runs until `sriov-octavia-testbed down` removes the host.
        subprocess.Popen(['ip', 'netns', 'exec', namespace, sys.executable,
                          '-c', MEMBER, name], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f'{name}: HTTP on {address}:8080')

print('waiting for the health monitor to see both members ONLINE ...')
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    pool = conn.load_balancer.find_pool('demo-pool')
    members = list(conn.load_balancer.members(pool))
    if members and all(m.operating_status == 'ONLINE' for m in members):
        break
    time.sleep(2)
for member in members:
    print(f'  {member.name} {member.address}: {member.operating_status}')

for name, requests in (('demo-inside', 6), ('demo-outside', 1)):
    namespace, address = host(name)
    answers = [netlab.run(namespace, [sys.executable, '-c', GET,
                                      lb.vip_address]).stdout.strip()
               for _ in range(requests)]
    print(f'{name} ({address}) GET http://{lb.vip_address}/ x{requests}: '
          f'{", ".join(answers)}')

# The worker reads haproxy's counters every [sriov_worker] health_interval.
deadline = time.monotonic() + 60
while (time.monotonic() < deadline and conn.load_balancer
       .get_load_balancer_statistics(lb_id).total_connections < 6):
    time.sleep(2)

for server in conn.compute.servers(details=True):
    if server.metadata.get('sriov_octavia_lb') != lb_id:
        continue
    mgmt_ip = server.addresses['lb-mgmt-net'][0]['addr']
    amphora_id = server.metadata['sriov_octavia_amphora_id']
    # The controller issued the agent's certificate to the amphora id.
    with agent_client.AgentClient((mgmt_ip, 9443),
                                  fabric.agent_client_cert,
                                  fabric.ca_cert,
                                  server_name=amphora_id) as agent:
        print(f'\n{server.name}: amphora {amphora_id}, firewall in force '
              f'(agent at {mgmt_ip})')
        print(json.dumps(agent.get_security_group()['security_group'],
                         indent=2))
        print('counters:')
        print(json.dumps(agent.get_counters(), indent=2))
PY

step "Octavia: member health and listener statistics from the amphora"
run openstack loadbalancer member list demo-pool -c name -c address \
    -c provisioning_status -c operating_status
run openstack loadbalancer stats show demo-lb

cat <<EOF

The load balancer runs. Explore it with:
  export OS_CLIENT_CONFIG_FILE=$state/clouds.yaml OS_CLOUD=sriov-testbed
  $bin/openstack loadbalancer list
  $bin/sriov-octavia-testbed --state-dir $state status
and take everything down with:
  $bin/sriov-octavia-testbed --state-dir $state down
EOF
