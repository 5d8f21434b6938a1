#!/usr/bin/env python3
"""Time from swap-in to all openvz nodes booted, and the memory an idle container costs.

For each size N (default 1 5 20): one LAN of N openvz nodes compiled onto one pnode of this
machine, each a systemd-nspawn container of the nodes' Debian image (template debian-12, built by
the os_image role when missing: systemd as PID 1, sshd), or with --busybox the busybox test
template (scripts/build-openvz-template.sh). The swap-in runs the hv, vde and openvz roles with
openvz_wait_booted, so its wall time ends when every container has run its rc.local. The image is
built first (not timed). "PSS/node" is the proportional set size of all of a container's processes
(systemd-nspawn and everything below it) a few seconds after the boot.
Usage (from the checkout): python3 -m bench.openvz [SIZES...] [--busybox] [--disk image|directory]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.one_kind import timed, write_playbooks
from bench.topologies import one_lan
from tests.e2e import ENV, REPO

BUSYBOX_DIR = Path("/var/cache/containerize/openvz")
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _pss_kib(pid: int, tree: dict[int, list[int]]) -> int:
    """PSS of PID and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def measure(size: int, workdir: Path, extra_vars: dict, args: list[str]) -> dict:
    name = f"ovz{size}"
    source = workdir / f"{name}.tcl"
    source.write_text(one_lan(size))
    expdir = workdir / name
    subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--size=1",
                    "--default-container=openvz", *args, "--out", str(expdir), "bench", name, str(source)],
                   check=True, capture_output=True, env=ENV, cwd=REPO)  # fmt: skip
    base = ["ansible-playbook", "-i", str(expdir / "inventory"), "-e", json.dumps(extra_vars)]
    swapin_yml, swapout_yml = write_playbooks(workdir, "openvz")
    try:
        swapin = timed([*base, str(swapin_yml)])
        host_vars = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
        run_dir = Path(host_vars["containerize_run_dir"])
        time.sleep(5)  # idle: let the containers' boot jobs finish
        tree = _children()
        pss = [_pss_kib(int((run_dir / f"{n['name']}.openvz.pid").read_text().split()[0]), tree)
               for n in host_vars["containerize_nodes"]]  # fmt: skip
    finally:
        swapout = timed([*base, str(swapout_yml)])
    return {"swapin": swapin, "pss": pss, "swapout": swapout}


def main() -> int:
    args = sys.argv[1:]
    busybox = "--busybox" in args
    disk = "auto"
    if "--disk" in args:
        disk = args[args.index("--disk") + 1]
        del args[args.index("--disk") : args.index("--disk") + 2]
    sizes = [int(a) for a in args if not a.startswith("--")] or [1, 5, 20]
    extra_vars = {"openvz_disk": disk, "openvz_stop_timeout": 10}
    compile_args: list[str] = []
    if busybox:
        subprocess.run(["bash", str(REPO / "scripts" / "build-openvz-template.sh"), str(BUSYBOX_DIR)], check=True,
                       capture_output=True)  # fmt: skip
        compile_args = ["--openvz-template", "busybox", "--openvz-template-dir", str(BUSYBOX_DIR)]
    else:
        subprocess.run([sys.executable, "-m", "containerize.cli", "image-build", "--quiet"], check=True, env=ENV,
                       cwd=REPO, capture_output=True)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench-openvz-"))
    try:
        header = f"{'nodes':>6} {'swap-in to all booted s':>23} {'PSS/node MiB (min-max)':>23} {'swap-out s':>10}"
        print(f"{'busybox template' if busybox else 'Debian 12 template'}, disk {disk}")
        print(header)
        print("-" * len(header))
        for size in sizes:
            result = measure(size, workdir, extra_vars, compile_args)
            pss = sorted(p / 1024 for p in result["pss"])
            print(f"{size:>6} {result['swapin']:>23.1f} {f'{pss[0]:.0f}-{pss[-1]:.0f}':>23} "
                  f"{result['swapout']:>10.1f}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
