#!/usr/bin/env python3
"""Swap-in, no-op re-run and swap-out of one big experiment of process nodes, with the time of each task.

The experiment is issue 15's: a routed tree of N process nodes in LANs of 50 (bench/topologies.py
lan_tree: N hosts plus one router per LAN, 1 ms LANs and router links, so every node has its
wirefilter), compiled onto one pnode of this machine. Each phase's wall time is ansible-playbook's,
from its interpreter's start; the task table (bench/callback_plugins/task_times.py) shows where it
goes, "start-up" being everything before the first task (interpreter, inventory, plays) and after
the last one.
Usage (from the checkout, under the e2e lock):
    python3 -m bench.speed [--repeat R] [--tasks] [--vs "-e VAR=VALUE ..."] [-e VAR=VALUE ...] [N ...]
(default N 1000, R 1). With R > 1 the phases' medians are printed, and each run's times. -e is handed to
every ansible-playbook run of the first variant; --vs adds a second variant (its own playbook arguments),
run in turn with the first cycle by cycle (A B A B ...), so that both see the same neighbours on this
noisy machine.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cli
from bench.swapin import ANSIBLE_PLAYBOOK, _changed, settle
from bench.topologies import lan_tree
from tests.e2e import ENV, REPO

HERE = Path(__file__).resolve().parent
PHASES = (("swap-in", "swapin"), ("re-run", "swapin"), ("swap-out", "swapout"))


def _phase(expdir: Path, playbook: str, times_file: Path, extra: list[str]) -> tuple[float, int, list[dict]]:
    """Run PLAYBOOK (with the playbook arguments EXTRA) on EXPDIR: (wall seconds, changed, [{task, seconds}])."""
    times_file.unlink(missing_ok=True)
    env = {**ENV, "TASK_TIMES_FILE": str(times_file), "ANSIBLE_CALLBACKS_ENABLED": "task_times",
           "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins")}
    cmd = [*ANSIBLE_PLAYBOOK, "-i", str(expdir / "inventory"), f"playbooks/{playbook}.yml", *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    tasks = [json.loads(line) for line in times_file.read_text().splitlines()] if times_file.exists() else []
    return wall, _changed(proc.stdout), tasks


def _cycle(expdir: Path, workdir: Path, extra: list[str]) -> dict:
    """One swap-in, re-run and swap-out: {phase: (wall, changed, tasks)}. A failure swaps out and exits."""
    cycle = {}
    try:
        for label, playbook in PHASES:
            settle()  # every phase starts on a quiet machine (the kernel frees namespaces in the background)
            cycle[label] = _phase(expdir, playbook, workdir / "times.jsonl", extra)
    except SystemExit:
        subprocess.run([*ANSIBLE_PLAYBOOK, "-i", str(expdir / "inventory"), "playbooks/swapout.yml", *extra],
                       capture_output=True, env=ENV, cwd=REPO, check=False)
        raise
    return cycle


def run_size(nodes: int, repeat: int, workdir: Path, variants: list[list[str]]) -> list[list[dict]]:
    """REPEAT cycles of the tree of NODES hosts for each of VARIANTS (playbook arguments), in turn."""
    source = workdir / f"tree{nodes}.tcl"
    source.write_text(lan_tree(nodes, lan_size=50))
    expdir = workdir / f"tree{nodes}"
    subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--size=1",
                    "--default-container=process", "--out", str(expdir), "bench", f"sp{nodes}x{os.getpid()}",
                    str(source)], check=True, capture_output=True, env=ENV, cwd=REPO)
    cycles = [[] for _ in variants]
    for _ in range(repeat):
        for at, extra in enumerate(variants):
            cycles[at].append(_cycle(expdir, workdir, extra))
    return cycles


def task_table(cycle: dict) -> None:
    """Per-task seconds of one cycle, the slowest first, with each phase's start-up."""
    for label, _playbook in PHASES:
        wall, changed, tasks = cycle[label]
        print(f"  {label}: {wall:.2f} s, changed={changed}")
        rows = {}
        for task in tasks:
            rows[task["task"]] = rows.get(task["task"], 0.0) + task["seconds"]
        rows["(start-up and end)"] = wall - sum(t["seconds"] for t in tasks)
        for name, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
            if seconds >= 0.05:
                print(f"    {seconds:7.2f}  {name}")


def _option(args: list[str], name: str) -> str | None:
    """The value of option NAME in ARGS, both taken out of ARGS (None when absent)."""
    if name not in args:
        return None
    at = args.index(name)
    value = args[at + 1]
    del args[at:at + 2]
    return value


def main() -> int:
    args = sys.argv[1:]
    repeat = int(_option(args, "--repeat") or 1)
    other = _option(args, "--vs")
    first = []
    while "-e" in args:
        first += ["-e", _option(args, "-e")]
    variants = [first] + ([shlex.split(other)] if other is not None else [])
    show_tasks = "--tasks" in args
    sizes = [int(a) for a in args if a != "--tasks"] or [1000]
    header = f"{'hosts':>5} {'variant':<24} {'swap-in s':>9} {'re-run s':>8} {'changed':>7} {'swap-out s':>10}   runs"
    print(header)
    print("-" * len(header))
    workdir = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        for size in sizes:
            for extra, cycles in zip(variants, run_size(size, repeat, workdir, variants), strict=True):
                med = {label: statistics.median(c[label][0] for c in cycles) for label, _ in PHASES}
                changed = max(c["re-run"][1] for c in cycles)
                runs = "; ".join(" / ".join(f"{c[label][0]:.1f}" for label, _ in PHASES) for c in cycles)
                name = " ".join(extra) or "(as configured)"
                print(f"{size:>5} {name:<24} {med['swap-in']:>9.2f} {med['re-run']:>8.2f} {changed:>7} "
                      f"{med['swap-out']:>10.2f}   {runs}", flush=True)
                if show_tasks:
                    task_table(cycles[len(cycles) // 2])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, __doc__))
