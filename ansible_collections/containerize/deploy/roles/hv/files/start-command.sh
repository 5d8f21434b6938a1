#!/bin/sh
# The start command supervisor of every kind of containerize node (put in place by the hv role;
# qemu and openvz nodes get a copy in /etc/containerize/). Do not edit: swap-in rewrites it.
#
# usage: start-command.sh LOG_DIR COMMAND [HOSTNAME [NODE_DIR]]
#
# Writes LOG_DIR/start_command.log: "start TIME", then "exit N" and "end TIME" when COMMAND ends
# (module_utils/start_log.py reads it). COMMAND runs as `sh -c COMMAND` from /, with stdin closed
# and its output in LOG_DIR/start_command.out and .err. HOSTNAME, when given, becomes the UTS name
# (process nodes run this in a UTS namespace of their own); NODE_DIR, when given, is bind-mounted
# over /var/containers (inside the node's private mount namespace).
log=$1
cmd=$2
host=${3:-}
nodedir=${4:-}
mkdir -p "$log" || exit 1
# open the logs before the bind mount: the log directory may live below /var/containers
exec 3>"$log/start_command.log" 4>"$log/start_command.out" 5>"$log/start_command.err" || exit 1
if [ -n "$host" ]; then
    echo "$host" > /proc/sys/kernel/hostname 2>/dev/null || true
fi
if [ -n "$nodedir" ] && [ -d /var/containers ]; then
    mount --bind "$nodedir" /var/containers 2>&5 || true
fi
echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
cd / || exit 1
HOME=${HOME:-/root} sh -c "$cmd" >&4 2>&5 </dev/null 3>&- 4>&- 5>&-
rc=$?
echo "exit $rc" >&3
echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&3
exit $rc
