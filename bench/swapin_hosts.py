"""python3 -m bench.swapin --hosts 1,2,4 [--nodes 100,400]: process nodes over real hosts vs the local target.

For each node count and host count: one LAN of that many process nodes compiled onto COUNT local
pnodes (--size) and onto COUNT hosts of the test bed (tests/hosts.py, --pnode-hosts-file), each swapped
in, re-run (no change expected) and swapped out. On each, the RTT between two nodes of the first pnode
("same") and between the first nodes of the first two pnodes ("cross"): p50 and p99 of 200 pings.
"ratio" is the hosts' swap-in over the local one with as many pnodes. With --repeat R each is run R
times, local and hosts in turn, after a first pair that is printed but not counted (the hosts' first
SSH connections and cold caches), and the times are medians (RTTs from the first counted run); the
ratio is the median of the R pairs' ratios, each pair's printed below it. See bench/swapin.py's doc.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench.swapin import ANSIBLE_PLAYBOOK, _changed, _rtts, _run, print_header, settle
from bench.topologies import one_lan
from tests import hosts as testbed
from tests.e2e import ENV, REPO


def _compile(source: Path, expdir: Path, name: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--default-container=process",
                    "--out", str(expdir), *args, "bench", name, str(source)],
                   check=True, capture_output=True, env=ENV, cwd=REPO)


def _quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]


def _one(expdir: Path, env: dict) -> dict:
    """Swap-in, no-op re-run, RTTs and swap-out of the compiled EXPDIR."""
    playbook = [*ANSIBLE_PLAYBOOK, "-i", str(expdir / "inventory")]
    settle()
    result: dict = {}
    result["swapin"], _ = _run([*playbook, "playbooks/swapin.yml"], env)
    try:
        result["rerun"], out = _run([*playbook, "playbooks/swapin.yml"], env)
        result["changed"] = _changed(out)
        assignment = yaml.safe_load((expdir / "assignment").read_text())
        firsts = [names for names in assignment.values() if names]
        result["same"] = _quantiles(_rtts(expdir, firsts[0][0], firsts[0][1], env=env))
        result["cross"] = _quantiles(_rtts(expdir, firsts[0][0], firsts[1][0], env=env)) if len(firsts) > 1 else None
    finally:
        result["swapout"], _ = _run([*playbook, "playbooks/swapout.yml"], env)
    return result


def _row(target: str, count: int, nodes: int, result: dict, ratio: float | None) -> str:
    def pair(value):
        return f"{value[0]:.3f}/{value[1]:.3f}" if value else "-"

    added = f"{result['cross'][0] - result['same'][0]:.3f}" if result["cross"] else "-"
    return (f"{target:<6} {count:>5} {nodes:>5} {result['swapin']:>9.2f} {result['rerun']:>9.2f} "
            f"{result['changed']:>7} {result['swapout']:>10.2f} {(f'{ratio:.2f}' if ratio else '-'):>5} "
            f"{pair(result['same']):>15} {pair(result['cross']):>15} {added:>9}")


def _median(results: list[dict]) -> dict:
    """Median of each time over RESULTS (RTTs from the first); changed is the largest any re-run reported."""
    merged = dict(results[0])
    for key in ("swapin", "rerun", "swapout"):
        merged[key] = statistics.median(r[key] for r in results)
    merged["changed"] = max(r["changed"] for r in results)
    return merged


def hosts_table(counts: list[int], sizes: list[int], repeat: int = 1) -> int:
    """Swap-in of SIZES nodes over each of COUNTS hosts of the test bed, next to as many local pnodes."""
    testbed.down(log=lambda _line: None)
    group, key = testbed.up(max(counts), log=lambda line: print(line, file=sys.stderr))
    # the hosts' keys are new on every boot: keep them out of known_hosts (host_key_checking is off)
    env = {**ENV, "ANSIBLE_PRIVATE_KEY_FILE": str(key),
           "ANSIBLE_SSH_COMMON_ARGS": "-o UserKnownHostsFile=/dev/null"}
    workdir = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    print_header(f"{'target':<6} {'pnode':>5} {'nodes':>5} {'swap-in s':>9} {'re-run s':>9} {'changed':>7} "
                 f"{'swap-out s':>10} {'ratio':>5} {'same p50/p99':>15} {'cross p50/p99':>15} {'added p50':>9}")
    try:
        for nodes in sizes:
            source = workdir / f"lan{nodes}.tcl"
            source.write_text(one_lan(nodes))
            for count in counts:
                local_dir = workdir / f"local{nodes}x{count}"
                _compile(source, local_dir, f"l{nodes}x{count}", f"--size={count}")
                hosts_file = workdir / f"hosts{count}.yml"
                hosts_file.write_text("".join(f"- {host.address}\n" for host in group[:count]))
                hosts_dir = workdir / f"hosts{nodes}x{count}"
                _compile(source, hosts_dir, f"h{nodes}x{count}", "--pnode-hosts-file", str(hosts_file))
                # a first pair, shown but not counted: the hosts' first SSH connections (ControlPersist keeps
                # them for the next runs) and their cold page caches are paid there, as by a user's first run
                cold = (_one(local_dir, ENV), _one(hosts_dir, env))
                print(f"{'':<6} first pair (cold, not counted): swap-in {cold[0]['swapin']:.2f} s local, "
                      f"{cold[1]['swapin']:.2f} s hosts, ratio {cold[1]['swapin'] / cold[0]['swapin']:.2f}", flush=True)
                # in pairs, local then hosts: this VM's speed drifts over minutes, and a pair shares it
                pairs = [(_one(local_dir, ENV), _one(hosts_dir, env)) for _ in range(repeat)]
                ratios = [remote["swapin"] / local["swapin"] for local, remote in pairs]
                print(_row("local", count, nodes, _median([local for local, _ in pairs]), None), flush=True)
                print(_row("hosts", count, nodes, _median([remote for _, remote in pairs]),
                           statistics.median(ratios)), flush=True)
                print(f"{'':<6} swap-in ratio of each pair: {' '.join(f'{r:.2f}' for r in ratios)}", flush=True)
    finally:
        testbed.down(log=lambda _line: None)
        shutil.rmtree(workdir, ignore_errors=True)
    left = testbed.leftovers()
    if left:
        print(f"the test bed left {left}", file=sys.stderr)
        return 1
    return 0
