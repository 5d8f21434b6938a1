#!/usr/bin/env bash
# Install what containerize needs on a Debian machine (as root). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(vde2 iproute2 iputils-ping procps psmisc tcl python3-tk mininet bridge-utils qemu-system-x86 qemu-utils linux-image-amd64 busybox-static e2fsprogs cpio kmod systemd-container graphviz strace iperf3 mmdebstrap openssh-client gcc libc6-dev)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
