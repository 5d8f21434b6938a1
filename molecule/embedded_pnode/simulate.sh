#!/usr/bin/env bash
# Simulated physical machines for the embedded_pnode scenario: a machine is a network namespace
# czemb-MACHINE with a root directory DIR/MACHINE (unpacked from a template tarball); its NIC is a
# veth whose peer sits in the bridge br0 of namespace SWITCH (the testbed's switch). Each machine
# also has an unplanned interface eth9 (192.168.77.1/24) that must stay as it is.
#
# usage: simulate.sh up DIR TEMPLATE SWITCH MACHINE NIC MAC [LOOPBACK_ADDRESS]
#        simulate.sh down DIR SWITCH MACHINE
#        simulate.sh host          (this machine's own network, to compare before and after)
set -euo pipefail

case ${1:-} in
up)
    dir=$2 template=$3 switch=$4 machine=$5 nic=$6 mac=$7 loaddr=${8:-}
    ns=czemb-$machine
    if [[ ! -x $dir/$machine/bin/busybox ]]; then
        mkdir -p "$dir/$machine"
        tar --numeric-owner -xpf "$template" -C "$dir/$machine"
        # the few device nodes a machine's /dev would have (no devtmpfs in a plain directory)
        mknod -m 666 "$dir/$machine/dev/null" c 1 3
        mknod -m 666 "$dir/$machine/dev/zero" c 1 5
        mknod -m 666 "$dir/$machine/dev/urandom" c 1 9
    fi
    [[ -e /run/netns/$switch ]] || ip netns add "$switch"
    ip -n "$switch" link show br0 >/dev/null 2>&1 || ip -n "$switch" link add br0 type bridge
    ip -n "$switch" link set br0 up
    [[ -e /run/netns/$ns ]] || ip netns add "$ns"
    ip -n "$ns" link set lo up
    if ! ip -n "$ns" link show "$nic" >/dev/null 2>&1; then
        ip -n "$ns" link add "$nic" address "$mac" type veth peer name "$machine" netns "$switch"
        ip -n "$switch" link set "$machine" master br0 up
    fi
    if ! ip -n "$ns" link show eth9 >/dev/null 2>&1; then
        ip -n "$ns" link add eth9 type veth peer name eth9p
        ip -n "$ns" addr add 192.168.77.1/24 dev eth9
        ip -n "$ns" link set eth9 up
        ip -n "$ns" link set eth9p up
    fi
    if [[ -n $loaddr ]] && ! ip -n "$ns" -o addr show dev lo | grep -q " $loaddr/"; then
        ip -n "$ns" addr add "$loaddr/32" dev lo
    fi
    echo "machine $machine up"
    ;;
down)
    dir=$2 switch=$3 machine=$4
    ns=czemb-$machine
    if [[ -e /run/netns/$ns ]]; then
        pids=$(ip netns pids "$ns" || true)
        [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
        ip netns delete "$ns"
    fi
    rm -rf "${dir:?}/$machine"
    if [[ -e /run/netns/$switch ]] && ! ls /run/netns | grep '^czemb-' | grep -qvx "$switch"; then
        ip netns delete "$switch"
    fi
    rmdir "$dir" 2>/dev/null || true
    ;;
host)
    dev=$(ip route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | head -1)
    ip route show default
    [[ -z $dev ]] || ip -4 -o addr show dev "$dev" | awk '{print $2, $4}'
    grep -c "containerize experiment emb.proj" /etc/hosts || true
    ;;
*)
    echo "usage: simulate.sh up|down|host ..." >&2
    exit 2
    ;;
esac
