#!/usr/bin/env python3
"""Swap-in, no-op re-run and swap-out times for process nodes, next to Mininet's bring-up time.

For each size: one LAN of N nodes (100Mb, no delay) and a routed tree (LANs of 10 behind a
binary tree of routers, 1 ms links), compiled onto one pnode of this machine. Mininet brings
up N hosts on one Linux bridge with no controller (`--switch lxbr --controller none`), timed
from its interpreter's start, as ansible-playbook's time is.
Usage: python3 bench/swapin.py [SIZES...]    (default 10 50 100 250)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from topologies import lan_tree, one_lan  # noqa: E402

from tests.e2e import ENV, RECAP, REPO  # noqa: E402


def _run(cmd: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _changed(stdout: str) -> int:
    return sum(int(m[2]) for m in RECAP.findall(stdout))


def measure(name: str, text: str, workdir: Path) -> dict:
    source = workdir / f"{name}.tcl"
    source.write_text(text)
    expdir = workdir / name
    subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--size=1",
                    "--default-container=process", "--out", str(expdir), "bench", name, str(source)],
                   check=True, capture_output=True, env=ENV, cwd=REPO)
    playbook = ["ansible-playbook", "-i", str(expdir / "inventory")]
    swapin, _ = _run([*playbook, "playbooks/swapin.yml"])
    rerun, out = _run([*playbook, "playbooks/swapin.yml"])
    swapout, _ = _run([*playbook, "playbooks/swapout.yml"])
    return {"swapin": swapin, "rerun": rerun, "rerun_changed": _changed(out), "swapout": swapout}


def mininet(hosts: int) -> float | None:
    python = "/usr/bin/python3"
    if not Path(python).exists() or subprocess.run([python, "-c", "import mininet"], capture_output=True).returncode:
        return None
    subprocess.run(["mn", "-c"], capture_output=True, check=False)
    proc = subprocess.run([python, str(HERE / "mininet_up.py"), str(hosts)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return None
    return float(proc.stdout.split()[0])


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 50, 100, 250]
    header = (f"{'topology':<10} {'nodes':>5} {'swap-in s':>9} {'no-op re-run s':>14} {'changed':>7} "
              f"{'swap-out s':>10} {'mininet up s':>12} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    workdir = Path(tempfile.mkdtemp(prefix="bench-swapin-"))
    try:
        for size in sizes:
            mn = mininet(size)
            for label, text, count in (("one LAN", one_lan(size), size),
                                       ("tree", lan_tree(size - size // 11, lan_size=10), None)):
                result = measure(f"{label.replace(' ', '')}{size}", text, workdir)
                nodes = count or _count_nodes(workdir / f"{label.replace(' ', '')}{size}")
                ratio = f"{result['swapin'] / mn:.2f}" if mn and label == "one LAN" else "-"
                mn_text = f"{mn:.2f}" if mn and label == "one LAN" else "-"
                print(f"{label:<10} {nodes:>5} {result['swapin']:>9.2f} {result['rerun']:>14.2f} "
                      f"{result['rerun_changed']:>7} {result['swapout']:>10.2f} {mn_text:>12} {ratio:>6}",
                      flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _count_nodes(expdir: Path) -> int:
    import yaml

    return len(yaml.safe_load((expdir / "embedding.yaml").read_text())["nodes"])


if __name__ == "__main__":
    sys.exit(main())
