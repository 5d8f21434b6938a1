#!/usr/bin/env python3
"""Time from swap-in to all qemu nodes booted, and the memory each node costs.

For each size N (default 1 2 4): one LAN of N qemu nodes, compiled onto one pnode of this machine,
booting the nodes' Debian image (the default: systemd, udev, sshd; the os_image role builds it), or
with --busybox the busybox test image (scripts/build-test-image.sh), under the acceleration the qemu
role picks (TCG here: KVM hangs on these machines). --first also times a first swap-in of one node
whose Debian image is built from the package registry during it (into a fresh directory).
The swap-in runs the hv, vde and qemu roles with
qemu_wait_booted, so its wall time ends when every node has reported `booted`. The image cache,
initramfs and KVM probe are warmed first (not timed). RSS is qemu's resident memory right after
the boot, per node; "boot" is the slowest node's time from its qemu start to its booted report.
Usage (from the checkout): python3 -m bench.qemu [SIZES...] [--memory MiB] [--busybox] [--first]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench.one_kind import timed, write_playbooks
from bench.topologies import one_lan
from tests.e2e import ENV, REPO

IMAGE_DIR = Path("/var/cache/containerize/test-image")
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(size: int, memory: int, workdir: Path, image: dict) -> dict:
    name = f"qemu{size}"
    source = workdir / f"{name}.tcl"
    source.write_text(one_lan(size))
    expdir = workdir / name
    subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--size=1",
                    "--default-container=qemu", "--out", str(expdir), "bench", name, str(source)],
                   check=True, capture_output=True, env=ENV, cwd=REPO)  # fmt: skip
    extra = ["-e", json.dumps({**image, "qemu_memory": memory, "qemu_stop_timeout": 10})]
    base = ["ansible-playbook", "-i", str(expdir / "inventory"), *extra]
    swapin_yml, swapout_yml = write_playbooks(workdir, "qemu")
    try:
        swapin = timed([*base, str(swapin_yml)])
        host_vars = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
        run_dir = Path(host_vars["containerize_run_dir"])
        rss, boots = [], []
        for node in host_vars["containerize_nodes"]:
            record = json.loads((run_dir / f"{node['name']}.qemu.json").read_text())
            rss.append(_rss_kib(record["pid"]))
            booted = Path(host_vars["containerize_nodes_dir"]) / node["name"] / "log" / "booted"
            boots.append(booted.stat().st_mtime - record["started"])
    finally:
        swapout = timed([*base, str(swapout_yml)])
    return {"swapin": swapin, "boot": max(boots), "rss": rss, "swapout": swapout}


def main() -> int:
    args = sys.argv[1:]
    memory = 256
    if "--memory" in args:
        index = args.index("--memory")
        memory = int(args[index + 1])
        del args[index : index + 2]
    busybox, first = "--busybox" in args, "--first" in args
    sizes = [int(a) for a in args if not a.startswith("--")] or [1, 2, 4]
    image = {}
    if busybox:
        subprocess.run(["bash", str(REPO / "scripts" / "build-test-image.sh"), str(IMAGE_DIR)], check=True,
                       capture_output=True)  # fmt: skip
        image = {"qemu_default_url": str(IMAGE_DIR / "rootfs.tar.gz")}
    workdir = Path(tempfile.mkdtemp(prefix="bench-qemu-"))
    try:
        if first:
            fresh = workdir / "fresh-image" / "debian-12.tar.gz"
            result = measure(1, memory, workdir, {"qemu_os_image": str(fresh)})
            print(f"first swap-in of 1 Debian node, image built during it: {result['swapin']:.1f} s "
                  f"(boot {result['boot']:.1f} s)", flush=True)
        measure(1, memory, workdir, image)  # warm the image cache, the initramfs and the KVM probe
        accel = "?"
        for path in Path("/var/containers/images").glob("accel-*.json"):
            accel = json.loads(path.read_text()).get("accel", "?")
        header = (f"{'nodes':>6} {'accel':>5} {'swap-in to all booted s':>23} {'slowest boot s':>14} "
                  f"{'RSS/node MiB (min-max)':>23} {'swap-out s':>10}")  # fmt: skip
        cores = sum(1 for line in open("/proc/cpuinfo") if line.startswith("processor"))
        print(f"{'busybox test image' if busybox else 'Debian 12 image'}, memory per node {memory} MiB, {cores}"
              " host cores")
        print(header)
        print("-" * len(header))
        for size in sizes:
            result = measure(size, memory, workdir, image)
            rss = sorted(r / 1024 for r in result["rss"])
            print(f"{size:>6} {accel:>5} {result['swapin']:>23.1f} {result['boot']:>14.1f} "
                  f"{f'{rss[0]:.0f}-{rss[-1]:.0f}':>23} {result['swapout']:>10.1f}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
