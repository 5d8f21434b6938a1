#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: realize every qemu guest of one pnode (images, configuration, VMs, boot status).

Run as a program, it is also the host side of `containerize exec` for qemu nodes:
    python3 qemu_guests.py exec NODE_DIR [--timeout SECONDS] -- CMD [ARGS...]
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: qemu_guests
short_description: Realize the qemu guests of one pnode
description:
  - Makes every C(qemu) guest planned for this pnode (C(containerize_guests) of
    C(host_vars/pnode-NNNN.yml)) run as a supervised C(qemu-system-ARCH) virtual machine, in one call.
  - B(Images.) A guest boots from C(qemu_url) of its entry, else O(default_url). A directory or a
    tarball (C(.tar), C(.tar.gz), C(.tgz), C(.tar.xz), C(.tar.zst), C(.tar.bz2)) is a I(rootfs) image;
    anything else is a I(disk) image (raw or qcow2, optionally compressed with gzip, xz, bzip2 or
    zstd). Local paths and C(http(s)) URLs are fetched once per pnode into O(image_cache) and verified
    by SHA-256 (from O(checksums), a C(#sha256=HEX) URL fragment, or a C(URL.sha256) file beside the
    image; an image without any is used with a warning). A directory is used in place.
  - Per node, a rootfs image gets a copy-on-write root directory (an overlayfs of the image,
    C(root/qemu/EXP/NODE/root)) that qemu serves as the guest's root file system over 9p; a disk image
    gets a qcow2 overlay C(root/qemu/EXP/NODE/disk.qcow2) backed by the cached image.
  - B(Boot.) Every guest boots the pnode's kernel (O(kernel), default the newest C(/boot/vmlinuz-*),
    the Debian C(linux-image-amd64)) with a small busybox initramfs built by this module (cached in
    O(image_cache)). The initramfs loads the virtio, 9p and file system modules, mounts the root (9p
    or the first disk partition holding C(/sbin/init)), mounts the pnode's C(/lib/modules/VERSION) read-only
    in the guest so the guest can load any module of its kernel, applies the node's configuration
    (disk images) and switches to the image's own C(/sbin/init).
  - B(Configuration) is rendered per node in C(root/qemu/EXP/NODE/config/) and applied by one
    POSIX shell script (C(apply.sh)) before the image's init runs. For a rootfs image it is applied on
    the pnode before qemu starts (chrooted into the node's root with the pnode's static busybox, in a
    private mount namespace); for a disk image the initramfs applies it from a read-only 9p share.
    It writes C(/etc/hostname), C(/etc/hosts), a marked block of 9p lines in C(/etc/fstab)
    (C(/var/containers) and every share of O(shares)), the accounts of O(users) (added to
    C(/etc/passwd), C(/etc/group), C(/etc/shadow) when missing), C(/etc/containerize/) (C(boot.sh),
    C(agent.sh) and the node's plan) and a marked block in C(/etc/rc.local) (plus a systemd unit and an
    OpenRC C(local.d) script when the image has those) that runs C(/etc/containerize/boot.sh) at every
    boot.
  - C(boot.sh) (in the guest, once per boot) mounts the 9p file systems, sets the hostname, finds each
    planned interface by its MAC, names it as planned and gives it its address, sets the routes,
    IPv4 forwarding and end-node shaping (C(tc) C(tbf), or C(netem) when delay or loss is planned; the
    guest kernel has C(netem)), writes C(/var/containers/log/booted) and prints a marker line on the
    serial console, starts the exec agent and runs the start command as C(sh -c STARTCMD) with
    C(start_command.log) (C(start TIME), C(exit N), C(end TIME)), C(.out) and C(.err) in
    C(/var/containers/log). C(/var/containers) is the node directory C(root/nodes/EXP/NODE) (C(pid),
    C(eid), C(log/), C(exec/)) served over 9p.
  - B(Networking.) One C(-netdev vde) per interface on the planned switch (C(run_dir/SWITCH.ctl)) and
    port, with a C(virtio-net-pci) device carrying the planned MAC.
  - B(Lifecycle.) qemu runs daemonized with a pid file C(run_dir/NODE.qemu.pid), a QMP socket
    C(run_dir/NODE.qmp), its serial console in C(run_dir/NODE.serial.log) and a record
    C(run_dir/NODE.qemu.json) (argv, configuration hash, switch pids, start time). A guest is started
    when it is not running; it is stopped and started again when its argv or configuration changed or
    one of its switches was restarted since it started. A running guest whose plan did not change is
    left alone. Acceleration is KVM when O(accel=kvm), TCG when O(accel=tcg); O(accel=auto) probes KVM
    once per pnode (the kernel must print on the serial console within O(accel_probe_timeout)
    seconds) and falls back to TCG; the result is cached in O(image_cache).
  - B(Status.) Each guest is C(dead) (no qemu), C(running) (qemu runs, the guest has not reported) or
    C(booted) (the guest wrote C(log/booted) or printed its marker on the serial console since qemu
    started), with the start command's exit status once known. With O(wait_booted) the module waits
    up to O(boot_timeout) seconds for every guest to boot and fails naming those that did not, with
    the end of their serial console.
  - With O(state=absent), guests are powered down (QMP C(system_powerdown)), after O(stop_timeout)
    seconds told to C(quit), then killed; their overlays are unmounted and their disks, root
    directories, node directories, sockets, logs and records removed. Guests are found from
    O(guests), the records in O(run_dir) and C(root/qemu/EXP), so a half-failed swap-in is cleaned too.
    The image cache stays (it is per pnode) unless O(purge_cache).
version_added: "0.1.0"
author:
  - containerize authors
options:
  root:
    description: Pnode root (C(containerize_root)).
    type: path
    default: /var/containers
  run_dir:
    description: Runtime directory of the experiment on this pnode (C(root/run/EXP_TAG)).
    type: path
    required: true
  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id, written to the node's C(pid) file.
    type: str
    required: true
  experiment:
    description: Experiment id, written to the node's C(eid) file.
    type: str
    required: true
  hosts:
    description: Content of C(/etc/hosts) in every guest.
    type: str
    default: "127.0.0.1 localhost\n"
  guests:
    description:
      - The guests of this pnode (C(containerize_guests)); entries of another C(kind) are ignored.
      - Keys used are C(name), C(kind), C(ghost), C(hostname), C(startcmd), C(forwarding),
        C(interfaces) (C({ifname, switch, port, mac, address, prefix, tc})), C(routes)
        (C({dest, gateway})), C(qemu_url), C(qemu_arch) and, when present, C(qemu_memory) (MiB) and
        C(qemu_cpus). Other keys are ignored.
    type: list
    elements: dict
    default: []
  default_url:
    description: Image of guests whose C(qemu_url) is empty (the site's C(qemu_url)).
    type: str
    default: ""
  checksums:
    description: Expected checksums, a dict from URL or path to C(sha256:HEX).
    type: dict
    default: {}
  image_cache:
    description: Per-pnode cache of fetched images, the initramfs and the KVM probe result (default C(root/images)).
    type: path
  kernel:
    description:
      - Kernel every guest boots (default the newest C(/boot/vmlinuz-*)).
      - Its modules must be in C(/lib/modules/VERSION).
    type: path
  kernel_append:
    description: Extra kernel command line arguments.
    type: str
    default: ""
  initramfs_modules:
    description: Kernel modules the initramfs always loads (with their dependencies).
    type: list
    elements: str
    default: [virtio_pci, virtio_blk, 9pnet_virtio, 9p]
  initramfs_filesystems:
    description:
      - File system modules the initramfs loads one at a time, in this order, until a disk image's
        root mounts (not loaded for rootfs images, whose root is 9p).
    type: list
    elements: str
    default: [ext4, xfs, btrfs]
  busybox:
    description: Static busybox used in the initramfs and to apply configuration on the pnode.
    type: path
    default: /bin/busybox
  accel:
    description: C(kvm), C(tcg), or C(auto) (probe KVM once, fall back to TCG).
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  accel_probe_timeout:
    description: Seconds a KVM guest has to print on its serial console in the probe.
    type: float
    default: 5.0
  machine:
    description: qemu machine type (site C(qemu_host_hw)).
    type: str
    default: pc
  memory:
    description: Guest memory in MiB (a guest's C(qemu_memory) wins).
    type: int
    default: 512
  cpus:
    description: Guest virtual CPUs (a guest's C(qemu_cpus) wins).
    type: int
    default: 1
  tcg_tb_size:
    description:
      - Size in MiB of TCG's translated code cache per guest; 0 keeps qemu's default (1024 MiB,
        allocated lazily). Smaller saves some resident memory but slows the boot (16 MiB saves about
        60 MiB per guest and doubles the boot time). Ignored under KVM.
    type: int
    default: 0
  shares:
    description:
      - Pnode directories served to every guest over 9p and mounted from C(/etc/fstab)
        (C(trans=virtio)). A share whose I(path) does not exist is left out, with a warning.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Share name; the 9p mount tag is C(cz-NAME).
        type: str
        required: true
      path:
        description: Directory on the pnode.
        type: path
        required: true
      mount:
        description: Mount point in the guest.
        type: str
        required: true
      readonly:
        description: Serve and mount it read-only.
        type: bool
        default: false
  users:
    description:
      - Accounts to create in every guest (C(--qemu-prefer-users)). A name is looked up in the
        pnode's user database (warning and skipped when unknown); a dict gives C(name), C(uid) and
        optionally C(gid), C(group), C(home) (default C(/users/NAME)) and C(shell) (default C(/bin/sh)).
    type: list
    elements: raw
    default: []
  state:
    description: C(present) realizes the guests, C(absent) removes every qemu guest of the experiment.
    type: str
    choices: [present, absent]
    default: present
  wait_booted:
    description: Wait until every guest has booted (state=present).
    type: bool
    default: true
  boot_timeout:
    description: Seconds to wait for the guests to boot.
    type: float
    default: 600
  stop_timeout:
    description: Seconds a guest has to power down before it is told to quit, then killed.
    type: float
    default: 20
  timeout:
    description: Seconds to wait for qemu to start or a helper command to finish.
    type: float
    default: 30
  workers:
    description: Guests prepared and started in parallel.
    type: int
    default: 4
  purge_cache:
    description: With O(state=absent), remove O(image_cache) too.
    type: bool
    default: false
notes:
  - Supports check mode (nothing is fetched, written, started or stopped; the result lists what
    would change) and diff mode (a summary per changed guest).
  - Run the C(vde_network) module first, the guests need their switches.
  - C(containerize exec) for qemu nodes runs this file as a program, see C(docs/qemu.md).
requirements:
  - qemu-system-x86 (or the qemu-system package of the guests' architecture)
  - qemu-utils
  - busybox-static
  - linux-image-amd64 (the guests' kernel)
  - util-linux (unshare, mount)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Realize the qemu guests of this pnode and wait until they booted
  qemu_guests:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts: |
      127.0.0.1 localhost
      10.0.0.1 a a-lan0
    guests: "{{ containerize_guests | selectattr('kind', 'equalto', 'qemu') | list }}"
    default_url: /var/cache/containerize/test-image/rootfs.tar.gz
    shares:
      - {name: users, path: /users, mount: /users}
      - {name: share, path: /share, mount: /share, readonly: true}
    memory: 256
    boot_timeout: 300

- name: Remove them
  qemu_guests:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    project: proj
    experiment: exp
    state: absent
"""

RETURN = r"""
guests:
  description: For each guest that changed (or would), the list of things done.
  returned: always
  type: dict
  sample:
    a: [node directory, config, root, start]
status:
  description: Per guest, its state (C(dead), C(running), C(booted)), qemu pid and start command exit status.
  returned: always
  type: dict
  sample:
    a: {state: booted, pid: 4242, exit: 0}
    b: {state: running, pid: 4250, exit: null}
started:
  description: Guests started (they were not running).
  returned: always
  type: list
  elements: str
restarted:
  description: Guests stopped and started again (changed plan or configuration, restarted switch).
  returned: always
  type: list
  elements: str
stopped:
  description: Guests stopped and removed (absent, or no longer planned).
  returned: always
  type: list
  elements: str
accel:
  description: Acceleration used for the guests, C(kvm) or C(tcg).
  returned: state=present
  type: str
  sample: tcg
"""

import bz2
import concurrent.futures
import grp
import gzip
import hashlib
import io
import json
import lzma
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    kill_many,
    proc_alive,
    read_json,
    read_pid,
    read_text,
    remove_path,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run as run_argv
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
NS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUN_PATH_MAX = 107
BOOTED_MARKER = "containerize: booted"
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.bz2", ".tbz2")
COMPRESSED = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2", ".zst": "zstd"}
ARCH_BINARY = {
    "x86_64": "qemu-system-x86_64",
    "amd64": "qemu-system-x86_64",
    "i386": "qemu-system-i386",
    "i686": "qemu-system-i386",
    "aarch64": "qemu-system-aarch64",
    "arm64": "qemu-system-aarch64",
}
NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=262144"

# ----------------------------------------------------------------------------------------------
# guest-side scripts (POSIX sh; they run under busybox or any distribution's /bin/sh)

INIT = r"""#!/bin/busybox sh
# containerize initramfs, written by the qemu_guests module: load modules, mount the guest's
# root, apply its configuration (disk images), switch to the image's own init.
/bin/busybox mkdir -p /bin /proc /sys /dev /newroot /cz /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
log() { echo "containerize-initramfs: $*" > /dev/console; }
fail() { log "$*; powering off"; sleep 1; poweroff -f; }
for m in $(cat /modules/order); do insmod "/modules/$m" 2>/dev/null; done
root=auto
init=/sbin/init
for arg in $(cat /proc/cmdline); do
    case $arg in
        cz.root=*) root=${arg#cz.root=} ;;
        cz.init=*) init=${arg#cz.init=} ;;
    esac
done
opts=__NINEP_OPTS__
has_tag() { cat /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null | tr '\000' '\n' | grep -qx "$1"; }
is_root() {
    [ -e /newroot/sbin/init ] || [ -L /newroot/sbin/init ] || [ -e "/newroot$init" ] || [ -L "/newroot$init" ]
}
mounted=
case $root in
    9p:*)
        mount -t 9p -o "$opts,cache=loose" "${root#9p:}" /newroot && mounted=1 ;;
    *)
        # file system modules are loaded one by one until a device holding the root mounts
        filesystems=$(cat /modules/filesystems)
        i=0
        while [ -z "$mounted" ] && [ $i -lt 100 ]; do
            if [ "$root" = auto ]; then
                devs=$(ls /dev/vd[a-z]* /dev/sd[a-z]* 2>/dev/null)
            else
                devs=$root
            fi
            for dev in $devs; do
                [ -b "$dev" ] || continue
                if mount -o rw "$dev" /newroot 2>/dev/null; then
                    if is_root; then mounted=1; break; fi
                    umount /newroot
                fi
            done
            [ -n "$mounted" ] && break
            if [ -n "$filesystems" ]; then
                fs=${filesystems%% *}
                filesystems=${filesystems#"$fs"}
                filesystems=${filesystems# }
                for m in $(cat "/modules/fs-$fs"); do insmod "/modules/$m" 2>/dev/null; done
                continue
            fi
            sleep 0.1
            i=$((i + 1))
        done ;;
esac
[ -n "$mounted" ] || fail "no root file system found (cz.root=$root)"
log "root mounted ($root)"
kv=$(uname -r)
if has_tag cz-modules; then
    mkdir -p "/newroot/lib/modules/$kv" 2>/dev/null
    mount -t 9p -o "$opts,ro" cz-modules "/newroot/lib/modules/$kv" || log "cannot mount the kernel modules"
fi
if has_tag cz-config; then
    if mount -t 9p -o "$opts,ro" cz-config /cz; then
        sh /cz/apply.sh /newroot /cz > /dev/console 2>&1 || log "configuration failed"
        umount /cz
    else
        log "cannot mount the configuration"
    fi
fi
[ -d /newroot/dev ] && mount --move /dev /newroot/dev
umount /sys /proc 2>/dev/null
exec switch_root /newroot "$init"
fail "switch_root to $init failed"
""".replace("__NINEP_OPTS__", NINEP_OPTS)

APPLY = r"""#!/bin/sh
# containerize: apply a node's configuration to its root directory. Written by the qemu_guests
# module; runs in the guest's initramfs (disk images) or chrooted on the pnode (rootfs images).
# usage: apply.sh ROOT CONFIG [check]     prints "changed WHAT" for each change (made or, with check, due)
R=${1%/}
C=$2
CHECK=${3:-}
BEGIN='# BEGIN containerize'
END='# END containerize'
T=${TMPDIR:-/tmp}/cz-apply.$$
mkdir -p "$T" || exit 1
trap 'rm -rf "$T"' EXIT
changed() { echo "changed $1"; }

# put SRC DEST MODE WHAT: make DEST a copy of SRC with MODE
put() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        return 0
    fi
    changed "$4"
    [ -n "$CHECK" ] && return 0
    mkdir -p "$(dirname "$2")"
    rm -f "$2.cz-new"
    cat "$1" > "$2.cz-new" && chmod "$3" "$2.cz-new" && mv -f "$2.cz-new" "$2"
}

# block FILE BLOCK MODE WHAT [HEAD]: FILE keeps its lines outside our markers and gets BLOCK
# between them (before a final "exit 0" line, if any); HEAD starts a file that did not exist
block() {
    if [ -f "$1" ]; then
        awk -v b="$BEGIN" -v e="$END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$1" > "$T/rest"
    elif [ -n "$5" ]; then
        printf '%s\n' "$5" > "$T/rest"
    else
        : > "$T/rest"
    fi
    { echo "$BEGIN"; cat "$2"; echo "$END"; } > "$T/block"
    awk -v blk="$T/block" '
        { line[NR] = $0 }
        /^[ \t]*exit 0[ \t]*$/ { last = NR }
        END {
            for (i = 1; i <= NR; i++) {
                if (i == last) { while ((getline l < blk) > 0) print l; done = 1 }
                print line[i]
            }
            if (!done) while ((getline l < blk) > 0) print l
        }' "$T/rest" > "$T/new"
    put "$T/new" "$1" "$3" "$4"
}

# the node's own files
put "$C/hostname" "$R/etc/hostname" 0644 hostname
put "$C/hosts" "$R/etc/hosts" 0644 hosts
for f in "$C"/etc-containerize/*; do
    name=${f##*/}
    mode=0644
    case $name in *.sh) mode=0755 ;; esac
    put "$f" "$R/etc/containerize/$name" "$mode" "containerize/$name"
done
block "$R/etc/fstab" "$C/fstab" 0644 fstab
block "$R/etc/rc.local" "$C/rc.local" 0755 rc.local '#!/bin/sh'
if [ -f "$R/etc/rc.local" ] && [ ! -x "$R/etc/rc.local" ]; then
    changed rc.local
    [ -n "$CHECK" ] || chmod 0755 "$R/etc/rc.local"
fi
while read -r dir; do
    [ -n "$dir" ] || continue
    if [ ! -d "$R$dir" ]; then
        changed "mkdir $dir"
        [ -n "$CHECK" ] || mkdir -p "$R$dir"
    fi
done < "$C/mounts"

# init systems that do not run /etc/rc.local by themselves
if [ -d "$R/etc/systemd/system" ]; then
    put "$C/containerize.service" "$R/etc/systemd/system/containerize.service" 0644 systemd
    link=$R/etc/systemd/system/multi-user.target.wants/containerize.service
    if [ "$(readlink "$link" 2>/dev/null)" != /etc/systemd/system/containerize.service ]; then
        changed "systemd enable"
        if [ -z "$CHECK" ]; then
            mkdir -p "${link%/*}"
            rm -f "$link"
            ln -s /etc/systemd/system/containerize.service "$link"
        fi
    fi
fi
if [ -d "$R/etc/local.d" ]; then
    put "$C/rc.local" "$R/etc/local.d/containerize.start" 0755 openrc
fi

# accounts (added when missing; existing entries are left alone)
for db in passwd group shadow; do
    [ -s "$C/$db" ] || continue
    [ "$db" = shadow ] && [ ! -f "$R/etc/shadow" ] && continue
    while IFS= read -r line; do
        name=${line%%:*}
        if ! grep -q "^$name:" "$R/etc/$db" 2>/dev/null; then
            changed "$db $name"
            [ -n "$CHECK" ] || echo "$line" >> "$R/etc/$db"
        fi
    done < "$C/$db"
done
exit 0
"""

BOOT = r"""#!/bin/sh
# containerize: configure the node at every boot and run its start command. Written by the
# qemu_guests module; run from /etc/rc.local (or the containerize systemd unit, or OpenRC local.d).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
D=/etc/containerize
bid=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo boot)
mkdir -p /run 2>/dev/null
mkdir "/run/containerize.$bid" 2>/dev/null || exit 0
. "$D/settings"
LOGF=/run/containerize.$bid/boot.log
log() {
    echo "containerize: $*" > /dev/console 2>/dev/null
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$LOGF"
}

# 9p file systems of the fstab block (mount -a may have done it already)
awk '$0 == "# BEGIN containerize" {on = 1; next} $0 == "# END containerize" {on = 0} on && $3 == "9p"' \
    /etc/fstab > "/run/containerize.$bid/fstab"
while read -r dev mnt _type opts _rest; do
    mkdir -p "$mnt" 2>/dev/null
    grep -q " $mnt 9p " /proc/mounts || mount -t 9p -o "$opts" "$dev" "$mnt" || log "cannot mount $mnt"
done < "/run/containerize.$bid/fstab"
L=/var/containers/log
mkdir -p "$L"
cat "$LOGF" > "$L/boot.log" 2>/dev/null && LOGF=$L/boot.log

hostname "$HOSTNAME" 2>/dev/null || echo "$HOSTNAME" > /proc/sys/kernel/hostname

# iproute2's ip and tc when the image has them (a busybox shell prefers its own, smaller applets)
tool() {
    for dir in /usr/sbin /sbin /usr/bin /bin; do
        if [ -x "$dir/$1" ] && [ ! -L "$dir/$1" ]; then
            echo "$dir/$1"
            return
        fi
    done
    echo "$1"
}
IP=$(tool ip)
TC=$(tool tc)

# interfaces, found by MAC (their driver is loaded here when no udev did it): first every planned
# one to a temporary name, then to its own
"$IP" link set dev lo up
macs=$(awk '{print $1}' "$D/net")
have_all() {
    for mac in $macs; do
        grep -qix "$mac" /sys/class/net/*/address 2>/dev/null || return 1
    done
}
if ! have_all; then
    modprobe virtio_net 2>/dev/null
    n=0
    while ! have_all && [ $n -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
fi
i=0
while read -r mac ifname _rest; do
    tmp=cztmp$i
    i=$((i + 1))
    dev=
    for d in /sys/class/net/*; do
        [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && dev=${d##*/}
    done
    if [ -z "$dev" ]; then
        log "no interface with MAC $mac (for $ifname)"
        continue
    fi
    if [ "$dev" != "$ifname" ]; then
        "$IP" link set dev "$dev" down
        "$IP" link set dev "$dev" name "$tmp" || log "cannot rename $dev"
    fi
done < "$D/net"
i=0
while read -r mac ifname cidr tcargs; do
    tmp=cztmp$i
    i=$((i + 1))
    if [ -e "/sys/class/net/$tmp" ]; then
        "$IP" link set dev "$tmp" name "$ifname" || log "cannot name $tmp $ifname"
    fi
    [ -e "/sys/class/net/$ifname" ] || continue
    "$IP" addr flush dev "$ifname"
    "$IP" addr add "$cidr" broadcast + dev "$ifname" || log "cannot set $cidr on $ifname"
    "$IP" link set dev "$ifname" up
    if [ -n "$tcargs" ]; then
        # shellcheck disable=SC2086
        "$TC" qdisc replace dev "$ifname" root $tcargs || log "cannot shape $ifname: tc qdisc replace root $tcargs"
    fi
done < "$D/net"
while read -r dest gateway; do
    [ -n "$dest" ] || continue
    "$IP" route replace "$dest" via "$gateway" || log "cannot route $dest via $gateway"
done < "$D/routes"
echo "$FORWARDING" > /proc/sys/net/ipv4/ip_forward

echo "booted $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$L/booted"
log "booted $NODE"

# the exec agent and the start command
mkdir -p /var/containers/exec
setsid sh "$D/agent.sh" < /dev/null > /dev/null 2>&1 &
if [ -s "$D/startcmd" ]; then
    (
        cd / || exit 1
        echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$L/start_command.log"
        HOME=/root sh -c "$(cat "$D/startcmd")" < /dev/null > "$L/start_command.out" 2> "$L/start_command.err"
        rc=$?
        echo "exit $rc" >> "$L/start_command.log"
        echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$L/start_command.log"
    ) < /dev/null > /dev/null 2>&1 &
fi
exit 0
"""

AGENT = r"""#!/bin/sh
# containerize exec agent, written by the qemu_guests module: runs the commands the pnode drops in
# /var/containers/exec (ID.cmd, a shell script) and leaves ID.out, ID.err and ID.rc there.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
X=/var/containers/exec
while :; do
    for f in "$X"/*.cmd; do
        [ -e "$f" ] || continue
        id=${f%.cmd}
        mv "$f" "$id.run" 2>/dev/null || continue
        (
            cd / && HOME=/root sh "$id.run" < /dev/null > "$id.out" 2> "$id.err"
            echo $? > "$id.rc.new"
            mv "$id.rc.new" "$id.rc"
        ) &
    done
    sleep 0.2
done
"""

RC_LOCAL_BLOCK = "/etc/containerize/boot.sh\n"

SYSTEMD_UNIT = """[Unit]
Description=containerize node configuration and start command
After=local-fs.target network.target
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
KillMode=process
ExecStart=/etc/containerize/boot.sh

[Install]
WantedBy=multi-user.target
"""

HOST_APPLY = r"""set -e
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
"""


# ----------------------------------------------------------------------------------------------
# process helpers (the same few functions live in vde_network.py and process_nodes.py: modules ship alone)


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def run(argv, stdin=None, timeout=60):
    """run_argv() with this module's default timeout (image tools)."""
    return run_argv(argv, stdin, timeout)


def write_file(path, data, mode=0o644):
    """Atomically make PATH hold DATA (str or bytes) with MODE; True when it changed."""
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(path, "rb") as handle:
            same = handle.read() == data
        if same and stat.S_IMODE(os.stat(path).st_mode) == mode:
            return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def short_hash(value):
    return None if value is None else hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12]


def qopt(value):
    """Escape a value for a qemu -option list (commas are doubled)."""
    return str(value).replace(",", ",,")


def mountpoints():
    points = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4:
                    points.add(fields[4].encode().decode("unicode_escape"))
    except OSError:
        pass
    return points


def is_static_elf(path):
    """True when PATH is an ELF executable without a program interpreter."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            order = "little" if head[5] == 1 else "big"
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except OSError:
        return False
    return all(int.from_bytes(table[i : i + 4], order) != 3 for i in range(0, len(table), phentsize))


# ----------------------------------------------------------------------------------------------
# initramfs (newc cpio, gzip)


def cpio_newc(entries):
    """ENTRIES: (name, mode, data or None, rdev (major, minor) or None). Returns the archive bytes."""
    out = io.BytesIO()
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", None)], start=1):
        data = data or b""
        name_b = name.encode() + b"\0"
        major, minor = rdev or (0, 0)
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name_b), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(name_b)
        out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
    return out.getvalue()


def kernel_version(kernel):
    base = os.path.basename(kernel)
    return base[len("vmlinuz-") :] if base.startswith("vmlinuz-") else None


def default_kernel():
    def key(path):
        return [int(p) if p.isdigit() else -1 for p in re.split(r"[.-]", kernel_version(path) or "")]

    kernels = [os.path.join("/boot", n) for n in os.listdir("/boot") if n.startswith("vmlinuz-")]
    kernels = [k for k in kernels if os.path.isdir(f"/lib/modules/{kernel_version(k)}")]
    return max(kernels, key=key) if kernels else None


def module_files(version, names):
    """Ordered .ko files (with dependencies) of NAMES for kernel VERSION; unknown names are skipped."""
    files = []
    for name in names:
        rc, out, _err = run(["modprobe", "-S", version, "--show-depends", name])
        if rc != 0:
            continue
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod" and parts[1] not in files:
                files.append(parts[1])
    return files


def initramfs_plan(ctx):
    """(path, builder) of the initramfs for CTX's kernel: the name hashes everything it holds.

    modules/order lists the modules always loaded; modules/filesystems the file systems tried one
    by one (each with its dependencies in modules/fs-NAME) until a disk root mounts.
    """
    base = module_files(ctx.kernel_version, ctx.initramfs_modules)
    filesystems = {}
    for fs in ctx.initramfs_filesystems:
        files = [f for f in module_files(ctx.kernel_version, [fs]) if f not in base]
        if files:
            filesystems[fs] = files
    every = base + [f for files in filesystems.values() for f in files if f not in base]
    every = list(dict.fromkeys(every))
    digest = hashlib.sha256(INIT.encode())
    digest.update(sha256_file(ctx.busybox).encode())
    digest.update(json.dumps([base, filesystems]).encode())
    for path in every:
        st = os.stat(path)
        digest.update(f"{path}:{st.st_size}:{int(st.st_mtime)}".encode())
    path = os.path.join(ctx.cache, f"initramfs-{ctx.kernel_version}-{digest.hexdigest()[:12]}.img")

    def listing(files):
        return ("".join(f"{os.path.basename(f)}\n" for f in files)).encode()

    def build():
        entries = [(d, 0o40755, None, None) for d in ("bin", "dev", "proc", "sys", "newroot", "cz", "tmp", "modules")]
        entries.append(("dev/console", 0o20600, None, (5, 1)))
        entries.append(("dev/null", 0o20666, None, (1, 3)))
        with open(ctx.busybox, "rb") as handle:
            entries.append(("bin/busybox", 0o100755, handle.read(), None))
        entries.append(("init", 0o100755, INIT.encode(), None))
        for ko in every:
            with open(ko, "rb") as handle:
                entries.append((f"modules/{os.path.basename(ko)}", 0o100644, handle.read(), None))
        entries.append(("modules/order", 0o100644, listing(base), None))
        entries.append(("modules/filesystems", 0o100644, " ".join(filesystems).encode() + b"\n", None))
        for fs, files in filesystems.items():
            entries.append((f"modules/fs-{fs}", 0o100644, listing(files), None))
        os.makedirs(ctx.cache, mode=0o755, exist_ok=True)
        write_file(path, gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0))

    return path, build


# ----------------------------------------------------------------------------------------------
# images


def split_url(url):
    """(url without fragment, {fragment key: value})."""
    base, _sep, fragment = url.partition("#")
    return base, dict(urllib.parse.parse_qsl(fragment))


def image_kind(url):
    base, frag = split_url(url)
    if frag.get("kind") in ("rootfs", "disk"):
        return frag["kind"]
    path = urllib.parse.urlparse(base).path if "://" in base else base
    if "://" not in base and os.path.isdir(path):
        return "rootfs"
    return "rootfs" if path.endswith(TAR_SUFFIXES) else "disk"


class Image:
    """One base image in the pnode's cache (a local directory is used in place)."""

    def __init__(self, ctx, url):
        self.ctx = ctx
        self.url = url
        self.base_url, frag = split_url(url)
        self.kind = image_kind(url)
        self.remote = self.base_url.startswith(("http://", "https://"))
        self.local_dir = None if self.remote or not os.path.isdir(self.base_url) else os.path.abspath(self.base_url)
        self.key = hashlib.sha256(self.base_url.encode()).hexdigest()[:16]
        self.dir = os.path.join(ctx.cache, self.key)
        self.meta_path = os.path.join(self.dir, "meta.json")
        want = ctx.checksums.get(url) or ctx.checksums.get(self.base_url) or frag.get("sha256")
        if want and ":" in want:
            algo, _colon, want = want.partition(":")
            if algo.lower() != "sha256":
                raise RuntimeError(f"image {url}: only sha256 checksums are supported, not {algo}")
        self.want = want.lower() if want else None

    def meta(self):
        return read_json(self.meta_path) or {}

    @property
    def base(self):
        """The rootfs directory or disk file guests use (None before the image is fetched)."""
        if self.local_dir:
            return self.local_dir
        name = self.meta().get("base")
        return os.path.join(self.dir, name) if name else None

    @property
    def ident(self):
        """What identifies this version of the image: its sha256, or the directory used in place."""
        return self.local_dir or self.meta().get("sha256")

    def _source_stat(self):
        if self.remote:
            return None
        st = os.stat(self.base_url)
        return [st.st_size, int(st.st_mtime)]

    def ready(self):
        """True when the cached copy is there and still matches its source and checksum."""
        if self.local_dir:
            return True
        meta = self.meta()
        if meta.get("url") != self.base_url or not self.base or not os.path.exists(self.base):
            return False
        if self.want and meta.get("sha256") != self.want:
            return False
        if not self.remote:
            try:
                if meta.get("source") != self._source_stat():
                    return False
            except OSError:
                return True  # the source went away: keep using the verified copy
        return True

    def disk_format(self):
        return self.meta().get("format", "raw")

    def _open_source(self):
        if self.remote:
            request = urllib.request.Request(self.base_url, headers={"User-Agent": "containerize"})  # noqa: S310
            return urllib.request.urlopen(request, timeout=self.ctx.timeout)  # noqa: S310
        return open(self.base_url, "rb")

    def _sidecar_checksum(self):
        try:
            if self.remote:
                request = urllib.request.Request(self.base_url + ".sha256", headers={"User-Agent": "containerize"})  # noqa: S310
                with urllib.request.urlopen(request, timeout=self.ctx.timeout) as handle:  # noqa: S310
                    text = handle.read(4096).decode(errors="replace")
            else:
                text = read_text(self.base_url + ".sha256")
        except OSError:
            return None
        token = (text or "").split()
        return token[0].lower() if token and re.fullmatch(r"[0-9a-fA-F]{64}", token[0]) else None

    def fetch(self):
        """Download or copy the image, verify it, decompress or unpack it. Returns warnings.

        Each version lands in its own directory or file (named by its checksum), so guests still
        running on an older version keep their base; swap-out with purge_cache removes them all.
        """
        warnings = []
        want = self.want or self._sidecar_checksum()
        if not want:
            warnings.append(f"image {self.base_url} has no checksum (give one in qemu_image_checksums)")
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        source = self._source_stat()
        download = os.path.join(self.dir, f"download.{os.getpid()}")
        digest = hashlib.sha256()
        try:
            with self._open_source() as src, open(download, "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
            got = digest.hexdigest()
            if want and got != want:
                raise RuntimeError(f"image {self.base_url}: sha256 {got} does not match the expected {want}")
            path = urllib.parse.urlparse(self.base_url).path if self.remote else self.base_url
            base = os.path.join(self.dir, f"{'root' if self.kind == 'rootfs' else 'disk'}-{got[:16]}")
            fmt = "dir"
            if os.path.exists(base):
                fmt = self.meta().get("format", "raw") if self.kind == "disk" else "dir"
            elif self.kind == "rootfs":
                tmp = base + ".new"
                remove_path(tmp)
                os.makedirs(tmp, mode=0o755)
                rc, _out, err = run(["tar", "--numeric-owner", "-xpf", download, "-C", tmp], timeout=3600)
                if rc != 0:
                    remove_path(tmp)
                    raise RuntimeError(f"image {self.base_url}: cannot unpack: {err.strip()}")
                os.rename(tmp, base)
            else:
                suffix = next((s for s in COMPRESSED if path.endswith(s)), None)
                if suffix:
                    self._decompress(download, base, COMPRESSED[suffix])
                else:
                    os.rename(download, base)
                rc, out, err = run(["qemu-img", "info", "--output=json", base])
                if rc != 0:
                    remove_path(base)
                    raise RuntimeError(f"image {self.base_url}: qemu-img info failed: {err.strip()}")
                fmt = json.loads(out).get("format", "raw")
                if fmt not in ("raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx", "qed"):
                    remove_path(base)
                    raise RuntimeError(f"image {self.base_url}: unsupported disk format {fmt}")
                os.chmod(base, 0o444)
        finally:
            remove_path(download)
        write_json(self.meta_path, {"url": self.base_url, "sha256": got, "kind": self.kind, "format": fmt,
                                    "base": os.path.basename(base), "source": source})  # fmt: skip
        return warnings

    def _decompress(self, src, dst, method):
        if method == "zstd":
            rc, _out, err = run(["zstd", "-q", "-d", "-f", "-o", dst, src], timeout=3600)
            if rc != 0:
                raise RuntimeError(f"image {self.base_url}: zstd failed: {err.strip()}")
            return
        opener = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[method]
        with opener(src, "rb") as fin, open(dst + ".new", "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        os.rename(dst + ".new", dst)


# ----------------------------------------------------------------------------------------------
# QMP


def qmp(path, command, timeout=2.0):
    """Send one QMP COMMAND to the socket PATH; True when qemu accepted it."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            reader = sock.makefile("rb")
            json.loads(reader.readline())  # greeting
            for execute in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": execute}).encode() + b"\n")
                while True:
                    reply = json.loads(reader.readline() or b"{}")
                    if "event" not in reply:
                        break
                if "error" in reply or not reply:
                    return False
            return True
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------
# the guests


class Context:
    def __init__(self, module):
        p = module.params
        self.module = module
        self.check = module.check_mode
        self.root = os.path.abspath(p["root"])
        self.run_dir = os.path.abspath(p["run_dir"])
        self.exp_name = p["exp_name"]
        self.project = p["project"]
        self.experiment = p["experiment"]
        self.hosts = p["hosts"] if p["hosts"].endswith("\n") else p["hosts"] + "\n"
        self.default_url = p["default_url"] or ""
        self.checksums = {k: str(v) for k, v in (p["checksums"] or {}).items()}
        self.cache = os.path.abspath(p["image_cache"] or os.path.join(self.root, "images"))
        self.kernel = p["kernel"] or None
        self.kernel_append = p["kernel_append"] or ""
        self.initramfs_modules = p["initramfs_modules"]
        self.initramfs_filesystems = p["initramfs_filesystems"]
        self.busybox = p["busybox"]
        self.machine = p["machine"]
        self.memory = p["memory"]
        self.cpus = p["cpus"]
        self.tcg_tb_size = p["tcg_tb_size"]
        self.timeout = p["timeout"]
        self.stop_timeout = p["stop_timeout"]
        self.qemu_dir = os.path.join(self.root, "qemu", self.exp_name)
        self.nodes_dir = os.path.join(self.root, "nodes", self.exp_name)
        self.warnings = []
        self.kernel_version = None
        self.initrd = None
        self.accel = "tcg"
        self.images = {}
        self.shares = []
        self.accounts = {"passwd": "", "group": "", "shadow": ""}
        self.switch_pids = {}

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def switch_pid(self, switch):
        if switch not in self.switch_pids:
            pidfile = self.rpath(f"{switch}.pid")
            pid = read_pid(pidfile)
            self.switch_pids[switch] = pid if pid and proc_alive(pid, pidfile) else None
        return self.switch_pids[switch]


def resolve_shares(ctx, shares):
    resolved = []
    for share in shares:
        name = str(share.get("name", ""))
        if not NAME_RE.match(name):
            ctx.module.fail_json(msg=f"share name {name!r} is not valid")
        path = os.path.abspath(str(share.get("path") or ""))
        mount = str(share.get("mount") or "")
        if not mount.startswith("/") or any(c.isspace() for c in mount):
            ctx.module.fail_json(msg=f"share {name}: mount point {mount!r} must be an absolute path without blanks")
        if not os.path.isdir(path):
            ctx.warnings.append(f"share {name}: {path} does not exist on this pnode, guests do not get {mount}")
            continue
        resolved.append({"name": name, "path": path, "mount": mount, "readonly": bool(share.get("readonly"))})
    return resolved


def resolve_users(ctx, users):
    passwd, group, shadow = [], [], []
    for user in users:
        if isinstance(user, str):
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                ctx.warnings.append(f"user {user} is unknown on this pnode: no account in the guests")
                continue
            try:
                gname = grp.getgrgid(pw.pw_gid).gr_name
            except KeyError:
                gname = user
            entry = {"name": user, "uid": pw.pw_uid, "gid": pw.pw_gid, "group": gname,
                     "home": pw.pw_dir, "shell": pw.pw_shell or "/bin/sh"}  # fmt: skip
        elif isinstance(user, dict) and NAME_RE.match(str(user.get("name", ""))) and "uid" in user:
            entry = {
                "name": str(user["name"]),
                "uid": int(user["uid"]),
                "gid": int(user.get("gid", user["uid"])),
                "group": str(user.get("group", user["name"])),
                "home": str(user.get("home", f"/users/{user['name']}")),
                "shell": str(user.get("shell", "/bin/sh")),
            }
        else:
            ctx.module.fail_json(msg=f"users: {user!r} is neither a user name nor a dict with name and uid")
        if any(":" in str(v) or "\n" in str(v) for v in entry.values()):
            ctx.module.fail_json(msg=f"users: {entry['name']} has a field with ':' or a newline")
        passwd.append("{name}:x:{uid}:{gid}:{name}:{home}:{shell}".format(**entry))
        group.append("{group}:x:{gid}:".format(**entry))
        shadow.append("{name}:*:19000:0:99999:7:::".format(**entry))
    ctx.accounts = {k: "".join(f"{line}\n" for line in v) for k, v in
                    (("passwd", passwd), ("group", group), ("shadow", shadow))}  # fmt: skip


def tc_args(tc):
    """The `tc qdisc replace dev IF root` arguments for an end-node shaping plan, or ""."""
    if not tc:
        return ""
    bandwidth = tc.get("bandwidth")
    delay = float(tc.get("delay_ms") or 0)
    loss = float(tc.get("loss") or 0)
    if delay > 0 or loss > 0:
        args = ["netem"]
        if delay > 0:
            args.append(f"delay {delay:g}ms")
        if loss > 0:
            args.append(f"loss {loss * 100:g}%")
        if bandwidth:
            args.append(f"rate {int(bandwidth)}bit")
        return " ".join(args)
    if bandwidth:
        rate = int(bandwidth)
        return " ".join(tbf_tc_args(rate))
    return ""


def validate(ctx, guests):
    errors = []
    seen = set()
    for g in guests:
        name = str(g.get("name", ""))
        if not NAME_RE.match(name):
            errors.append(f"guest name {name!r} is not a valid node name")
            continue
        if name in seen:
            errors.append(f"guest {name} planned twice")
        seen.add(name)
        for suffix in ("qmp", "serial.log", "qemu.json.tmp"):
            if len(ctx.rpath(f"{name}.{suffix}")) >= SUN_PATH_MAX:
                errors.append(f"guest {name}: socket path under {ctx.run_dir} is too long")
                break
        arch = str(g.get("qemu_arch") or "x86_64")
        if arch not in ARCH_BINARY:
            errors.append(f"guest {name}: qemu_arch {arch!r} is not supported ({', '.join(sorted(ARCH_BINARY))})")
        if not (g.get("qemu_url") or ctx.default_url):
            errors.append(f"guest {name}: no image (qemu_url is empty and there is no default, qemu_default_url)")
        if any(c.isspace() for c in str(g.get("hostname") or "")):
            errors.append(f"guest {name}: hostname has blanks")
        for iface in g.get("interfaces") or []:
            ifname = str(iface.get("ifname", ""))
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$", ifname):
                errors.append(f"guest {name}: interface name {ifname!r} is not valid")
            if not NAME_RE.match(str(iface.get("switch") or "")):
                errors.append(f"guest {name} {ifname}: switch {iface.get('switch')!r} is not a valid id")
            if not re.match(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", str(iface.get("mac") or "")):
                errors.append(f"guest {name} {ifname}: MAC {iface.get('mac')!r} is not valid")
            if not iface.get("address") or not str(iface.get("prefix", "")).isdigit():
                errors.append(f"guest {name} {ifname}: address and prefix are needed")
        for route in g.get("routes") or []:
            if not re.match(r"^[0-9./a-z]+$", str(route.get("dest") or "")) or not re.match(
                r"^[0-9.]+$", str(route.get("gateway") or "")
            ):
                errors.append(f"guest {name}: bad route {route}")
    return errors


class Guest:
    """Observation, decisions and actions for one qemu guest."""

    def __init__(self, ctx, spec):
        self.ctx = ctx
        self.spec = spec
        self.name = spec["name"]
        self.ghost = bool(spec.get("ghost"))
        self.hostname = spec.get("hostname") or self.name
        self.startcmd = "" if self.ghost else (spec.get("startcmd") or "")
        self.interfaces = list(spec.get("interfaces") or [])
        self.url = spec.get("qemu_url") or ctx.default_url
        self.arch = str(spec.get("qemu_arch") or "x86_64")
        self.memory = int(spec.get("qemu_memory") or ctx.memory)
        self.cpus = int(spec.get("qemu_cpus") or ctx.cpus)
        self.image = ctx.images.get(self.url)
        self.qdir = os.path.join(ctx.qemu_dir, self.name)
        self.nodedir = os.path.join(ctx.nodes_dir, self.name)
        self.config_dir = os.path.join(self.qdir, "config")
        self.pidfile = ctx.rpath(f"{self.name}.qemu.pid")
        self.qmp = ctx.rpath(f"{self.name}.qmp")
        self.serial = ctx.rpath(f"{self.name}.serial.log")
        self.record_path = ctx.rpath(f"{self.name}.qemu.json")
        self.changes = []
        self.started = False
        self.restarted = False
        self.before = {}
        self.after = {}

    def note(self, what):
        self.changes.append(what)

    # -- what the guest should be
    def config_files(self):
        """{relative path: (content, mode)} of the node's configuration directory."""
        ctx = self.ctx
        fstab = [f"cz-containers /var/containers 9p {NINEP_OPTS},nofail 0 0"]
        mounts = ["/var/containers"]
        for share in ctx.shares:
            opts = NINEP_OPTS + (",ro" if share["readonly"] else "") + ",nofail"
            fstab.append(f"cz-{share['name']} {share['mount']} 9p {opts} 0 0")
            mounts.append(share["mount"])
        net = []
        for iface in self.interfaces:
            line = f"{str(iface['mac']).lower()} {iface['ifname']} {iface['address']}/{int(iface['prefix'])}"
            shaping = tc_args(iface.get("tc"))
            net.append(f"{line} {shaping}".rstrip())
        routes = [f"{r['dest']} {r['gateway']}" for r in self.spec.get("routes") or []]
        settings = (
            f"NODE={shlex.quote(self.name)}\nHOSTNAME={shlex.quote(self.hostname)}\n"
            f"FORWARDING={1 if self.spec.get('forwarding') else 0}\n"
        )
        files = {
            "apply.sh": (APPLY, 0o755),
            "hostname": (self.hostname + "\n", 0o644),
            "hosts": (ctx.hosts, 0o644),
            "fstab": ("".join(f"{line}\n" for line in fstab), 0o644),
            "mounts": ("".join(f"{m}\n" for m in mounts), 0o644),
            "rc.local": (RC_LOCAL_BLOCK, 0o755),
            "containerize.service": (SYSTEMD_UNIT, 0o644),
            "passwd": (ctx.accounts["passwd"], 0o644),
            "group": (ctx.accounts["group"], 0o644),
            "shadow": (ctx.accounts["shadow"], 0o644),
            "etc-containerize/boot.sh": (BOOT, 0o755),
            "etc-containerize/agent.sh": (AGENT, 0o755),
            "etc-containerize/settings": (settings, 0o644),
            "etc-containerize/net": ("".join(f"{line}\n" for line in net), 0o644),
            "etc-containerize/routes": ("".join(f"{line}\n" for line in routes), 0o644),
            "etc-containerize/startcmd": (self.startcmd + ("\n" if self.startcmd else ""), 0o644),
        }
        return files

    def config_hash(self, files):
        digest = hashlib.sha256()
        for rel in sorted(files):
            content, mode = files[rel]
            digest.update(f"{rel}\0{mode:o}\0{len(content)}\0".encode())
            digest.update(content.encode())
        return digest.hexdigest()[:16]

    def argv(self):
        ctx = self.ctx
        kind = self.image.kind
        root = "9p:cz-root" if kind == "rootfs" else "auto"
        append = f"console=ttyS0 panic=10 net.ifnames=0 biosdevname=0 cz.root={root}"
        if ctx.kernel_append:
            append += " " + ctx.kernel_append
        argv = [ARCH_BINARY[self.arch], "-name", self.name, "-machine", ctx.machine]
        if ctx.accel == "kvm":
            argv += ["-accel", "kvm", "-cpu", "host"]
        else:
            argv += ["-accel", f"tcg,tb-size={ctx.tcg_tb_size}" if ctx.tcg_tb_size else "tcg"]
        argv += [
            "-m", str(self.memory), "-smp", str(self.cpus),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-daemonize", "-pidfile", self.pidfile,
            "-qmp", f"unix:{qopt(self.qmp)},server=on,wait=off",
            "-chardev", f"file,id=serial0,path={qopt(self.serial)}", "-serial", "chardev:serial0",
            "-kernel", ctx.kernel, "-initrd", ctx.initrd, "-append", append,
            "-device", "virtio-rng-pci",
        ]  # fmt: skip
        if kind == "rootfs":
            argv += ["-virtfs", f"local,id=cz-root,path={qopt(self.root_dir())},mount_tag=cz-root,"
                                "security_model=passthrough,multidevs=remap"]  # fmt: skip
        else:
            argv += ["-drive", f"file={qopt(self.disk())},if=virtio,format=qcow2,discard=unmap"]
            argv += ["-virtfs", f"local,id=cz-config,path={qopt(self.config_dir)},mount_tag=cz-config,"
                                "security_model=none,readonly=on"]  # fmt: skip
        argv += ["-virtfs", f"local,id=cz-modules,path={qopt('/lib/modules/' + ctx.kernel_version)},"
                            "mount_tag=cz-modules,security_model=none,readonly=on"]  # fmt: skip
        argv += ["-virtfs", f"local,id=cz-containers,path={qopt(self.nodedir)},mount_tag=cz-containers,"
                            "security_model=none"]  # fmt: skip
        for share in ctx.shares:
            opts = f"local,id=cz-{share['name']},path={qopt(share['path'])},mount_tag=cz-{share['name']},"
            opts += "security_model=none,readonly=on" if share["readonly"] else "security_model=passthrough"
            argv += ["-virtfs", opts]
        for index, iface in enumerate(self.interfaces):
            netdev = f"vde,id=net{index},sock={qopt(ctx.rpath(str(iface['switch']) + '.ctl'))}"
            if iface.get("port"):
                netdev += f",port={int(iface['port'])}"
            argv += ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=net{index},mac={str(iface['mac']).lower()}"]
        return argv

    def root_dir(self):
        return os.path.join(self.qdir, "root")

    def disk(self):
        return os.path.join(self.qdir, "disk.qcow2")

    # -- observation
    def observe(self):
        pid = read_pid(self.pidfile)
        alive = bool(pid and proc_alive(pid, self.pidfile))
        return {"pid": pid if alive else None, "record": read_json(self.record_path) or {}}

    def status(self, pid=None, record=None):
        if pid is None:
            observed = self.observe()
            pid, record = observed["pid"], observed["record"]
        record = record or {}
        log = read_text(os.path.join(self.nodedir, "log", "start_command.log")) or ""
        exits = [line.split()[1] for line in log.splitlines() if line.startswith("exit ") and len(line.split()) > 1]
        exit_code = int(exits[-1]) if exits and exits[-1].lstrip("-").isdigit() else None
        if not pid:
            return {"state": "dead", "pid": None, "exit": exit_code}
        state = "running"
        started = float(record.get("started") or 0)
        try:
            if os.stat(os.path.join(self.nodedir, "log", "booted")).st_mtime >= started - 2:
                state = "booted"
        except OSError:
            pass
        if state == "running" and BOOTED_MARKER in (read_text(self.serial) or ""):
            state = "booted"
        return {"state": state, "pid": pid, "exit": exit_code}

    # -- decisions and actions
    def ensure(self):
        """Observe, then (unless check mode) repair. Returns self."""
        ctx = self.ctx
        o = self.observe()
        record = o["record"]
        files = self.config_files()
        chash = self.config_hash(files)
        argv = self.argv()
        switches = {str(i["switch"]): ctx.switch_pid(str(i["switch"])) for i in self.interfaces}
        image_id = f"{self.url}@{self.image.ident}"
        if not ctx.check:
            missing = sorted(s for s, pid in switches.items() if pid is None)
            if missing:
                raise RuntimeError(f"switch {', '.join(missing)} of {self.name} is not running (run vde_network first)")
        self.before = {
            "state": "running" if o["pid"] else "dead",
            "image": record.get("image"),
            "config": record.get("config") if o["pid"] else None,
            "argv": short_hash(record.get("argv")) if o["pid"] else None,
        }
        self.after = {"state": "running", "image": image_id, "config": chash, "argv": short_hash(argv)}

        # node directory (served as /var/containers)
        if not ctx.check:
            node_changed = False
            os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
            os.makedirs(os.path.join(self.nodedir, "exec"), mode=0o755, exist_ok=True)
            node_changed |= write_file(os.path.join(self.nodedir, "pid"), ctx.project + "\n")
            node_changed |= write_file(os.path.join(self.nodedir, "eid"), ctx.experiment + "\n")
            if node_changed:
                self.note("node directory")
        elif not os.path.isfile(os.path.join(self.nodedir, "pid")):
            self.note("node directory")

        healthy = (
            o["pid"]
            and record.get("argv") == argv
            and record.get("config") == chash
            and record.get("image") == image_id
            and all(record.get("switch_pids", {}).get(s) == pid for s, pid in switches.items())
        )
        if healthy:
            return self
        if o["pid"]:
            reasons = []
            if record.get("argv") != argv:
                reasons.append("argv")
            if record.get("config") != chash:
                reasons.append("config")
            if record.get("image") != image_id:
                reasons.append("image")
            if any(record.get("switch_pids", {}).get(s) != pid for s, pid in switches.items()):
                reasons.append("switch restarted")
            self.note(f"restart ({', '.join(reasons)})")
            self.restarted = True
            if not ctx.check:
                stop_guests([(self.name, o["pid"], self.qmp)], ctx.stop_timeout, ctx.timeout)
        else:
            self.note("start")
            self.started = True
        if ctx.check:
            if record.get("config") != chash:
                self.note("config")
            return self

        # configuration directory
        if self.write_config(files):
            self.note("config")
        # disk or root directory, reset when the image changed
        if record.get("image") not in (None, image_id):
            self.note("reset disk")
            self.discard_disk()
        self.prepare_disk()
        if self.image.kind == "rootfs":
            changes = self.apply_config()
            if changes:
                self.note("root: " + ", ".join(changes))
        # fresh status, then start
        for name in ("booted", "start_command.log", "start_command.out", "start_command.err"):
            remove_path(os.path.join(self.nodedir, "log", name))
        for path in (self.pidfile, self.qmp, self.serial):
            remove_path(path)
        started = time.time()
        rc, out, err = run(argv, timeout=ctx.timeout)
        ok = rc == 0 and wait_for(lambda: proc_alive(read_pid(self.pidfile), self.pidfile), ctx.timeout)
        if not ok:
            raise RuntimeError(f"qemu for {self.name} did not start (rc={rc}): {(err or out).strip()[-800:]}")
        write_json(
            self.record_path,
            {"argv": argv, "config": chash, "image": image_id, "switch_pids": switches,
             "started": started, "pid": read_pid(self.pidfile)},
        )  # fmt: skip
        return self

    def write_config(self, files):
        changed = False
        wanted = set(files)
        for rel, (content, mode) in files.items():
            changed |= write_file(os.path.join(self.config_dir, rel), content, mode)
        for dirpath, _dirs, names in os.walk(self.config_dir):
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), self.config_dir)
                if rel not in wanted:
                    remove_path(os.path.join(dirpath, name))
                    changed = True
        return changed

    def prepare_disk(self):
        os.makedirs(self.qdir, mode=0o755, exist_ok=True)
        if self.image.kind == "disk":
            if not os.path.exists(self.disk()):
                rc, _out, err = run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", self.image.disk_format(),
                                     "-b", self.image.base, self.disk()])  # fmt: skip
                if rc != 0:
                    raise RuntimeError(f"{self.name}: qemu-img create failed: {err.strip()}")
                self.note("disk")
            return
        root = self.root_dir()
        if root in mountpoints():
            return
        upper, work = os.path.join(self.qdir, "upper"), os.path.join(self.qdir, "work")
        for path in (upper, work, root):
            os.makedirs(path, mode=0o755, exist_ok=True)
        rc, _out, err = run(["mount", "-t", "overlay", f"cz-{self.name}", "-o",
                             f"lowerdir={self.image.base},upperdir={upper},workdir={work}", root])  # fmt: skip
        if rc != 0:
            raise RuntimeError(f"{self.name}: cannot mount the overlay root: {err.strip()}")
        self.note("root")

    def apply_config(self, check=False):
        """Apply the configuration to the rootfs on the pnode; returns what changed."""
        argv = ["unshare", "--mount", "--propagation", "private", self.ctx.busybox, "sh", "-c", HOST_APPLY, "sh",
                self.root_dir(), self.config_dir, self.ctx.busybox, "check" if check else ""]  # fmt: skip
        rc, out, err = run(argv, timeout=self.ctx.timeout)
        if rc != 0:
            raise RuntimeError(f"{self.name}: applying the configuration failed: {(err or out).strip()[-800:]}")
        return [line[len("changed ") :] for line in out.splitlines() if line.startswith("changed ")]

    def discard_disk(self):
        root = self.root_dir()
        if root in mountpoints() and run(["umount", root])[0] != 0:
            run(["umount", "-l", root])
        for name in ("disk.qcow2", "upper", "work", "root"):
            remove_path(os.path.join(self.qdir, name))


# ----------------------------------------------------------------------------------------------
# lifecycle helpers


def stop_guests(guests, stop_timeout, timeout):
    """Stop GUESTS [(name, pid, qmp socket)]: power down, then quit, then kill."""
    alive = [(name, pid, sock) for name, pid, sock in guests if pid and proc_alive(pid)]
    if not alive:
        return
    asked = [(pid, sock) for _name, pid, sock in alive if qmp(sock, "system_powerdown")]

    def all_dead(items):
        return not any(proc_alive(pid) for pid, _sock in items)

    if asked:
        wait_for(lambda: all_dead(asked), stop_timeout)
    rest = [(pid, sock) for _name, pid, sock in alive if proc_alive(pid)]
    quit_asked = [(pid, sock) for pid, sock in rest if qmp(sock, "quit")]
    if quit_asked:
        wait_for(lambda: all_dead(quit_asked), min(timeout, 10))
    kill_many([(pid, None) for _name, pid, _sock in alive], min(timeout, 10))


def probe_accel(ctx):
    """'kvm' when a KVM guest prints on its serial console within the probe timeout, else 'tcg'."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "no usable /dev/kvm"
    qemu_bin = shutil.which("qemu-system-x86_64")
    if not qemu_bin:
        return "tcg", "no qemu-system-x86_64"
    key = hashlib.sha256(
        f"{qemu_bin}:{os.stat(qemu_bin).st_mtime}:{ctx.kernel}:{os.uname().release}".encode()
    ).hexdigest()[:12]
    cache = os.path.join(ctx.cache, f"accel-{key}.json")
    cached = read_json(cache)
    if cached and cached.get("accel") in ("kvm", "tcg"):
        return cached["accel"], cached.get("why", "cached")
    if ctx.check:
        return "tcg", "not probed (check mode)"
    os.makedirs(ctx.cache, mode=0o755, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cz-kvm-probe.") as tmp:
        serial = os.path.join(tmp, "serial")
        argv = [qemu_bin, "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-no-user-config",
                "-display", "none", "-kernel", ctx.kernel, "-append", "console=ttyS0 panic=-1",
                "-chardev", f"file,id=s0,path={qopt(serial)}", "-serial", "chardev:s0", "-no-reboot"]  # fmt: skip
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: S603
                                    stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        except OSError as exc:
            return "tcg", f"probe failed: {exc}"
        try:
            ok = wait_for(lambda: "Linux version" in (read_text(serial) or ""), ctx.accel_probe_timeout, step=0.05)
        finally:
            proc.kill()
            proc.wait()
    result = ("kvm", "probe booted") if ok else ("tcg", f"KVM guest silent for {ctx.accel_probe_timeout:g} s")
    write_json(cache, {"accel": result[0], "why": result[1]})
    return result


def scan_qemu(ctx):
    """{guest name: pid} of live qemu processes whose -pidfile is in the run directory (found in /proc,
    so guests whose pid file was removed are still found)."""
    found = {}
    prefix = ctx.run_dir + os.sep
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "-pidfile" and value.startswith(prefix) and value.endswith(".qemu.pid"):
                name = value[len(prefix) : -len(".qemu.pid")]
                if NAME_RE.match(name) and proc_alive(int(entry)):
                    found[name] = int(entry)
    return found


def find_recorded(ctx):
    """Guest names recorded in the run directory or present in the experiment's qemu directory."""
    names = set(scan_qemu(ctx))
    if os.path.isdir(ctx.run_dir):
        for entry in os.listdir(ctx.run_dir):
            for suffix in (".qemu.json", ".qemu.pid"):
                if entry.endswith(suffix) and NAME_RE.match(entry[: -len(suffix)]):
                    names.add(entry[: -len(suffix)])
    if os.path.isdir(ctx.qemu_dir):
        names.update(n for n in os.listdir(ctx.qemu_dir) if NAME_RE.match(n))
    return names


def remove_guests(ctx, names):
    """Stop and remove every trace of guests NAMES; True when anything existed."""
    guests = [Guest(ctx, {"name": name}) for name in sorted(names)]
    changed = False
    targets = []
    scanned = scan_qemu(ctx)
    for guest in guests:
        pid = guest.observe()["pid"] or scanned.get(guest.name)
        if pid:
            targets.append((guest.name, pid, guest.qmp))
    if targets:
        changed = True
        if not ctx.check:
            stop_guests(targets, ctx.stop_timeout, ctx.timeout)
    for guest in guests:
        paths = [guest.qdir, guest.nodedir, guest.pidfile, guest.qmp, guest.serial, guest.record_path]
        if guest.root_dir() in mountpoints() or any(os.path.lexists(p) for p in paths):
            changed = True
            if not ctx.check:
                guest.discard_disk()
                for path in paths:
                    remove_path(path)
    return changed


def run_absent(ctx, guests, purge, result):
    names = find_recorded(ctx) | {g["name"] for g in guests}
    scanned = scan_qemu(ctx)
    before = {"guests": sorted(n for n in names if Guest(ctx, {"name": n}).observe()["pid"] or n in scanned)}
    changed = remove_guests(ctx, names)
    if os.path.isdir(ctx.qemu_dir):
        changed = True
        if not ctx.check:
            shutil.rmtree(ctx.qemu_dir, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(ctx.qemu_dir))
            except OSError:
                pass
    if purge and os.path.isdir(ctx.cache):
        changed = True
        if not ctx.check:
            shutil.rmtree(ctx.cache, ignore_errors=True)
    if changed:
        result["stopped"] = sorted(names)
    result["changed"] = changed
    result["diff"] = {"before": before, "after": {"guests": []}}


def prepare_pnode(ctx, guests, result):
    """Kernel, initramfs, images and acceleration: the work shared by every guest."""
    module = ctx.module
    ctx.kernel = ctx.kernel or default_kernel()
    if not ctx.kernel or not os.path.isfile(ctx.kernel):
        module.fail_json(msg="no guest kernel: install linux-image-amd64 or set qemu_kernel")
    ctx.kernel_version = kernel_version(ctx.kernel) or os.path.basename(ctx.kernel)
    if not os.path.isdir(f"/lib/modules/{ctx.kernel_version}"):
        module.fail_json(msg=f"kernel {ctx.kernel}: no modules in /lib/modules/{ctx.kernel_version}")
    if not is_static_elf(ctx.busybox):
        module.fail_json(msg=f"{ctx.busybox} is not a static busybox: install busybox-static")
    for prog in ["qemu-img", "unshare", "modprobe", *sorted({ARCH_BINARY[str(g.get('qemu_arch') or 'x86_64')]
                                                            for g in guests})]:  # fmt: skip
        if not module.get_bin_path(prog):
            module.fail_json(msg=f"{prog} not found (packages qemu-system-x86, qemu-utils, util-linux, kmod)")
    ctx.initrd, build = initramfs_plan(ctx)
    if not os.path.exists(ctx.initrd):
        result["changed"] = True
        result["pnode"].append("initramfs")
        if not ctx.check:
            build()
    for url in sorted({g.get("qemu_url") or ctx.default_url for g in guests}):
        try:
            image = Image(ctx, url)
        except RuntimeError as exc:
            module.fail_json(msg=str(exc))
        ctx.images[url] = image
        if not image.ready():
            result["changed"] = True
            result["pnode"].append(f"fetch {url}")
            if not ctx.check:
                try:
                    ctx.warnings.extend(image.fetch())
                except (OSError, RuntimeError, ValueError) as exc:
                    module.fail_json(msg=f"cannot fetch image {url}: {exc}", **result)
    mode = module.params["accel"]
    if mode == "auto":
        ctx.accel, why = probe_accel(ctx)
        result["accel_reason"] = why
    else:
        ctx.accel = mode
    result["accel"] = ctx.accel


def wait_booted(guests, timeout):
    """Wait until every guest booted or died; returns {name: status}."""
    statuses = {}

    def done():
        for guest in guests:
            if statuses.get(guest.name, {}).get("state") not in ("booted", "dead"):
                statuses[guest.name] = guest.status()
        return all(s["state"] in ("booted", "dead") for s in statuses.values())

    wait_for(done, timeout, step=0.2)
    return statuses


def serial_tail(guest, lines=3):
    text = (read_text(guest.serial) or "").replace("\r", "")
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(serial console empty)"


def run_present(ctx, guests, workers, result):
    module = ctx.module
    if not ctx.check:
        for path in (ctx.run_dir, ctx.qemu_dir, ctx.nodes_dir):
            os.makedirs(path, mode=0o755, exist_ok=True)
    # guests recorded earlier but no longer planned
    planned = {g["name"] for g in guests}
    stale = find_recorded(ctx) - planned
    if stale and remove_guests(ctx, stale):
        result["changed"] = True
        result["stopped"].extend(sorted(stale))
    # qemu processes of planned guests whose pid file is lost: stop them, or the guest runs twice
    orphans = [(name, pid, ctx.rpath(f"{name}.qmp")) for name, pid in scan_qemu(ctx).items()
               if name in planned and read_pid(ctx.rpath(f"{name}.qemu.pid")) != pid]  # fmt: skip
    if orphans:
        result["changed"] = True
        result["stopped"].extend(sorted(f"{name} (orphan pid {pid})" for name, pid, _sock in orphans))
        if not ctx.check:
            stop_guests(orphans, ctx.stop_timeout, ctx.timeout)
    if not guests:
        return
    prepare_pnode(ctx, guests, result)

    errors, done = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(Guest(ctx, g).ensure): g["name"] for g in guests}
        for future in concurrent.futures.as_completed(futures):
            try:
                done.append(future.result())
            except Exception as exc:  # noqa: BLE001 - reported per guest below
                errors.append(f"{futures[future]}: {exc}")
    before, after = {}, {}
    for guest in sorted(done, key=lambda g: g.name):
        if guest.changes:
            result["changed"] = True
            result["guests"][guest.name] = guest.changes
            before[guest.name] = guest.before
            after[guest.name] = guest.after
        if guest.restarted:
            result["restarted"].append(guest.name)
        elif guest.started:
            result["started"].append(guest.name)
    result["diff"] = {"before": before, "after": after}
    if errors:
        module.fail_json(msg="some qemu guests failed: " + "; ".join(sorted(errors)), **result,
                         invocation=compact_invocation(module))
    if ctx.check:
        result["status"] = {g.name: g.status() for g in done}
        return
    if module.params["wait_booted"]:
        result["status"] = wait_booted(done, module.params["boot_timeout"])
    else:
        result["status"] = {g.name: g.status() for g in done}
    bad = [g for g in sorted(done, key=lambda g: g.name) if result["status"][g.name]["state"] != "booted"]
    if module.params["wait_booted"] and bad:
        report = "; ".join(f"{g.name} is {result['status'][g.name]['state']} (serial: {serial_tail(g)})" for g in bad)
        module.fail_json(msg=f"{len(bad)} of {len(done)} qemu guests did not boot within "
                             f"{module.params['boot_timeout']:g} s: {report}", **result)  # fmt: skip


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/var/containers"},
            "run_dir": {"type": "path", "required": True},
            "exp_name": {"type": "str", "required": True},
            "project": {"type": "str", "required": True},
            "experiment": {"type": "str", "required": True},
            "hosts": {"type": "str", "default": "127.0.0.1 localhost\n"},
            "guests": {"type": "list", "elements": "dict", "default": []},
            "default_url": {"type": "str", "default": ""},
            "checksums": {"type": "dict", "default": {}},
            "image_cache": {"type": "path"},
            "kernel": {"type": "path"},
            "kernel_append": {"type": "str", "default": ""},
            "initramfs_modules": {
                "type": "list",
                "elements": "str",
                "default": ["virtio_pci", "virtio_blk", "9pnet_virtio", "9p"],
            },
            "initramfs_filesystems": {"type": "list", "elements": "str", "default": ["ext4", "xfs", "btrfs"]},
            "busybox": {"type": "path", "default": "/bin/busybox"},
            "accel": {"type": "str", "choices": ["auto", "kvm", "tcg"], "default": "auto"},
            "accel_probe_timeout": {"type": "float", "default": 5.0},
            "machine": {"type": "str", "default": "pc"},
            "memory": {"type": "int", "default": 512},
            "cpus": {"type": "int", "default": 1},
            "tcg_tb_size": {"type": "int", "default": 0},
            "shares": {"type": "list", "elements": "dict", "default": []},
            "users": {"type": "list", "elements": "raw", "default": []},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "wait_booted": {"type": "bool", "default": True},
            "boot_timeout": {"type": "float", "default": 600},
            "stop_timeout": {"type": "float", "default": 20},
            "timeout": {"type": "float", "default": 30},
            "workers": {"type": "int", "default": 4},
            "purge_cache": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    ctx = Context(module)
    ctx.accel_probe_timeout = module.params["accel_probe_timeout"]
    for key in ("exp_name", "project", "experiment"):
        if not NS_RE.match(module.params[key]):
            module.fail_json(msg=f"{key} {module.params[key]!r} is not a valid name")
    guests = [g for g in module.params["guests"] if (g.get("kind") or "qemu") == "qemu"]
    result = {"changed": False, "guests": {}, "pnode": [], "status": {}, "started": [], "restarted": [],
              "stopped": []}  # fmt: skip
    if module.params["state"] == "absent":
        run_absent(ctx, guests, module.params["purge_cache"], result)
    else:
        errors = validate(ctx, guests)
        if errors:
            module.fail_json(msg="invalid qemu guests: " + "; ".join(errors), errors=errors)
        ctx.shares = resolve_shares(ctx, module.params["shares"])
        resolve_users(ctx, module.params["users"])
        run_present(ctx, guests, module.params["workers"], result)
    for warning in ctx.warnings:
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result, invocation=compact_invocation(module))


# ----------------------------------------------------------------------------------------------
# containerize exec for qemu nodes (host side of the guest's exec agent)


def guest_exec(node_dir, command, timeout=None, claim_timeout=15.0, stdout=None, stderr=None):
    """Run COMMAND (argv list) in the qemu guest whose node directory is NODE_DIR; return its exit status.

    The command is written as NODE_DIR/exec/ID.cmd (a shell script `exec ARGV...`); the guest's
    agent (started at boot, polling every 0.2 s) renames it ID.run, runs it as root in / with stdin
    from /dev/null, and writes ID.out, ID.err, then ID.rc. Output is copied to STDOUT and STDERR
    (binary streams, default this process's) while the command runs. Returns 255 when the agent
    did not pick the command up within CLAIM_TIMEOUT seconds (guest down or not booted), 124 when
    TIMEOUT seconds passed (the command keeps running in the guest).
    """
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    xdir = os.path.join(node_dir, "exec")
    if not os.path.isdir(xdir):
        stderr.write(f"containerize exec: {xdir} does not exist: is the guest swapped in?\n".encode())
        stderr.flush()
        return 255
    ident = f"{os.getpid()}-{time.time_ns()}"
    base = os.path.join(xdir, ident)
    script = "exec " + " ".join(shlex.quote(str(arg)) for arg in command) + "\n"
    with open(base + ".cmd.new", "w", encoding="utf-8") as handle:
        handle.write(script)
    os.rename(base + ".cmd.new", base + ".cmd")
    start = time.monotonic()
    offsets = {".out": 0, ".err": 0}
    streams = {".out": stdout, ".err": stderr}

    def pump():
        for suffix, stream in streams.items():
            try:
                with open(base + suffix, "rb") as handle:
                    handle.seek(offsets[suffix])
                    data = handle.read()
            except OSError:
                continue
            if data:
                offsets[suffix] += len(data)
                stream.write(data)
                stream.flush()

    try:
        while True:
            if os.path.exists(base + ".rc"):
                pump()
                text = (read_text(base + ".rc") or "").strip()
                return int(text) if text.lstrip("-").isdigit() else 255
            claimed = not os.path.exists(base + ".cmd")
            elapsed = time.monotonic() - start
            if not claimed and elapsed > claim_timeout:
                stderr.write(b"containerize exec: the guest's agent did not answer (is the guest booted?)\n")
                stderr.flush()
                return 255
            if timeout is not None and elapsed > timeout:
                pump()
                stderr.write(f"containerize exec: timed out after {timeout:g} s\n".encode())
                stderr.flush()
                return 124
            pump()
            time.sleep(0.05)
    finally:
        for suffix in (".cmd", ".cmd.new", ".run", ".out", ".err", ".rc"):
            if suffix in (".run", ".out", ".err") and not os.path.exists(base + ".rc"):
                continue  # still running in the guest: leave its files
            remove_path(base + suffix)


def exec_main(argv):
    """`qemu_guests.py exec NODE_DIR [--timeout S] -- CMD [ARGS...]`"""
    usage = "usage: qemu_guests.py exec NODE_DIR [--timeout SECONDS] -- CMD [ARGS...]\n"
    if "--" not in argv:
        sys.stderr.write(usage)
        return 2
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    timeout = None
    if len(head) == 3 and head[1] == "--timeout":
        timeout = float(head[2])
        head = head[:1]
    if len(head) != 1 or not command:
        sys.stderr.write(usage)
        return 2
    return guest_exec(head[0], command, timeout=timeout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["exec"]:
        sys.exit(exec_main(sys.argv[2:]))
    main()
