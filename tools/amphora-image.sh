#!/bin/bash
# Build the amphora image from elements/ and prove it boots into a working
# agent with exactly the user data the controller sends.
#
#   bash tools/amphora-image.sh build   # diskimage-builder, Debian bookworm
#   bash tools/amphora-image.sh boot    # qemu (TCG) + NoCloud seed + mTLS call
#   bash tools/amphora-image.sh         # both
#
# Run as root from anywhere; everything it keeps is under .state/
# (AMPHORA_IMAGE_STATE to change): the diskimage-builder virtualenv
# (.state/dib-venv), its download caches, the image
# (.state/amphora-image/amphora-sriov.qcow2). `boot` leaves nothing behind:
# it boots a copy-on-write overlay, and removes it, the seed and the
# throwaway CAs when the guest is down. Too slow for CI (TCG: a few
# minutes each).
#
# Environment: AMPHORA_IMAGE_STATE, AMPHORA_BOOT_TIMEOUT (seconds to wait
# for the agent, default 900), AMPHORA_QEMU_MEM (MiB, default 2048),
# DIB_RELEASE (default bookworm).

set -eu
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${AMPHORA_IMAGE_STATE:-$ROOT/.state/amphora-image}
DIB_VENV=$ROOT/.state/dib-venv
PROJECT_PYTHON=$ROOT/.venv/bin/python
IMAGE=$STATE/amphora-sriov.qcow2
HELPER=$ROOT/tools/amphora_image_proof.py
# The agent's port in the guest ([sriov_amphora] agent_port default).
AGENT_PORT=9443

log() { printf '[amphora-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_packages() {
    # need_packages COMMAND:PACKAGE...: apt-get install what is missing.
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The Debian mirrors this machine's apt uses: "<main> <security>".
apt_mirrors() {
    python3 - "$1" <<'PY'
import glob, re, sys
release = sys.argv[1]
entries = []  # (uri, suites)
for path in glob.glob('/etc/apt/sources.list') + sorted(
        glob.glob('/etc/apt/sources.list.d/*.list')):
    for line in open(path):
        line = re.sub(r'\[[^]]*\]', '', line.split('#', 1)[0]).split()
        if len(line) >= 3 and line[0] == 'deb':
            entries.append((line[1], [line[2]]))
for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
    for stanza in re.split(r'\n\s*\n', open(path).read()):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith('#') or ':' not in line:
                continue
            key, value = line.split(':', 1)
            fields[key.strip().lower()] = value.split()
        if 'deb' in fields.get('types', []) and \
                fields.get('enabled', ['yes'])[0] != 'no':
            for uri in fields.get('uris', []):
                entries.append((uri, fields.get('suites', [])))
main = next((u for u, s in entries if release in s),
            'http://deb.debian.org/debian')
security = next((u for u, s in entries if f'{release}-security' in s),
                'http://deb.debian.org/debian-security')
print(main.rstrip('/'), security.rstrip('/'))
PY
}

build() {
    [ "$(id -u)" = 0 ] || die "build needs root (loop devices, chroot)"
    local release=${DIB_RELEASE:-bookworm}
    need_packages qemu-img:qemu-utils debootstrap:debootstrap \
        kpartx:kpartx dmsetup:dmsetup sgdisk:gdisk mkfs.vfat:dosfstools rsync:rsync \
        sudo:sudo mksquashfs:squashfs-tools curl:curl
    mkdir -p "$STATE/cache"
    if [ ! -x "$DIB_VENV/bin/disk-image-create" ]; then
        log "installing diskimage-builder into $DIB_VENV"
        python3 -m venv "$DIB_VENV"
        "$DIB_VENV/bin/pip" install -q diskimage-builder
    fi

    # Reach the Debian mirror and PyPI the way this machine does.
    local mirrors main security proxy
    mirrors=$(apt_mirrors "$release")
    main=${mirrors% *}
    security=${mirrors#* }
    eval "$(apt-config shell proxy Acquire::http::Proxy)"
    if [ -n "${proxy:-}" ]; then
        export http_proxy=$proxy
        export https_proxy=${https_proxy:-$proxy}
    fi
    local index extra
    index=$("$ROOT/.venv/bin/pip" config get global.index-url 2>/dev/null \
        || true)
    extra=$("$ROOT/.venv/bin/pip" config get global.extra-index-url \
        2>/dev/null || true)
    # The CA bundle pip trusts here (an intercepting egress proxy's CA may
    # be in it): the build's pip in the chroot gets a copy, removed again
    # before the image is sealed (the build-host-ca element below).
    local ca_bundle
    ca_bundle=${PIP_CERT:-$("$ROOT/.venv/bin/pip" config get global.cert \
        2>/dev/null || echo /etc/ssl/certs/ca-certificates.crt)}
    # Local (file://) indexes and wheel directories of this machine do not
    # exist in the image's chroot; only network ones are passed on.
    unset PIP_FIND_LINKS PIP_CONSTRAINT PIP_CERT PIP_EXTRA_INDEX_URL \
        PIP_INDEX_URL
    case "$index" in http*) export PIP_INDEX_URL=$index ;; esac
    extra=$(printf '%s\n' $extra | grep '^http' | tr '\n' ' ' || true)
    [ -n "${extra// }" ] && export PIP_EXTRA_INDEX_URL=$extra
    log "Debian mirror $main, security $security," \
        "apt proxy ${proxy:-none}, pip index ${PIP_INDEX_URL:-PyPI}," \
        "CA bundle $ca_bundle"

    # This checkout as it is on disk (uncommitted changes included), as a
    # tarball: the element's source repository, and pbr's version from the
    # project's virtualenv since a tarball has no git history.
    local src=$STATE/sriov-octavia-src.tar.gz
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
            [ -f "$f" ] && printf '%s\0' "$f"
          done | tar --null -T - -czf "$src")
    PBR_VERSION=$("$PROJECT_PYTHON" -c \
        'import importlib.metadata as m; print(m.version("sriov-octavia"))' \
        2>/dev/null || echo 0.0.1)
    export PBR_VERSION

    # A build-only element (generated, not part of the product): while the
    # image is built, pip in the chroot trusts the host's CA bundle
    # (/tmp/build-host-ca.pem) and uses the host's network index, through
    # an /etc/pip.conf that is removed again before the image is sealed.
    local host_ca=$STATE/elements/build-host-ca
    rm -rf "$host_ca"
    mkdir -p "$host_ca/extra-data.d" "$host_ca/environment.d" \
        "$host_ca/cleanup.d"
    cat > "$host_ca/extra-data.d/10-build-host-ca" <<'HOOK'
#!/bin/bash
set -eu
sudo install -m 0644 "$DIB_BUILD_HOST_CA" "$TMP_MOUNT_PATH/tmp/build-host-ca.pem"
[ ! -e "$TMP_MOUNT_PATH/etc/pip.conf" ]
{
    echo '[global]'
    echo 'cert = /tmp/build-host-ca.pem'
    [ -z "${DIB_BUILD_PIP_INDEX:-}" ] || echo "index-url = $DIB_BUILD_PIP_INDEX"
    [ -z "${DIB_BUILD_PIP_EXTRA:-}" ] || echo "extra-index-url = $DIB_BUILD_PIP_EXTRA"
} | sudo tee "$TMP_MOUNT_PATH/etc/pip.conf"
HOOK
    # Debian's pip 23.0 (the one venv installs) ignores pip.conf's cert;
    # requests' own variable works for it and for later pips. Sourced on
    # the host too, where the file does not exist.
    cat > "$host_ca/environment.d/10-build-host-ca.bash" <<'HOOK'
if [ -f /tmp/build-host-ca.pem ]; then
    export REQUESTS_CA_BUNDLE=/tmp/build-host-ca.pem
fi
HOOK
    cat > "$host_ca/cleanup.d/10-build-host-ca" <<'HOOK'
#!/bin/bash
set -eu
sudo rm -f "$TARGET_ROOT/tmp/build-host-ca.pem" "$TARGET_ROOT/etc/pip.conf"
HOOK
    chmod +x "$host_ca"/extra-data.d/* "$host_ca"/cleanup.d/*
    export DIB_BUILD_HOST_CA=$ca_bundle
    export DIB_BUILD_PIP_INDEX=${PIP_INDEX_URL:-}
    export DIB_BUILD_PIP_EXTRA=${PIP_EXTRA_INDEX_URL:-}
    unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL

    export ELEMENTS_PATH=$ROOT/elements:$STATE/elements
    export DIB_RELEASE=$release
    export DIB_DISTRIBUTION_MIRROR=$main
    export DIB_DEBIAN_SECURITY_MIRROR=$security
    export DIB_IMAGE_CACHE=$STATE/cache
    export DIB_DEBOOTSTRAP_CACHE=1 DIB_DEBIAN_USE_DEBOOTSTRAP_CACHE=1
    export DIB_REPOTYPE_sriov_octavia=tar
    export DIB_REPOLOCATION_sriov_octavia=file://$src
    export DIB_REPOREF_sriov_octavia=.
    # cloud-init writes the network configuration (ifupdown, DHCP).
    export DIB_APT_MINIMAL_CREATE_INTERFACES=0
    local started=$SECONDS
    # diskimage-builder partitions its disk through kpartx, which needs the
    # kernel's device-mapper. Without it (this kind of VM), it builds the
    # root filesystem only (a tarball) and assemble_disk below makes the
    # bootable disk: a partition, extlinux, the same kernel and initramfs.
    local elements=(debian-minimal amphora-sriov-agent journal-to-console
                    build-host-ca)
    local types=qcow2 output=${IMAGE%.qcow2}
    if have_device_mapper; then
        elements+=(vm)
    else
        log "no device-mapper in this kernel: building the root file" \
            "system with diskimage-builder, the disk with extlinux"
        types=tar
        output=$STATE/amphora-sriov-rootfs
        export DIB_BLOCK_DEVICE_CONFIG='
- local_loop:
    name: image0
    size: 4GiB
- mkfs:
    name: mkfs_root
    base: image0
    type: ext4
    label: cloudimg-rootfs
    mount:
      mount_point: /
      fstab:
        options: "defaults"
        fsck-passno: 1
'
    fi
    log "building $IMAGE (log: $STATE/build.log)"
    if ! "$DIB_VENV/bin/disk-image-create" -a amd64 -t "$types" \
            -o "$output" -p ifupdown,isc-dhcp-client "${elements[@]}" \
            >"$STATE/build.log" 2>&1; then
        tail -n 40 "$STATE/build.log" >&2
        die "disk-image-create failed, see $STATE/build.log"
    fi
    if [ "$types" = tar ]; then
        assemble_disk "$output.tar" "$IMAGE"
        rm -f "$output.tar"
    fi
    BUILD_SECONDS=$((SECONDS - started))
    log "image $IMAGE ($(du -h "$IMAGE" | cut -f1)) built in" \
        "${BUILD_SECONDS} s"
    echo "build time: ${BUILD_SECONDS} s"
}

have_device_mapper() {
    [ -c /dev/mapper/control ] && dmsetup version >/dev/null 2>&1
}

ASSEMBLY=
cleanup_assembly() {
    [ -n "$ASSEMBLY" ] || return 0
    mountpoint -q "$ASSEMBLY/mnt" && umount -R "$ASSEMBLY/mnt"
    [ -f "$ASSEMBLY/loop" ] && losetup -d "$(cat "$ASSEMBLY/loop")"
    rm -rf "$ASSEMBLY"
    ASSEMBLY=
}

# assemble_disk ROOTFS_TAR QCOW2: one bootable (BIOS) disk from the root
# file system diskimage-builder made, as its vm element would: an MBR with
# one active ext4 partition labelled cloudimg-rootfs; extlinux instead of
# grub, as grub-install cannot find the disk under a loop device mapping a
# partition by offset. The partition is reached with an offset loop device,
# so neither device-mapper nor the kernel's partition scanning is needed.
assemble_disk() {
    local rootfs=$1 image=$2 size_mib=4096 offset_mib=1
    need_packages extlinux:extlinux sfdisk:fdisk
    [ -f /usr/lib/syslinux/mbr/mbr.bin ] || need_packages \
        no-such-command:syslinux-common
    ASSEMBLY=$(mktemp -d "$STATE/assemble.XXXXXX")
    trap cleanup_assembly EXIT
    local raw=$ASSEMBLY/disk.raw loop
    truncate -s "${size_mib}M" "$raw"
    printf 'label: dos\nstart=%sMiB, type=83, bootable\n' "$offset_mib" \
        | sfdisk -q "$raw"
    loop=$(losetup -f --show -o $((offset_mib * 1048576)) \
        --sizelimit $(((size_mib - offset_mib) * 1048576)) "$raw")
    echo "$loop" > "$ASSEMBLY/loop"
    # extlinux reads ext4 without 64bit and metadata_csum only.
    mkfs.ext4 -q -L cloudimg-rootfs -O ^64bit,^metadata_csum "$loop"
    mkdir "$ASSEMBLY/mnt"
    mount "$loop" "$ASSEMBLY/mnt"
    tar -C "$ASSEMBLY/mnt" --numeric-owner --xattrs --xattrs-include='*' \
        -xpf "$rootfs"
    # diskimage-builder's tarball leaves out the API file systems' mount
    # points.
    mkdir -p "$ASSEMBLY/mnt/proc" "$ASSEMBLY/mnt/sys" "$ASSEMBLY/mnt/dev" \
        "$ASSEMBLY/mnt/run"
    local kernel initrd
    kernel=$(cd "$ASSEMBLY/mnt/boot" && ls vmlinuz-* | sort -V | tail -n1)
    initrd=initrd.img-${kernel#vmlinuz-}
    [ -f "$ASSEMBLY/mnt/boot/$initrd" ] || die "no /boot/$initrd in the image"
    echo 'LABEL=cloudimg-rootfs / ext4 defaults 0 1' \
        > "$ASSEMBLY/mnt/etc/fstab"
    mkdir -p "$ASSEMBLY/mnt/boot/extlinux"
    cat > "$ASSEMBLY/mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT amphora
TIMEOUT 1
LABEL amphora
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=cloudimg-rootfs ro console=tty0 console=ttyS0,115200
CONF
    extlinux --install "$ASSEMBLY/mnt/boot/extlinux" >/dev/null
    umount "$ASSEMBLY/mnt"
    losetup -d "$loop"
    rm "$ASSEMBLY/loop"
    dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 \
        conv=notrunc status=none
    qemu-img convert -c -O qcow2 "$raw" "$image"
    cleanup_assembly
    trap - EXIT
}

QEMU_PID=
RUN_DIR=
cleanup_boot() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
    if [ -n "$RUN_DIR" ]; then
        if [ -s "$RUN_DIR/console.log" ]; then
            cp "$RUN_DIR/console.log" "$STATE/last-console.log"
        fi
        rm -rf "$RUN_DIR"
    fi
}

boot() {
    [ -f "$IMAGE" ] || die "no image at $IMAGE: run '$0 build' first"
    need_packages qemu-system-x86_64:qemu-system-x86 \
        cloud-localds:cloud-image-utils qemu-img:qemu-utils
    local timeout=${AMPHORA_BOOT_TIMEOUT:-900}
    RUN_DIR=$(mktemp -d "$STATE/boot.XXXXXX")
    trap cleanup_boot EXIT

    # The user data is the controller's: bootstrap.py's functions, with a
    # throwaway server CA ([certificates]) and client CA
    # ([controller_worker] client_ca) that signed the controller's
    # client certificate.
    "$PROJECT_PYTHON" "$HELPER" seed "$RUN_DIR"
    local amphora_id
    amphora_id=$(cat "$RUN_DIR/amphora_id")
    cloud-localds "$RUN_DIR/seed.iso" "$RUN_DIR/user-data" \
        "$RUN_DIR/meta-data"
    qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$RUN_DIR/disk.qcow2"

    local port
    port=$(python3 -c 'import socket; s = socket.socket(); '\
's.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "booting amphora $amphora_id, agent port 9443 -> 127.0.0.1:$port" \
        "(console: $RUN_DIR/console.log)"
    local started=$SECONDS
    qemu-system-x86_64 -accel tcg -m "${AMPHORA_QEMU_MEM:-2048}" -smp 2 \
        -display none -no-user-config -nodefaults \
        -serial "file:$RUN_DIR/console.log" \
        -qmp "unix:$RUN_DIR/qmp.sock,server=on,wait=off" \
        -drive "file=$RUN_DIR/disk.qcow2,format=qcow2,if=virtio" \
        -drive "file=$RUN_DIR/seed.iso,format=raw,if=virtio,readonly=on" \
        -netdev "user,id=mgmt,hostfwd=tcp:127.0.0.1:$port-:$AGENT_PORT" \
        -device virtio-net-pci,netdev=mgmt &
    QEMU_PID=$!

    if ! "$PROJECT_PYTHON" "$HELPER" probe "$RUN_DIR" "$port" "$timeout" \
            "$QEMU_PID"; then
        log "last lines of the console:"
        tail -n 60 "$RUN_DIR/console.log" >&2 || true
        die "the agent did not answer (console kept as" \
            "$STATE/last-console.log)"
    fi
    BOOT_SECONDS=$((SECONDS - started))
    echo "boot-to-agent time: ${BOOT_SECONDS} s"

    log "shutting the guest down"
    "$PROJECT_PYTHON" "$HELPER" powerdown "$RUN_DIR/qmp.sock" || true
    local waited=0
    while kill -0 "$QEMU_PID" 2>/dev/null && [ $waited -lt 120 ]; do
        sleep 2
        waited=$((waited + 2))
    done
    if kill -0 "$QEMU_PID" 2>/dev/null; then
        log "guest still up after ${waited} s, stopping qemu $QEMU_PID"
    else
        wait "$QEMU_PID" 2>/dev/null || true
        log "guest powered off in ${waited} s"
        QEMU_PID=
    fi
    cleanup_boot
    RUN_DIR=
    trap - EXIT
}

case "${1:-all}" in
    build) build ;;
    boot) boot ;;
    all) build; boot
         echo "build time: ${BUILD_SECONDS} s, boot-to-agent time:" \
             "${BOOT_SECONDS} s" ;;
    *) echo "usage: $0 [build|boot|all]" >&2; exit 2 ;;
esac
