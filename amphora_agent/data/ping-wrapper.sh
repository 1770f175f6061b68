#!/bin/sh
# PING health monitor of Octavia load balancers; installed by
# amphora-sriov-agent where Octavia's haproxy.cfg names it
# ("external-check command"), and put back at each agent start.
#
# haproxy runs it inside the data namespace, as the user of its workers,
# with an empty PATH and the arguments
#     <proxy address> <proxy port> <server address> <server port>
# A server whose address answers one echo request within a second is
# up (exit status 0); any other outcome marks it down.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

address=${3:-$HAPROXY_SERVER_ADDR}
if [ -z "$address" ]; then
    echo "ping-wrapper: no server address given" >&2
    exit 2
fi
case $address in
    *:*) family=-6 ;;
    *) family=-4 ;;
esac
exec ping "$family" -n -q -c 1 -W 1 -- "$address" >/dev/null 2>&1
