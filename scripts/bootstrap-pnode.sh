#!/bin/sh
# Start command of every pnode in the host experiment (phys_topo.ns, testbed target), installed
# on the testbed as EXEC_ROOT/bootstrap-pnode. It runs as root at each boot of the pnode and only
# prepares the machine for Ansible: swap-in itself is `ansible-playbook playbooks/swapin.yml`
# run by the experimenter over SSH. Written for a Debian-like host OS; not run on a real testbed.
# Usage: bootstrap-pnode PID EID PNODE
set -eu
[ $# -eq 3 ] || { echo "usage: $0 PID EID PNODE" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
missing=""
for pkg in python3 vde2 iproute2 iputils-ping procps; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    apt-get -q update && apt-get -q -y install $missing
fi
# the uplinks of substrates that cross pnodes need these (vde_uplinks)
modprobe bridge 2>/dev/null || true
modprobe vxlan 2>/dev/null || true
echo "pnode $3 of $2.$1 is ready for ansible-playbook swapin.yml"
