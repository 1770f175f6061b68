#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (as root) for sriov-octavia: the Debian
# packages the agent, the testbed and the tests use, the virtualenv at .venv/
# with the project and its test requirements, Debian's python3-nftables
# made importable from the virtualenv (it is not on PyPI), and the igb
# tier's guest: qemu and a kernel from bookworm-backports.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv"
# The igb tier's guest kernel, unpacked (never installed: the running
# kernel is left alone). SRIOV_GUEST_KERNEL_DIR moves it, for the tests too.
guest_kernel_dir=${SRIOV_GUEST_KERNEL_DIR:-/var/cache/sriov-octavia/guest-kernel}

apt_packages=(nftables python3-nftables iproute2 redis-server openssl
              iputils-ping curl iperf3 wrk
              # The testbed's hosts announce their address as guests do.
              iputils-arping
              # The UDP load-balancing benchmark's sender and receivers.
              socat
              # Compiles the data-path benchmark's one-way UDP load
              # (tools/bench/udp_blast.c).
              gcc
              # The worker's other jobboards, for their functional tests.
              etcd-server zookeeper
              # The flow persistence production uses; its tests start a
              # private server.
              mariadb-server
              # The amphora's load-balancing engine, for the agent's tests.
              haproxy keepalived
              # The igb tier's initramfs (a static shell) and its modprobe.
              busybox-static kmod)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$pkg")
done
# qemu 10 (bookworm's 7.2 has no igb) comes from bookworm-backports, with
# the kernel whose igb, igbvf, ip_vs and sctp modules the guest loads.
backports=/etc/apt/sources.list.d/bookworm-backports.sources
qemu_igb() {
    qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'
}
need_update=false
if [ ! -e "$backports" ]; then
    cat > "$backports" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    need_update=true
fi
if [ ${#missing[@]} -gt 0 ] || ! qemu_igb || [ ! -d "$guest_kernel_dir/boot" ]; then
    need_update=true
fi
if $need_update; then
    apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! qemu_igb; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -t bookworm-backports qemu-system-x86
fi
if [ ! -d "$guest_kernel_dir/boot" ]; then
    downloads=/var/cache/sriov-octavia/downloads
    mkdir -p "$downloads"
    # The newest 6.12 the suite has; its package name carries the version.
    deb=$(ls "$downloads"/linux-image-6.12.*-amd64-unsigned_*.deb 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$deb" ]; then
        package=$(apt-cache pkgnames linux-image-6.12. |
                  grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
                  sort -V | tail -1)
        (cd "$downloads" && apt-get download -q "$package")
        deb=$(ls "$downloads"/linux-image-6.12.*-amd64-unsigned_*.deb | sort -V | tail -1)
    fi
    mkdir -p "$(dirname "$guest_kernel_dir")"
    unpacked=$(mktemp -d "$(dirname "$guest_kernel_dir")/unpack.XXXXXX")
    dpkg-deb -x "$deb" "$unpacked"
    version=$(basename "$unpacked"/boot/vmlinuz-*)
    depmod -b "$unpacked" "${version#vmlinuz-}"
    rm -rf "$guest_kernel_dir"
    mv "$unpacked" "$guest_kernel_dir"
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
