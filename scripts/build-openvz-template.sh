#!/usr/bin/env bash
# Build a small openvz template (a root file system tarball) from installed Debian packages:
# busybox-static for the userland and init, iproute2's ip and tc. Nothing is downloaded.
#
# usage: build-openvz-template.sh [OUTDIR [NAME [FORMAT...]]]
#   OUTDIR   where the template goes (default /var/cache/containerize/openvz)
#   NAME     template name (default busybox); the file is OUTDIR/NAME.tar.gz
#   FORMAT   tar.gz (default), tar.xz, tar.zst or tar; several write one file each
#
# The root boots under systemd-nspawn --boot (and any container runtime that starts /sbin/init):
# busybox init runs /etc/init.d/rcS, which brings lo up and runs /etc/rc.local when it is
# executable, as DETER's containers did. /etc/os-release marks it as an OS tree for nspawn.
# Running it again rebuilds only when this script or the binaries it copies changed.
set -euo pipefail

out=${1:-/var/cache/containerize/openvz}
name=${2:-busybox}
shift $(( $# > 2 ? 2 : $# ))
formats=("$@")
((${#formats[@]})) || formats=(tar.gz)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/busybox-root.sh
source "$here/lib/busybox-root.sh"
for tool in busybox ip tc tar gzip sha256sum ldd; do
    command -v "$tool" >/dev/null || { echo "build-openvz-template: $tool is missing (scripts/install.sh installs it)" >&2; exit 1; }
done
for format in "${formats[@]}"; do
    case $format in
        tar.gz|tar) ;;
        tar.xz) command -v xz >/dev/null || { echo "build-openvz-template: xz is missing" >&2; exit 1; } ;;
        tar.zst) command -v zstd >/dev/null || { echo "build-openvz-template: zstd is missing" >&2; exit 1; } ;;
        *) echo "build-openvz-template: unknown format $format (tar.gz, tar.xz, tar.zst, tar)" >&2; exit 2 ;;
    esac
done
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || { echo "build-openvz-template: bad name $name" >&2; exit 2; }
busybox_bin=$(command -v busybox)

# (the digests only: the same script run from another checkout must not rebuild the template)
stamp_sum=$(sha256sum "$here/build-openvz-template.sh" "$here/lib/busybox-root.sh" "$busybox_bin" "$(command -v ip)" "$(command -v tc)" \
    | cut -d' ' -f1 | sha256sum | cut -d' ' -f1)
stamp=$out/.$name.stamp
all_there=true
for format in "${formats[@]}"; do
    [[ -f $out/$name.$format ]] || all_there=false
done
if $all_there && [[ -f $stamp && $(cat "$stamp") == "$stamp_sum" ]]; then
    echo "unchanged: $out/$name (${formats[*]})"
    exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin usr/lib lib lib64 etc/init.d dev proc sys tmp run root var/log var/run \
    var/containers users proj groups share
chmod 1777 tmp

# busybox with its applets, iproute2's ip and tc with their libraries (scripts/lib/busybox-root.sh)
install_busybox
install_iproute2

cat > etc/inittab <<'EOF'
::sysinit:/etc/init.d/rcS
::shutdown:/etc/init.d/rcK
EOF

cat > etc/init.d/rcS <<'EOF'
#!/bin/sh
# boot of the containerize busybox template (busybox init)
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -e /proc/mounts ] || mount -t proc proc /proc
[ -f /etc/hostname ] && hostname -F /etc/hostname
ip link set dev lo up 2>/dev/null
[ -x /etc/rc.local ] && /etc/rc.local
exit 0
EOF

cat > etc/init.d/rcK <<'EOF'
#!/bin/sh
# shutdown of the containerize busybox template
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
killall5 -TERM 2>/dev/null
sleep 1
killall5 -KILL 2>/dev/null
exit 0
EOF
chmod 0755 etc/init.d/rcS etc/init.d/rcK

install_accounts
echo localhost > etc/hostname
printf '127.0.0.1 localhost\n' > etc/hosts
cat > usr/lib/os-release <<EOF
NAME="containerize busybox template"
ID=containerize-busybox
PRETTY_NAME="containerize busybox template ($name)"
EOF
ln -s ../usr/lib/os-release etc/os-release
cd "$work"

for format in "${formats[@]}"; do
    case $format in
        tar.gz) tar --numeric-owner -C root -czf "$name.$format" . ;;
        tar.xz) tar --numeric-owner -C root -cJf "$name.$format" . ;;
        tar.zst) tar --numeric-owner -C root --zstd -cf "$name.$format" . ;;
        tar) tar --numeric-owner -C root -cf "$name.$format" . ;;
    esac
    mv "$name.$format" "$out/$name.$format"
done
echo "$stamp_sum" > "$stamp"
echo "built: $out/$name (${formats[*]}), $(du -sh root | cut -f1) unpacked"
