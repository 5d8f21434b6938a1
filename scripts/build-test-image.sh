#!/usr/bin/env bash
# Build the small qemu test image: a busybox root with iproute2's ip and tc, nothing downloaded
# (every file comes from installed Debian packages: busybox-static, iproute2, e2fsprogs, qemu-utils).
#
# usage: build-test-image.sh [OUTDIR]       (default /var/cache/containerize/test-image)
#
# Writes, in OUTDIR:
#   rootfs/                 the root directory (image kind "rootfs", usable as qemu_url)
#   rootfs.tar.gz           the same as a tarball (image kind "rootfs"), with rootfs.tar.gz.sha256
#   disk.qcow2              an ext4 file system of the same root (image kind "disk"), with disk.qcow2.sha256
# The node kernel is not part of the image: the qemu role boots the pnode's Debian kernel
# (linux-image-amd64) with its own small initramfs. Running it again rebuilds only when this
# script or the packages it copies from changed; prints "unchanged" then.
set -euo pipefail

out=${1:-/var/cache/containerize/test-image}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/busybox-root.sh
source "$here/lib/busybox-root.sh"
for tool in busybox mke2fs qemu-img ip tc tar gzip sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-test-image: $tool is missing (scripts/install.sh installs it)" >&2; exit 1; }
done
busybox_bin=$(command -v busybox)
# (all of its output, then the first line: `| head -1` would let SIGPIPE fail the run under pipefail)
if ! busybox_help=$(LC_ALL=C "$busybox_bin" 2>&1); then
    echo "build-test-image: cannot run $busybox_bin" >&2
    exit 1
fi
file_out=${busybox_help%%$'\n'*}

# what the image is made of; the image is rebuilt only when this changes
stamp_text=$(
    # (the digests only: the same script run from another checkout must not rebuild the image)
    sha256sum "$here/build-test-image.sh" "$here/lib/busybox-root.sh" "$busybox_bin" "$(command -v ip)" "$(command -v tc)" \
        | cut -d' ' -f1
    echo "$file_out"
)
stamp_sum=$(printf '%s\n' "$stamp_text" | sha256sum | cut -d' ' -f1)
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp_sum" && -f $out/disk.qcow2 && -f $out/rootfs.tar.gz ]]; then
    echo "unchanged: $out"
    exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc/init.d etc/acpi/PWRF dev proc sys tmp run root \
    var/log var/run var/containers lib/modules mnt home users proj groups share
chmod 1777 tmp

# busybox with its applets, iproute2's ip and tc with their libraries (scripts/lib/busybox-root.sh)
install_busybox
install_iproute2

cat > etc/inittab <<'EOF'
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
EOF

cat > etc/init.d/rcS <<'EOF'
#!/bin/sh
# boot of the containerize test image (busybox init)
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -e /proc/mounts ] || mount -t proc proc /proc
mounted() { grep -q " $1 " /proc/mounts; }
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts devpts /dev/pts
mounted /run || mount -t tmpfs -o mode=0755 tmpfs /run
mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
# load the drivers of the virtio devices (there is no udev; the emulated legacy devices of the
# pc machine, floppy, IDE, speaker, are left alone: loading them costs seconds under TCG)
for alias in $(sort -u /sys/bus/virtio/devices/*/modalias 2>/dev/null); do
    modprobe -q "$alias" 2>/dev/null
done
[ -f /etc/hostname ] && hostname -F /etc/hostname
ip link set dev lo up
# the power button (qemu system_powerdown) powers the node off
modprobe -q evdev 2>/dev/null
modprobe -q button 2>/dev/null
acpid -c /etc/acpi 2>/dev/null
mount -a 2>/dev/null
[ -x /etc/rc.local ] && /etc/rc.local
echo "test image up: $(hostname)" > /dev/console
EOF

cat > etc/init.d/rcK <<'EOF'
#!/bin/sh
# shutdown of the containerize test image
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
killall5 -TERM 2>/dev/null
sleep 1
sync
umount -a -r 2>/dev/null
EOF

cat > etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
poweroff
EOF

install_accounts
cat > etc/fstab <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
proc /proc proc defaults 0 0
EOF
echo test > etc/hostname
printf '127.0.0.1 localhost\n' > etc/hosts
cat > etc/os-release <<'EOF'
NAME="containerize test image"
ID=containerize-test
PRETTY_NAME="containerize test image (busybox)"
EOF
chmod 0755 etc/init.d/rcS etc/init.d/rcK etc/acpi/PWRF/00000080
cd "$work"

# the tarball and the ext4 disk (no partition table; the initramfs finds the root either way)
tar --numeric-owner -C rootfs -czf rootfs.tar.gz .
size_mb=$(( $(du -sm rootfs | cut -f1) + 48 ))
mke2fs -q -F -t ext4 -L cz-test -d rootfs disk.raw "${size_mb}M" >/dev/null
qemu-img convert -q -f raw -O qcow2 disk.raw disk.qcow2
rm -f disk.raw
for file in rootfs.tar.gz disk.qcow2; do
    sha256sum "$file" | cut -d' ' -f1 > "$file.sha256"
done

# replace the previous build
rm -rf "$out/rootfs" "$out/rootfs.tar.gz" "$out/disk.qcow2"
mv rootfs rootfs.tar.gz rootfs.tar.gz.sha256 disk.qcow2 disk.qcow2.sha256 "$out/"
echo "$stamp_sum" > "$out/stamp"
echo "built: $out ($(du -sh "$out/rootfs.tar.gz" | cut -f1) tarball, $(du -sh "$out/disk.qcow2" | cut -f1) disk)"
