#!/usr/bin/env bash
# Run a command on another real Linux kernel: Debian's 6.1 kernel (older than 6.2, where
# a cpuset change still resets the affinity of the tasks in it) in a qemu guest, with the
# cpuset controller free to move between cgroup v1 and v2 (this machine's own init holds
# its v1 cpuset hierarchy, so v2 cannot be tested on the host).
#
#   kernel-vm.sh prepare            fetch qemu, the kernel and build the initramfs (cached)
#   kernel-vm.sh run DIR CMD...     boot, run CMD as root in DIR, print its output, exit with
#                                   its status
#
# The guest sees the host's file system read-only over 9p (so the project's venv and
# Python work unchanged), with tmpfs on /tmp and /run, and the cgroup layout of this
# machine: v1 cpuset at /sys/fs/cgroup/cpuset, v2 at /sys/fs/cgroup/unified. It has no
# network device at all. Cache: $KCM_VM_CACHE, else /var/tmp/kcm-vm (~80 MB).
set -euo pipefail
CACHE=${KCM_VM_CACHE:-/var/tmp/kcm-vm}
KERNEL_PACKAGE=linux-image-amd64   # bookworm: 6.1
MODULES="netfs fscache 9pnet virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
         virtio_pci 9pnet_virtio 9p"

prepare() {
    mkdir -p "$CACHE"
    exec 8>"$CACHE/.lock"
    flock 8
    # The initramfs is rebuilt whenever the guest's init script changes.
    INITRD=$CACHE/initrd-$(sha256sum "$(dirname "$0")/kernel-vm-init" | cut -c1-12).cpio.gz
    [ -s "$INITRD" ] && [ -s "$CACHE/vmlinuz" ] && return 0
    if ! command -v qemu-system-x86_64 >/dev/null; then
        (apt-get install -y -qq --no-install-recommends qemu-system-x86 ||
         (apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-x86)) >/dev/null
    fi
    command -v busybox >/dev/null || apt-get install -y -qq busybox-static >/dev/null
    local work=$CACHE/work image
    rm -rf "$work" && mkdir -p "$work/deb" "$work/initrd"
    image=$(apt-cache depends "$KERNEL_PACKAGE" | awk '/Depends: linux-image/{print $2; exit}')
    (cd "$work/deb" && apt-get download -qq "$image" 2>/dev/null)
    dpkg-deb -x "$work"/deb/*.deb "$work/deb/root"
    local initrd=$work/initrd
    mkdir -p "$initrd"/{bin,dev,proc,sys,host,modules}
    cp "$(command -v busybox)" "$initrd/bin/busybox"
    for module in $MODULES; do
        find "$work/deb/root/lib/modules" -name "$module.ko" -exec cp {} "$initrd/modules/" \;
        [ -f "$initrd/modules/$module.ko" ] || { echo "kernel-vm: no module $module" >&2; exit 1; }
    done
    echo "$MODULES" > "$initrd/modules/order"
    cp "$(dirname "$0")/kernel-vm-init" "$initrd/init"
    chmod 755 "$initrd/init"
    (cd "$initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$CACHE/.initrd.tmp"
    cp "$work"/deb/root/boot/vmlinuz-* "$CACHE/.vmlinuz.tmp"
    rm -f "$CACHE"/initrd-*.cpio.gz
    mv "$CACHE/.initrd.tmp" "$INITRD"
    mv "$CACHE/.vmlinuz.tmp" "$CACHE/vmlinuz"
    rm -rf "$work"
}

# KVM when the processor offers virtualisation to this machine (vmx/svm in cpuinfo) and
# /dev/kvm is usable; else TCG, software emulation, said on stderr. On these VMs /dev/kvm
# exists but the processor shows neither flag, and a KVM guest spins in the host's kernel
# without printing a line (60 s measured, 37-58 s of system time): hence the probe.
acceleration() {
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        echo "-accel kvm -cpu host"
    else
        echo "kernel-vm: no hardware virtualisation here (no vmx/svm in /proc/cpuinfo):" \
             "the guest runs under TCG, software emulation; its tests scale their waits" >&2
        echo "-accel tcg"
    fi
}

run() {
    local dir=$1; shift
    prepare
    SHARE=$(mktemp -d)
    trap 'rm -rf "$SHARE"' EXIT
    local share=$SHARE
    # The host's Python start-up, for the guest's tests to scale their waits by
    # (tests/integration/workloads.py: time_scale).
    local host_ms
    host_ms=$(python3 -c 'import subprocess, sys, time
t = time.monotonic()
for _ in range(3): subprocess.run([sys.executable, "-S", "-c", "pass"])
print(round((time.monotonic() - t) * 1000 / 3, 1))')
    { printf 'export KCM_VM_HOST_START_MS=%s; ' "$host_ms"; printf '%q ' "$@"; } > "$share/command"
    printf '%s' "$dir" > "$share/dir"
    local accel
    accel=$(acceleration)
    timeout 900 qemu-system-x86_64 $accel -smp 3 -m 2048 -nographic -no-reboot \
        -nic none -kernel "$CACHE/vmlinuz" -initrd "$INITRD" \
        -append "console=ttyS0 quiet panic=-1" \
        -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$share,mount_tag=out,security_model=none,multidevs=remap" \
        </dev/null | tr -d '\r' | sed -n '/KCM-VM-BEGIN$/,/^KCM-VM-END$/{//!p}'
    [ -f "$share/status" ] || { echo "kernel-vm: the guest did not finish" >&2; return 1; }
    return "$(cat "$share/status")"
}

case ${1:-} in
    prepare) prepare ;;
    run) shift; [ $# -ge 2 ] || { echo "usage: kernel-vm.sh run DIR CMD..." >&2; exit 2; }; run "$@" ;;
    *) echo "usage: kernel-vm.sh prepare | run DIR CMD..." >&2; exit 2 ;;
esac
