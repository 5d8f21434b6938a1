#!/usr/bin/env python3
"""The data path by percentiles: round trips against the plan, and throughput, where issue 15 asks.

Two experiments of process nodes on this machine, swapped in, measured one setting after another (so
the settings do not compete for the 2 cores) and always swapped out at the end:

- a small one (pairs of nodes, one duplex-link each): `q` a 5 ms link (10 ms planned round trip)
  with both nodes on one pnode; `x` the same link with its nodes on two local pnodes
  (containers:partition 0 and 1, so the link crosses them over VXLAN); `u` an unshaped link (10 Gb/s,
  no delay: nothing on this machine reaches that rate); `h` a 100 Mb/s link; `p` a link losing 10 %
  each way; `la`, `lb`, `lc` a LAN with no delay (10 Gb/s), which the compiler puts on a kernel bridge.
- a big one: a routed tree of 1,000 idle process nodes (bench/topologies.py, LANs of 50, 1 ms LANs:
  2 ms planned between two members of a LAN), swapped in next to the small one.

Rows, each from >= 200 pings (after a warm-up) against the round trip the compiler planned
(shaping.yaml), p50 and p99 with the issue's bounds (within X % or Y ms of the plan, whichever is
larger):
  one pnode, quiet        q             p50 3 % / 0.3 ms    p99 10 % / 1 ms
  across pnodes           x             p50 3 % / 0.5 ms    p99 10 % / 1 ms
  under load              q, while iperf3 fills u           (the one-pnode bounds)
                          (the elements on the data path's CPU, every node on the others: hv_datapath_cpus)
  the same, placed        r while iperf3 fills v, v's nodes on the first of the nodes' CPUs and r's on
                          the others (containers:cpus; only where the nodes have two CPUs or more)
  1,000 idle: inside      two nodes of one LAN of the big experiment   p50 5 % / 0.5 ms  p99 25 % / 2 ms
  1,000 idle: next to it  q of the small experiment                    (the same)
  LAN, kernel bridge      la -> lc (no delay planned)                  (the one-pnode bounds)
and throughput (iperf3, TCP payload received): u and la -> lb >= 1000 Mb/s, h 95 +- 5 Mb/s; loss of p inside the
95 % binomial interval (bench/fidelity.py's measure_loss).

Usage (from the checkout): python3 -m bench.datapath [--quick] [--big N] [--json] [--element wirefilter]
--quick: a 100-node big experiment, 3 s iperf3 runs (tests/test_datapath.py runs it). The exit status
is 0 when bounds are missed (this is a measurement); the table says which.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import cpu_list, plan_split
from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import cpu_set
from bench import fidelity
from bench.swapin import settle
from bench.topologies import lan_tree
from tests.e2e import ENV, REPO, compile_topology, ping_rtts, playbook

COUNT = 200  # round trips per row
SWAPIN_EXTRA: list[str] = []  # --element wirefilter: ["-e", "vde_wire_element=false"]
BIG = 1000
# (share of the plan, milliseconds): a percentile is within the larger of the two
QUIET = ((0.03, 0.3), (0.10, 1.0))
CROSS = ((0.03, 0.5), (0.10, 1.0))
CROWD = ((0.05, 0.5), (0.25, 2.0))
UNSHAPED_MIN_MBIT = 1000.0
SHAPED_MBIT, SHAPED_TOLERANCE = 95.0, 5.0  # a 100 Mb/s link: TCP payload

PAIRS = [
    fidelity.Case("q", "delay", 100, delay_ms=5),
    fidelity.Case("x", "delay", 100, delay_ms=5),
    fidelity.Case("u", "ceiling", 10000),
    fidelity.Case("h", "bandwidth", 100),
    fidelity.Case("p", "loss", 100, loss=0.1),
    # q and u again, placed with containers:cpus (r on all CPUs but the last, v on the last one)
    fidelity.Case("r", "delay", 100, delay_ms=5),
    fidelity.Case("v", "ceiling", 10000),
]
LAN = fidelity.Case("l", "ceiling", 10000)  # la, lb and lc on one LAN: a kernel bridge (docs/datapath.md)


def cpu_places() -> dict[str, str]:
    """containers:cpus of r's and v's nodes among the nodes' CPUs (hv_datapath_cpus auto keeps the last for
    the data path): the loaded pair v on the first, r on the others (none where the nodes have one CPU)."""
    split = plan_split("auto", os.sched_getaffinity(0))
    nodes = sorted(cpu_set(split["nodes"])) if split else []
    if len(nodes) < 2:
        return {}
    rest = cpu_list(nodes[1:])
    return {"ra": rest, "rb": rest, "va": str(nodes[0]), "vb": str(nodes[0])}


def small_topology() -> str:
    """fidelity's pairs, every node on pnode 0 but xb, on pnode 1; r and v placed on CPUs (cpu_places)."""
    text = fidelity.topology(PAIRS)
    places = [f"tb-add-node-attribute ${c.name}{end} containers:partition {int(c.name + end == 'xb')}"
              for c in PAIRS for end in "ab"]
    places += [f"tb-add-node-attribute ${node} containers:cpus {cpus}" for node, cpus in cpu_places().items()]
    members = [f"{LAN.name}{end}" for end in "abc"]
    lan = [f"set {node} [$ns node]\ntb-add-node-attribute ${node} containers:partition 0" for node in members]
    lan.append(f'set lan{LAN.name} [$ns make-lan "{" ".join("$" + n for n in members)}" {LAN.bandwidth_mbit:g}Mb 0ms]')
    return text.replace("$ns rtproto Static", "\n".join(lan + places) + "\n$ns rtproto Static")


class Swapped(fidelity.Experiment):
    """An experiment of TEXT (ns2) compiled with ARGS, swapped in for a `with` block (fidelity's
    Experiment: swap-out on the way out, whatever happens)."""

    def __init__(self, label: str, text: str, *args: str):
        super().__init__([])
        self.name = f"{label}{os.getpid()}x{int(time.time()) % 100000}"
        self.text, self.args = text, args
        self.swapin_s = None

    def __enter__(self) -> Swapped:
        try:
            source = self.workdir / "topology.tcl"
            source.write_text(self.text)
            compile_topology(source, self.expdir, "bench", self.name, "--default-container=process", *self.args)
            self.swapped_in = True
            started = time.monotonic()
            playbook(self.expdir, "swapin", *SWAPIN_EXTRA)
            self.swapin_s = time.monotonic() - started
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self


def planned_rtt(expdir: Path, first: str, second: str) -> float:
    """The round trip in ms the compiler planned between two members of one substrate: both nodes'
    hops there, out and in (a tc-shaped hop plans its delay outbound only)."""
    plan = yaml.safe_load((expdir / "shaping.yaml").read_text())
    subs = [{e["substrate"] for e in plan if e["node"] == n} for n in (first, second)]
    shared = subs[0] & subs[1]
    if not shared:
        raise SystemExit(f"{first} and {second} share no link or LAN")
    return sum(e["outbound"]["delay_ms"] + e["inbound"]["delay_ms"] for e in plan
               if e["node"] in (first, second) and e["substrate"] in shared)


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile (share 0.5: the median, 0.99: p99)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rtt_row(title: str, exp: Swapped, first: str, second: str, bounds, count: int = COUNT) -> dict:
    rtts = ping_rtts(exp.expdir, first, second, count)
    if len(rtts) < count:
        raise SystemExit(f"{title}: {len(rtts)} of {count} round trips came back")
    plan = planned_rtt(exp.expdir, first, second)
    row = {"row": title, "kind": "rtt", "pair": f"{first} -> {second}", "planned_ms": plan, "count": len(rtts),
           "p50_ms": percentile(rtts, 0.50), "p99_ms": percentile(rtts, 0.99), "max_ms": max(rtts),
           "mean_ms": statistics.fmean(rtts)}
    for key, (share, floor) in zip(("p50", "p99"), bounds, strict=True):
        allowed = max(share * plan, floor)
        row[f"{key}_bound_ms"] = allowed
        # ping prints 10.3 for [10.25, 10.35): 10.3 - 10.0 must count as 0.3, not 0.30000000000000071
        row[f"{key}_ok"] = abs(row[f"{key}_ms"] - plan) <= allowed + 1e-9
    row["ok"] = row["p50_ok"] and row["p99_ok"]
    return row


def throughput_row(title: str, exp: Swapped, case: fidelity.Case, seconds: int) -> dict:
    data = fidelity.iperf3(exp, f"{case.name}a", f"{case.name}b", seconds)
    mbit = data["end"]["sum_received"]["bits_per_second"] / 1e6
    if case.kind == "ceiling":
        bound, ok = f">= {UNSHAPED_MIN_MBIT:g} Mb/s", mbit >= UNSHAPED_MIN_MBIT
    else:
        bound, ok = f"{SHAPED_MBIT:g} +- {SHAPED_TOLERANCE:g} Mb/s", abs(mbit - SHAPED_MBIT) <= SHAPED_TOLERANCE
    return {"row": title, "kind": "throughput", "planned": f"{case.bandwidth_mbit:g} Mb/s", "measured_mbit": mbit,
            "retransmits": data["end"]["sum_sent"].get("retransmits"), "bound": bound, "ok": ok}


def loss_row(title: str, exp: Swapped, case: fidelity.Case) -> dict:
    found = fidelity.measure_loss(exp, case)
    low, high = found["interval"]
    return {"row": title, "kind": "loss", "planned": f"{found['expected'] * 100:.2f} % RT",
            "measured": f"{found['measured'] * 100:.2f} % ({found['lost']}/{found['sent']})",
            "bound": f"95% [{low * 100:.2f}, {high * 100:.2f}] %", "ok": found["ok"],
            **{key: found[key] for key in ("sent", "lost", "expected")}}


def under_load(title: str, exp: Swapped, seconds: float, pair: str = "q", load: str = "u") -> dict:
    """PAIR's round trips while iperf3 sends over LOAD as fast as it can, for the whole measurement."""
    server = subprocess.Popen(fidelity.exec_argv(exp.expdir, f"{load}b", "iperf3", "-s", "-1"), env=ENV,
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    client = subprocess.Popen(fidelity.exec_argv(exp.expdir, f"{load}a", "iperf3", "-c", f"{load}b", "-t",
                                                 f"{seconds:g}", "-J"), env=ENV, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.0)  # TCP at full speed
        row = rtt_row(title, exp, f"{pair}a", f"{pair}b", QUIET)
    finally:
        out, _ = client.communicate(timeout=seconds + 60)
        for proc in (client, server):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    try:
        row["load_mbit"] = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    except (ValueError, KeyError):
        row["load_mbit"] = None
    return row


def run(big: int, seconds: int, progress=None) -> tuple[list[dict], dict]:
    rows, times = [], {}

    def add(row):
        rows.append(row)
        if progress:
            progress(row)

    with Swapped("dps", small_topology()) as small:
        times["small swap-in s"] = small.swapin_s
        add(rtt_row("one pnode, quiet", small, "qa", "qb", QUIET))
        add(rtt_row("across two pnodes", small, "xa", "xb", CROSS))
        add(under_load("one pnode, iperf3 on another link", small, COUNT * 0.05 + 4))
        if cpu_places():
            settle()
            add(under_load("the same, the loaded nodes on a CPU of their own (containers:cpus)", small,
                           COUNT * 0.05 + 4, pair="r", load="v"))
        add(throughput_row("throughput, unshaped link", small, PAIRS[2], seconds))
        add(throughput_row("throughput, 100 Mb/s link", small, PAIRS[3], seconds))
        add(rtt_row("LAN without delay, kernel bridge", small, f"{LAN.name}a", f"{LAN.name}c", QUIET))
        add(throughput_row("throughput, LAN without delay (kernel bridge)", small, LAN, seconds))
        add(loss_row("loss 10 % each way", small, PAIRS[4]))
        settle()
        with Swapped("dpb", lan_tree(big, lan_size=50), "--size=1") as crowd:
            times[f"{big}-node tree swap-in s"] = crowd.swapin_s
            settle()
            add(rtt_row(f"inside a {big}-node experiment", crowd, "n-0-1", "n-0-2", CROWD))
            add(rtt_row(f"second experiment next to {big} nodes", small, "qa", "qb", CROWD))
            started = time.monotonic()
        times[f"{big}-node tree swap-out s"] = time.monotonic() - started
    return rows, times


# ----------------------------------------------------------------------------------------------
# report


def cells(row: dict) -> list[str]:
    verdict = "ok" if row["ok"] else "MISS"
    if row["kind"] == "rtt":
        misses = [key for key in ("p50", "p99") if not row[f"{key}_ok"]]
        if misses:
            verdict += " (" + ", ".join(misses) + ")"
        load = f", load {row['load_mbit']:.0f} Mb/s" if row.get("load_mbit") else ""
        return [row["row"], f"{row['planned_ms']:.2f} ms RTT",
                f"p50 {row['p50_ms']:.3f}, p99 {row['p99_ms']:.3f}, max {row['max_ms']:.2f} ms ({row['count']}{load})",
                f"p50 +-{row['p50_bound_ms']:.2f}, p99 +-{row['p99_bound_ms']:.2f} ms", verdict]
    if row["kind"] == "throughput":
        return [row["row"], row["planned"], f"{row['measured_mbit']:.1f} Mb/s ({row['retransmits']} retr.)",
                row["bound"], verdict]
    return [row["row"], row["planned"], row["measured"], row["bound"], verdict]


HEADER = ["row", "planned", "measured", "bound", "verdict"]


def table(rows: list[dict]) -> str:
    lines = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(HEADER))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 100-node big experiment, 3 s iperf3 runs")
    parser.add_argument("--big", type=int, help=f"process nodes of the big experiment (default {BIG}, quick 100)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--element", choices=["cz-wire", "wirefilter"], default="cz-wire",
                        help="the shaping element of the wirefilter paths (vde role's vde_wire_element)")
    args = parser.parse_args(argv)
    SWAPIN_EXTRA[:] = ["-e", "vde_wire_element=false"] if args.element == "wirefilter" else []
    big = args.big or (100 if args.quick else BIG)
    before = os.getloadavg()
    rows, times = run(big, 3 if args.quick else 5,
                      progress=None if args.json else lambda r: print(f"  measured {r['row']}", file=sys.stderr,
                                                                      flush=True))
    after = os.getloadavg()
    if args.json:
        print(json.dumps({"rows": rows, "times": times, "load_before": before, "load_after": after}, indent=1))
        return 0
    print(table(rows))
    print("\n" + ", ".join(f"{k} {v:.1f}" for k, v in times.items() if v is not None))
    print(f"load average before {before[0]:.2f}, after {after[0]:.2f} ({os.cpu_count()} cores); "
          f"{sum(not r['ok'] for r in rows)} of {len(rows)} rows miss their bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
