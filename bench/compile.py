#!/usr/bin/env python3
"""Compile generated topologies (LANs of 50 behind a tree of routers) and print a table.

Each size runs in a fresh interpreter so peak memory (max RSS) is that compile's own.
Target on a 2-core machine: 10,000 nodes in at most 10 s and 1 GiB; 100,000 nodes in at most 30 s and 1.5 GiB
(run that size under the e2e lock: flock /tmp/e2e.lock python3 -m bench.compile 100000).
Usage (from the checkout): python3 -m bench.compile [SIZES...]   (default 100 1000 10000)

Every compile writes a directory of its own, and the file system is synced before it starts: a
100,000-node experiment is about 112,000 files, and creating them right after removing as many
(a `--force` over the previous run) or with a gigabyte of the previous run still unwritten measured
the disk, not the compiler (19-50 s for the same compile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.topologies import lan_tree

CHILD = r"""
import json, resource, sys, time
from containerize.cli import main
t = time.monotonic()
rc = main(sys.argv[1:])
wall = time.monotonic() - t
print(json.dumps({"rc": rc, "wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(hosts: int, image: bool, workdir: Path) -> dict:
    source = workdir / f"tree{hosts}.tcl"
    source.write_text(lan_tree(hosts))
    out = workdir / f"exp{hosts}-{'image' if image else 'plain'}"
    args = ["--default-container=process", "--out", str(out), "bench", f"tree{hosts}", str(source)]
    if not image:
        args.insert(0, "--no-image")
    os.sync()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = proc.stdout.strip().splitlines()[0]
    # "<dir>: N nodes on P pnodes, S links/LANs, C crossing pnodes"
    words = summary.split(": ", 1)[1].replace(",", "").split()
    result.update(nodes=int(words[0]), pnodes=int(words[3]), substrates=int(words[5]), cut=int(words[7]))
    return result


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 10000]
    print(f"{'hosts':>6} {'nodes':>6} {'pnodes':>6} {'links/LANs':>10} {'cut':>5} "
          f"{'wall s (no image)':>17} {'peak MiB':>8} {'wall s (image)':>14} {'peak MiB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in sizes:
            plain = run(hosts, False, Path(tmp))
            drawn = run(hosts, True, Path(tmp))
            print(f"{hosts:>6} {plain['nodes']:>6} {plain['pnodes']:>6} {plain['substrates']:>10} {plain['cut']:>5} "
                  f"{plain['wall']:>17.2f} {plain['rss_mb']:>8.0f} {drawn['wall']:>14.2f} {drawn['rss_mb']:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
