#!/usr/bin/env python3
"""Swap-in, no-op re-run and swap-out times for process nodes, next to Mininet's bring-up time.

For each size: one LAN of N nodes (100Mb, no delay) and a routed tree (LANs of 10 behind a
binary tree of routers, 1 ms links), compiled onto one pnode of this machine. Mininet brings
up N hosts on one Linux bridge with no controller (`--switch lxbr --controller none`), timed
from its interpreter's start, as ansible-playbook's time is.
Usage (from the checkout): python3 -m bench.swapin [--repeat N] [SIZES...]    (default 10 50 100 250, N 3)

Each size is run N times, Mininet and ours in turn, and the table shows medians (the ratios are
median swap-in / median Mininet bring-up and median swap-out / median Mininet stop, `net.stop()`):
this machine is a VM whose neighbours steal CPU, and single runs vary by +-30 %. Every phase starts
on a settled machine (settle(): the CPUs at least 90 % idle for a second), because the kernel frees
deleted network namespaces in the background (taking the rtnl lock that link set-up needs), so the
previous phase's clean-up would otherwise slow down the next one, ours or Mininet's.

With --pnodes 1,2,4 [--nodes 100]: one LAN of that many process nodes split over 1, 2 and 4 local
pnodes (--size), so the LAN crosses every pnode and is carried between them over VXLAN. Prints the
swap-in, no-op re-run and swap-out times, and the round-trip time between two nodes on the same
pnode ("local") and on different pnodes ("cross", through both pnodes' uplinks), median of 200
pings each after a warm-up; "added" is their difference. "cable" is the same cross-pnode RTT with
the VXLAN uplink replaced by a VDE cable between the two switches (`dpipe vde_plug = vde_plug`,
the transport a `vde_plug = ssh vde_plug` cable would use, minus SSH): the alternative the VXLAN
design was chosen over.

With --hosts 1,2,4 [--nodes 100,400] [--repeat R]: the same LAN of process nodes over 1, 2 and 4 real hosts of
the test bed (tests/hosts.py: Debian nspawn machines with their own sshd, booted here; compiled with
--pnode-hosts-file, so the modules travel by AnsiballZ over SSH), each next to the same nodes on as
many pnodes of the local target. Prints swap-in, no-op re-run and swap-out, the ratio of the hosts'
swap-in to the local one, and the RTT between two nodes of one host (pnode) and of two hosts
(pnodes): p50 and p99 of 200 pings each after a warm-up. The test bed is booted once and taken
down at the end (run it under the e2e lock).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cli
from bench.topologies import lan_tree, one_lan
from tests.e2e import ENV, RECAP, REPO

HERE = Path(__file__).resolve().parent

# ansible-playbook run by this interpreter, not through a wrapper on PATH: a pyenv shim (a bash
# script that starts pyenv) adds ~0.2 s to every run that is not ours to measure
ANSIBLE_PLAYBOOK = [sys.executable, "-m", "ansible", "playbook"]


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def settle(idle_share: float = 0.9, limit: float = 60.0) -> None:
    """Wait until the CPUs were IDLE_SHARE idle over a whole second (at most LIMIT seconds)."""
    deadline = time.monotonic() + limit
    idle, total = _cpu_times()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now_idle, now_total = _cpu_times()
        if now_total > total and (now_idle - idle) / (now_total - total) >= idle_share:
            return
        idle, total = now_idle, now_total


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, cwd=REPO, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        fatal = "\n".join(re.findall(r"^fatal: .*|^    msg: .*(?:\n        .*){0,3}", proc.stdout, re.M))
        raise SystemExit(f"{' '.join(cmd)} failed:\n{fatal or proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _changed(stdout: str) -> int:
    return sum(int(m[2]) for m in RECAP.findall(stdout))


def measure(name: str, text: str, workdir: Path) -> dict:
    """One swap-in, no-op re-run and swap-out of the topology TEXT (compiled on the first call)."""
    source = workdir / f"{name}.tcl"
    expdir = workdir / name
    if not expdir.exists():
        source.write_text(text)
        subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", "--size=1",
                        "--default-container=process", "--out", str(expdir), "bench", name, str(source)],
                       check=True, capture_output=True, env=ENV, cwd=REPO)
    playbook = [*ANSIBLE_PLAYBOOK, "-i", str(expdir / "inventory")]
    settle()
    swapin, _ = _run([*playbook, "playbooks/swapin.yml"])
    rerun, out = _run([*playbook, "playbooks/swapin.yml"])
    swapout, _ = _run([*playbook, "playbooks/swapout.yml"])
    return {"swapin": swapin, "rerun": rerun, "rerun_changed": _changed(out), "swapout": swapout}


def _median_run(runs: list[dict]) -> dict:
    """Median of each time over RUNS; changed is the largest any re-run reported."""
    merged = {key: statistics.median(r[key] for r in runs) for key in ("swapin", "rerun", "swapout")}
    merged["rerun_changed"] = max(r["rerun_changed"] for r in runs)
    return merged


def mininet(hosts: int) -> tuple[float, float] | None:
    """Seconds Mininet takes to bring HOSTS hosts up (from its interpreter's start) and to stop them."""
    python = "/usr/bin/python3"
    if not Path(python).exists() or subprocess.run([python, "-c", "import mininet"], capture_output=True).returncode:
        return None
    subprocess.run(["mn", "-c"], capture_output=True, check=False)
    settle()
    proc = subprocess.run([python, str(HERE / "mininet_up.py"), str(hosts)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return None
    up, stop = proc.stdout.split()[:2]
    return float(up), float(stop)


def _rtts(expdir: Path, source: str, target: str, count: int = 200, env: dict | None = None) -> list[float]:
    """RTTs in ms of COUNT pings from SOURCE to TARGET (after a warm-up ping)."""
    exec_ = [sys.executable, "-m", "containerize.cli", "exec", str(expdir), source, "--"]
    subprocess.run([*exec_, "ping", "-c", "2", "-W", "2", target], capture_output=True, env=env or ENV, cwd=REPO,
                   check=False)
    out = subprocess.run([*exec_, "ping", "-n", "-c", str(count), "-i", "0.01", "-W", "2", target],
                         capture_output=True, text=True, env=env or ENV, cwd=REPO, check=False).stdout
    samples = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    if len(samples) < count // 2:
        raise SystemExit(f"{source} -> {target}: too few replies\n{out[-2000:]}")
    return samples


def _rtt(expdir: Path, source: str, target: str, count: int = 200) -> float:
    """Median RTT in ms of COUNT pings from SOURCE to TARGET (after a warm-up ping)."""
    return statistics.median(_rtts(expdir, source, target, count))


def _cable_rtt(expdir: Path, placement: dict, source: str, target: str) -> float:
    """Cross-pnode RTT with the two pnodes' switches joined by a VDE cable instead of VXLAN.

    The uplink plugs are stopped first (their switch ports close, so the switches forget the MACs
    learned there); the swap-out that follows cleans up as usual.
    """
    import os
    import signal

    import yaml

    tag = yaml.safe_load((expdir / "inventory" / "group_vars" / "all.yml").read_text())["containerize_exp_tag"]
    sockets = []
    for pnode in (placement[source], placement[target]):
        pvars = yaml.safe_load((expdir / "inventory" / "host_vars" / f"{pnode}.yml").read_text())
        run_dir = Path(pvars["containerize_root"]) / "run" / tag
        switch = pvars["containerize_uplinks"][0]["switch"]
        os.kill(int((run_dir / f"{switch}.uplink.pid").read_text()), signal.SIGTERM)
        sockets.append(str(run_dir / f"{switch}.ctl"))
    # dpipe makes its own process group (and fails as a session leader): kill that group at the end
    cable = subprocess.Popen(["dpipe", "vde_plug", sockets[0], "=", "vde_plug", sockets[1]],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        return _rtt(expdir, source, target)
    finally:
        os.killpg(cable.pid, signal.SIGTERM)
        cable.wait()


def print_header(header: str) -> None:
    print(header)
    print("-" * len(header))


def pnodes_table(counts: list[int], nodes: int) -> int:
    """Swap-in of NODES nodes on one LAN over each number of local pnodes, and the cross-pnode RTT."""
    import yaml

    print_header(f"{'pnodes':>6} {'nodes':>5} {'swap-in s':>9} {'no-op re-run s':>14} {'changed':>7} "
                 f"{'swap-out s':>10} {'local RTT ms':>12} {'cross RTT ms':>12} {'added ms':>8} {'cable RTT ms':>12}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-pnodes-"))
    try:
        source = workdir / "lan.tcl"
        source.write_text(one_lan(nodes))
        for count in counts:
            expdir = workdir / f"lan{count}"
            subprocess.run([sys.executable, "-m", "containerize.cli", "--no-image", "--force", f"--size={count}",
                            "--default-container=process", "--out", str(expdir), "bench", f"pn{count}", str(source)],
                           check=True, capture_output=True, env=ENV, cwd=REPO)
            playbook = [*ANSIBLE_PLAYBOOK, "-i", str(expdir / "inventory")]
            swapin, _ = _run([*playbook, "playbooks/swapin.yml"])
            try:
                rerun, out = _run([*playbook, "playbooks/swapin.yml"])
                assignment = yaml.safe_load((expdir / "assignment").read_text())
                placement = {n: p for p, names in assignment.items() for n in names}
                first = next(iter(assignment.values()))
                local = _rtt(expdir, first[0], first[1])
                cross = cable = None
                if count > 1:
                    other = list(assignment.values())[1][0]
                    cross = _rtt(expdir, first[0], other)
                    cable = _cable_rtt(expdir, placement, first[0], other)
            finally:
                swapout, _ = _run([*playbook, "playbooks/swapout.yml"])

            def ms(value):
                return f"{value:.3f}" if value is not None else "-"

            added = ms(cross - local) if cross is not None else "-"
            print(f"{count:>6} {nodes:>5} {swapin:>9.2f} {rerun:>14.2f} {_changed(out):>7} {swapout:>10.2f} "
                  f"{ms(local):>12} {ms(cross):>12} {added:>8} {ms(cable):>12}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    args = sys.argv[1:]
    if "--hosts" in args:
        from bench.swapin_hosts import hosts_table

        counts = [int(c) for c in args[args.index("--hosts") + 1].split(",")]
        sizes = [int(n) for n in args[args.index("--nodes") + 1].split(",")] if "--nodes" in args else [100, 400]
        repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 1
        return hosts_table(counts, sizes, repeat)
    if "--pnodes" in args:
        at = args.index("--pnodes")
        counts = [int(c) for c in args[at + 1].split(",")]
        nodes = int(args[args.index("--nodes") + 1]) if "--nodes" in args else 100
        return pnodes_table(counts, nodes)
    repeat = 3
    if "--repeat" in args:
        at = args.index("--repeat")
        repeat = int(args[at + 1])
        del args[at:at + 2]
    sizes = [int(a) for a in args] or [10, 50, 100, 250]
    print_header(f"{'topology':<10} {'nodes':>5} {'swap-in s':>9} {'no-op re-run s':>14} {'changed':>7} "
                 f"{'swap-out s':>10} {'mininet up s':>12} {'ratio':>6} {'mininet stop s':>14} {'ratio':>6}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-swapin-"))
    try:
        for size in sizes:
            lan_runs, mn_runs = [], []
            for _ in range(repeat):  # in turn, so that both see the same neighbours
                mn_runs.append(mininet(size))
                lan_runs.append(measure(f"oneLAN{size}", one_lan(size), workdir))
            mn = [statistics.median(run[i] for run in mn_runs) for i in (0, 1)] if None not in mn_runs else None
            for label, text, count in (("one LAN", None, size),
                                       ("tree", lan_tree(size - size // 11, lan_size=10), None)):
                if text is None:
                    result = _median_run(lan_runs)
                else:
                    result = _median_run([measure(f"tree{size}", text, workdir) for _ in range(repeat)])
                nodes = count or _count_nodes(workdir / f"{label.replace(' ', '')}{size}")
                versus = mn and label == "one LAN"
                up, up_ratio, stop, stop_ratio = (
                    (f"{mn[0]:.2f}", f"{result['swapin'] / mn[0]:.2f}",
                     f"{mn[1]:.2f}", f"{result['swapout'] / mn[1]:.2f}") if versus else ("-",) * 4)
                print(f"{label:<10} {nodes:>5} {result['swapin']:>9.2f} {result['rerun']:>14.2f} "
                      f"{result['rerun_changed']:>7} {result['swapout']:>10.2f} {up:>12} {up_ratio:>6} {stop:>14} "
                      f"{stop_ratio:>6}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _count_nodes(expdir: Path) -> int:
    import yaml

    return len(yaml.safe_load((expdir / "embedding.yaml").read_text())["nodes"])


if __name__ == "__main__":
    sys.exit(cli.run(main, __doc__))
