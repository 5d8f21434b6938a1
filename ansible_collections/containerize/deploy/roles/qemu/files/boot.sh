#!/bin/sh
# containerize: configure the node at every boot and run its start command (the qemu role's
# files/boot.sh, put in /etc/containerize/ by apply.sh); run from /etc/rc.local (or the containerize
# systemd unit, or OpenRC local.d).
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
# what keeps the node from being as planned: the node is "failed" with these, not "booted"
problems=
problem() {
    problems="${problems:+$problems; }$*"
    log "$*"
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

# booted only when every planned interface has its address and every route is in place
while read -r _mac ifname cidr _tcargs; do
    if [ ! -e "/sys/class/net/$ifname" ]; then
        problem "$ifname: no such interface"
    elif ! "$IP" -o addr show dev "$ifname" | grep -q " ${cidr%/*}/"; then
        problem "$ifname: no address $cidr"
    fi
done < "$D/net"
while read -r dest gateway; do
    [ -n "$dest" ] || continue
    "$IP" route show "$dest" 2>/dev/null | grep -q "via $gateway" || problem "no route to $dest via $gateway"
done < "$D/routes"
if [ -n "$problems" ]; then
    rm -f "$L/booted"
    echo "$problems" > "$L/failed"
    log "failed $NODE: $problems"
else
    rm -f "$L/failed"
    echo "booted $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$L/booted"
    log "booted $NODE"
fi

# the exec agent and the start command
mkdir -p /var/containers/exec
setsid sh "$D/agent.sh" < /dev/null > /dev/null 2>&1 &
# (through the start command supervisor of every kind of node, the hv role's start-command.sh;
# HOME is /root, whatever the init set)
if [ -s "$D/startcmd" ]; then
    HOME=/root sh "$D/start-command.sh" "$L" "$(cat "$D/startcmd")" < /dev/null > /dev/null 2>&1 &
fi
exit 0
