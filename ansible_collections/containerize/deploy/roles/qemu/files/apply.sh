#!/bin/sh
# containerize: apply a node's configuration to its root directory (the qemu role's files/apply.sh,
# copied into each node's configuration by the qemu_nodes module); runs in the node's initramfs
# (disk images) or chrooted on the pnode (rootfs images, files/host-apply.sh).
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
if [ -f "$C/authorized_keys" ]; then
    put "$C/authorized_keys" "$R/root/.ssh/authorized_keys" 0600 authorized_keys
fi
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
