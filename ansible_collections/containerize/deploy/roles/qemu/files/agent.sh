#!/bin/sh
# containerize exec agent (the qemu role's files/agent.sh, started by boot.sh): runs the commands
# the pnode drops in /var/containers/exec (ID.cmd, a shell script) and leaves ID.out, ID.err and
# ID.rc there (module_utils/qemu_exec.py is the pnode's side).
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
