#!/usr/bin/env bash
# sriov-octavia agent demo: the amphora agent filtering real packets.
#
# Builds, in network namespaces, an amphora whose "SR-IOV VF" (a veth end)
# holds a VIP, and two clients on the same L2 segment. The real
# amphora-sriov-agent runs with certificates from sriov_octavia_testbed.certs; the
# "controller" (this script) posts a rule set over mutual TLS; one client
# then reaches the VIP's listener and the other does not. Everything it
# creates is removed on exit. Needs root and `bash tools/install.sh`.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
py="$top/.venv/bin/python"
agent_bin="$top/.venv/bin/amphora-sriov-agent"

amp=sodemo-amphora
sw=sodemo-switch
allowed=sodemo-allowed
denied=sodemo-denied
vip=203.0.113.10
allowed_ip=203.0.113.21
denied_ip=203.0.113.22
listener_port=8080
agent_port=19458

work=$(mktemp -d /tmp/sodemo.XXXXXX)
http_pid=""
agent_pid=""

cleanup() {
    local pid ns
    for pid in $agent_pid $http_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "$amp" "$sw" "$allowed" "$denied"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ok() { printf '   \033[32mOK\033[0m   %s\n' "$*"; }
fail() { printf '   \033[31mFAIL\033[0m %s\n' "$*"; exit 1; }

# The controller's side of the agent API: HTTPS with a client certificate.
api() {
    local method=$1 path=$2
    shift 2
    curl -sS --max-time 30 --cacert "$work/ca.pem" --cert "$work/client.pem" \
        -X "$method" "https://127.0.0.1:$agent_port$path" "$@"
}

# Ask the VIP's listener from a client namespace; prints the HTTP status.
fetch() {
    ip netns exec "$1" curl -s -o /dev/null -w '%{http_code}' \
        --connect-timeout 2 "http://$vip:$listener_port/" || true
}

step "Network: amphora with VF vf0 ($vip), clients $allowed_ip and $denied_ip"
for ns in "$amp" "$sw" "$allowed" "$denied"; do
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
connect_port() {  # namespace, interface there, address, switch port
    ip -n "$sw" link add "$4" type veth peer name "$2" netns "$1"
    ip -n "$sw" link set "$4" master br0 up
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
}
connect_port "$amp" vf0 "$vip" p-amp
connect_port "$allowed" eth0 "$allowed_ip" p-allowed
connect_port "$denied" eth0 "$denied_ip" p-denied
ok "namespaces $amp, $sw, $allowed, $denied"

step "Load-balancer stand-in: HTTP on $vip:$listener_port inside the amphora"
ip netns exec "$amp" "$py" -m http.server "$listener_port" --bind "$vip" \
    --directory "$work" >"$work/http.log" 2>&1 &
http_pid=$!

step "Certificates: a CA, the agent's server certificate, a client one"
"$py" - "$work" <<'PYTHON'
import sys
from sriov_octavia_testbed import certs
work = sys.argv[1]
ca = certs.CertificateAuthority.create(f'{work}/ca.pem', 'sodemo CA')
ca.issue_server(f'{work}/server.pem', hostnames=['localhost'],
                ips=['127.0.0.1'])
ca.issue_client(f'{work}/client.pem', 'sodemo-controller')
other = certs.CertificateAuthority.create(f'{work}/other-ca.pem', 'other')
other.issue_client(f'{work}/stranger.pem', 'stranger')
PYTHON
ok "$(ls "$work"/*.pem | xargs -n1 basename | tr '\n' ' ')"

step "Agent: amphora-sriov-agent filtering namespace $amp"
cat >"$work/amphora-agent.conf" <<CONF
[DEFAULT]
log_file = $work/agent.log
[amphora_agent]
agent_server_ca = $work/ca.pem
agent_server_cert = $work/server.pem
network_namespace = $amp
firewall_state_file = $work/firewall-state.json
# No SR-IOV hardware here: veth ends stand in for VFs.
vf_link_kinds = veth
[haproxy_amphora]
bind_host = 127.0.0.1
bind_port = $agent_port
CONF
"$agent_bin" --config-file "$work/amphora-agent.conf" &
agent_pid=$!
for _ in $(seq 300); do
    api GET /1.0/info >"$work/info.json" 2>/dev/null && break
    kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log"; fail "agent exited"; }
    sleep 0.1
done
ok "GET /1.0/info: $(cat "$work/info.json")"

step "Mutual TLS: only clients with a certificate from the agent's CA"
curl -s --max-time 10 --cacert "$work/ca.pem" \
    "https://127.0.0.1:$agent_port/1.0/info" >/dev/null 2>&1 \
    && fail "a client without a certificate got in" \
    || ok "no client certificate: handshake refused"
curl -s --max-time 10 --cacert "$work/ca.pem" --cert "$work/stranger.pem" \
    "https://127.0.0.1:$agent_port/1.0/info" >/dev/null 2>&1 \
    && fail "a certificate from another CA got in" \
    || ok "certificate from another CA: handshake refused"

step "Before any rules: the drop-all base is in force"
[ "$(fetch "$allowed")" = 200 ] && fail "reached the VIP before any rules"
ok "$allowed_ip cannot reach $vip:$listener_port"

step "Controller: POST /1.0/security-group (listener TCP $listener_port from $allowed_ip/32 and 198.51.100.0/24)"
api POST /1.0/security-group -H 'Content-Type: application/json' -d @- \
    >"$work/applied.json" <<JSON
{"vip_interfaces": ["$vip"],
 "listeners": [{"protocol": "TCP", "port": $listener_port,
                "allowed_cidrs": ["$allowed_ip/32", "198.51.100.0/24"]}],
 "vrrp_peers": [],
 "members": []}
JSON
"$py" -m json.tool --compact "$work/applied.json" | sed 's/^/   /'

step "Packets"
[ "$(fetch "$allowed")" = 200 ] || fail "$allowed_ip could not reach the VIP"
ok "$allowed_ip -> $vip:$listener_port: HTTP 200"
[ "$(fetch "$denied")" = 200 ] && fail "$denied_ip reached the VIP"
ok "$denied_ip -> $vip:$listener_port: dropped (connect timed out)"

step "A bad request changes nothing"
api POST /1.0/security-group -H 'Content-Type: application/json' \
    -d '{"vip_interfaces": ["'"$vip"'"], "listeners": [{"protocol": "TCP", "port": 70000}]}' \
    | sed 's/^/   /'
echo
[ "$(fetch "$allowed")" = 200 ] || fail "the bad request changed the rules"
ok "$allowed_ip still reaches the VIP"

step "Counters (the host cannot see inside a VF; the agent can)"
summary=$(cat <<'PYTHON'
import json, sys
counters = json.load(sys.stdin)
for name, verdicts in sorted(counters.pop('listeners').items()):
    for verdict, value in sorted(verdicts.items()):
        print(f"   listener {name:<11} {verdict:<9} {value['packets']:>4} packets")
for name, value in sorted(counters.pop('interfaces').items()):
    print(f"   interface {name:<10} dropped   {value['dropped']['packets']:>4} packets")
for name, value in sorted(counters.items()):
    print(f"   {name:<20} accepted  {value['accepted']['packets']:>4} packets")
PYTHON
)
api GET /1.0/security-group/counters | "$py" -c "$summary"

step "Stopping the agent (SIGTERM to PID $agent_pid): the firewall stays"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "agent exited with $?"
stopped_pid=$agent_pid
agent_pid=""
[ "$(fetch "$denied")" = 200 ] && fail "rules vanished with the agent"
ok "agent $stopped_pid stopped; $denied_ip is still dropped"

step "Demo complete; removing namespaces and files"
echo "   (the full API: GET /1.0/info, GET|POST /1.0/security-group,"
echo "    GET /1.0/security-group/counters, PUT /1.0/interface/<ip>/rules)"
