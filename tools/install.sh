#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root) for sriov-octavia: the Debian
# packages the agent, the testbed and the tests use, the virtualenv at .venv/
# with the project and its test requirements, and Debian's python3-nftables
# made importable from the virtualenv (it is not on PyPI).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv"

apt_packages=(nftables python3-nftables iproute2 redis-server openssl
              iputils-ping curl iperf3 wrk
              # The worker's other jobboards, for their functional tests.
              etcd-server zookeeper
              # The flow persistence production uses; its tests start a
              # private server.
              mariadb-server
              # The amphora's load-balancing engine, for the agent's tests.
              haproxy keepalived)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -U pip setuptools wheel
"$venv/bin/python" -m pip install -q -r "$top/requirements.txt" \
    -r "$top/test-requirements.txt" -r "$top/doc/requirements.txt"
"$venv/bin/python" -m pip install -q -e "$top"
# The testbed is a distribution of its own: an operator's site-packages
# never gets it with the product.
"$venv/bin/python" -m pip install -q -e "$top/testbed"

# Link only the nftables package: the venv keeps its isolation from the rest
# of the system site-packages.
nft_pkg=$(/usr/bin/python3 -c 'import nftables, os; print(os.path.dirname(nftables.__file__))')
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn "$nft_pkg" "$site/nftables"
"$venv/bin/python" -c 'import nftables; nftables.Nftables()'
echo "sriov-octavia installed in $venv"
