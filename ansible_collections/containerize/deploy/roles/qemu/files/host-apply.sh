#!/bin/sh
# containerize: apply a node's configuration to a rootfs node's root on the pnode, before qemu
# starts (the qemu role's files/host-apply.sh, run by the qemu_nodes module with the pnode's static
# busybox, in a private mount namespace).
# usage: host-apply.sh ROOT CONFIG BUSYBOX [check]
set -e
R=$1 C=$2 B=$3
[ -d "$R/dev" ] || mkdir "$R/dev"
mount -t tmpfs -o mode=0755,size=32m cz-apply "$R/dev"
mknod -m 0666 "$R/dev/null" c 1 3
mkdir -p "$R/dev/cz/bin" "$R/dev/cz/tmp"
cp "$B" "$R/dev/cz/busybox"
for applet in $("$B" --list); do ln -s /dev/cz/busybox "$R/dev/cz/bin/$applet"; done
cp -r "$C" "$R/dev/cz/cfg"
exec chroot "$R" /dev/cz/busybox env PATH=/dev/cz/bin TMPDIR=/dev/cz/tmp \
    /dev/cz/busybox sh /dev/cz/cfg/apply.sh / /dev/cz/cfg "$4"
