#!/bin/sh
# containerize node information (what DETER's info.py --all printed); written by containerize.
# usage: info [--all|--json] [NODE KIND PROJECT EXPERIMENT PNODE]
mode=text
case "$1" in
    --json) mode=json; shift ;;
    --all|-a) shift ;;
    -h|--help) echo "usage: $0 [--all|--json]"; exit 0 ;;
esac
node=$1 kind=$2 project=$3 experiment=$4 pnode=$5
facts=/var/containers/facts
if [ -r "$facts" ]; then
    while IFS='=' read -r key value; do
        case "$key" in
            node) [ -n "$node" ] || node=$value ;;
            kind) [ -n "$kind" ] || kind=$value ;;
            project) [ -n "$project" ] || project=$value ;;
            experiment) [ -n "$experiment" ] || experiment=$value ;;
            pnode) [ -n "$pnode" ] || pnode=$value ;;
        esac
    done < "$facts"
fi
[ -n "$project" ] || project=$(cat /var/containers/pid 2>/dev/null)
[ -n "$experiment" ] || experiment=$(cat /var/containers/eid 2>/dev/null)
[ -n "$node" ] || node=$(cat /etc/hostname 2>/dev/null || hostname)
if [ -z "$kind" ]; then
    if [ -r /etc/containerize/settings ]; then kind=qemu
    elif [ -r /run/systemd/container ]; then kind=openvz
    else kind=process
    fi
fi
netmask() {
    p=$1 out= i=0
    while [ $i -lt 4 ]; do
        if [ "$p" -ge 8 ]; then o=255; p=$((p - 8))
        elif [ "$p" -gt 0 ]; then o=$((256 - (1 << (8 - p)))); p=0
        else o=0
        fi
        out=$out${out:+.}$o
        i=$((i + 1))
    done
    echo "$out"
}
# names and MACs from `ip` (a container's /sys may show another network namespace)
links=$(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \([^:@ ]*\)[^ ]*: .* link\/ether \([0-9a-f:]*\).*/\1 \2/p')
first=1
if [ "$mode" = json ]; then
    printf '{"node": "%s", "kind": "%s", "project": "%s", "experiment": "%s", "pnode": "%s", "interfaces": [' \
        "$node" "$kind" "$project" "$experiment" "$pnode"
else
    echo "Node:       $node"
    echo "Project:    $project"
    echo "Experiment: $experiment"
    echo "Kind:       $kind"
    [ -n "$pnode" ] && echo "Pnode:      $pnode"
    echo "Interfaces:"
fi
echo "$links" | while read -r name mac; do
    [ -n "$name" ] || continue
    [ "$name" = cz-ssh ] && continue  # the qemu node's control NIC for ssh, not an experiment interface
    cidr=$(ip -o -4 addr show dev "$name" 2>/dev/null | sed -n 's/.* inet \([0-9.]*\/[0-9]*\).*/\1/p' | head -n 1)
    [ -n "$cidr" ] || continue  # not an experiment interface (ifb, tunnels, ...)
    addr=${cidr%/*}
    mask=$(netmask "${cidr#*/}")
    if [ "$mode" = json ]; then
        [ $first = 1 ] || printf ', '
        printf '{"name": "%s", "address": "%s", "netmask": "%s", "mac": "%s"}' "$name" "$addr" "$mask" "$mac"
    else
        printf '  %-8s %-15s %-15s %s\n' "$name" "${addr:--}" "${mask:--}" "$mac"
    fi
    first=0
done
[ "$mode" = json ] && printf ']}\n'
exit 0
