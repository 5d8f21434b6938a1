"""The data path against issue 15's bounds, in small form: bench/datapath.py with a 50-node crowd.

The fast tests check the bench's own arithmetic and plan reading, and the real-time priority the
data-path daemons get (daemons.make_realtime). The measurement (marked slow, about 2 minutes) swaps
in the bench's two experiments once. A CI machine is loaded, so it asserts what load cannot fake:
every round trip row's p50 within 5 % or 0.5 ms of the plan (15 % or 2 ms while iperf3 fills another
link, unless the loaded nodes are kept off the measured pair's CPUs with containers:cpus) and never
below it (cz-wire delays by the microsecond and takes its measured wake-up lateness off:
it must not deliver early), the 100 Mb/s link's rate and the loss; the issue's tighter p50 bounds are
asserted too, expected to fail under load: with cz-wire as the nodes' plugs (docs/datapath.md) a quiet
pnode keeps them, a filled link does not; p99 is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    RT_PRIORITY,
    is_realtime,
    make_realtime,
)
from bench import datapath, fidelity
from tests.e2e import (
    assert_delay,
    assert_nothing_left,
    changed,
    compile_topology,
    host_state,
    node_exec,
    playbook,
)

slow = pytest.mark.slow


def test_percentile_is_nearest_rank():
    samples = [float(n) for n in range(1, 201)]
    assert datapath.percentile(samples, 0.5) == 100.0
    assert datapath.percentile(samples, 0.99) == 198.0
    assert datapath.percentile([3.0], 0.99) == 3.0


def test_small_topology_plans_a_crossing_pair_and_its_round_trip(tmp_path):
    source = tmp_path / "small.tcl"
    source.write_text(datapath.small_topology())
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "bench", "dptest", "--default-container=process")
    assignment = (expdir / "assignment").read_text()
    assert '"pnode-0001": [\n  "xb"\n ]' in assignment
    assert datapath.planned_rtt(expdir, "qa", "qb") == pytest.approx(10.0)
    assert datapath.planned_rtt(expdir, "xa", "xb") == pytest.approx(10.0)
    assert datapath.planned_rtt(expdir, "ha", "hb") == 0.0
    nodes = {n["name"]: n for n in yaml.safe_load((expdir / "inventory/host_vars/pnode-0000.yml").read_text())
             ["containerize_nodes"]}
    placed = ("ra", "rb", "va", "vb")
    assert {name: nodes[name].get("cpus") for name in placed} == (datapath.cpu_places() or dict.fromkeys(placed))


def test_make_realtime_sets_every_thread_round_robin():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert is_realtime(proc.pid) is False
        if not make_realtime(proc.pid):
            pytest.skip("this machine refuses real-time priority")
        assert is_realtime(proc.pid) is True
        assert is_realtime(proc.pid, RT_PRIORITY + 1) is False
    finally:
        proc.kill()
        proc.wait()
    assert is_realtime(proc.pid) is None


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    found, times = datapath.run(big=50, seconds=2)
    for row in found:  # what the bounds say of the p99, in the test log
        if row["kind"] == "rtt":
            print(f"{row['row']}: planned {row['planned_ms']:.2f} ms, p50 {row['p50_ms']:.3f}, "
                  f"p99 {row['p99_ms']:.3f} (bound +-{row['p99_bound_ms']:.2f}) ms")
    print(times)
    return {row["row"]: row for row in found}


def rtt_rows(rows: dict[str, dict]) -> list[dict]:
    found = [row for row in rows.values() if row["kind"] == "rtt"]
    assert len(found) == (7 if datapath.cpu_places() else 6)  # the placed row needs 2 CPUs for the nodes
    return found


@slow
def test_round_trips_near_the_plan(rows):
    for row in rtt_rows(rows):
        assert row["count"] >= 200
        if "iperf3" in row["row"]:  # a link filled at ~9 Gb/s: the kernel's softirq work outranks the elements
            allowed = max(0.15 * row["planned_ms"], 2.0)
        else:  # elements as the nodes' plugs: 0.1-0.4 ms above the plan here (docs/datapath.md)
            allowed = max(0.05 * row["planned_ms"], 0.5)
        assert abs(row["p50_ms"] - row["planned_ms"]) <= allowed, row
        assert row["p50_ms"] >= row["planned_ms"], row  # no element delivers before the plan


@slow
def test_round_trips_keep_the_issue_p50_bounds(rows):
    """Issue 15's p50 bounds, every row (the p99s are printed above). Under load they hold because the
    elements have a CPU of their own (hv_datapath_cpus), which a machine with one CPU cannot give them."""
    missed = [row["row"] for row in rtt_rows(rows) if not row["p50_ok"]]
    if missed == ["one pnode, iperf3 on another link"] and len(os.sched_getaffinity(0)) < 2:
        pytest.xfail("one CPU: the elements share it with the loaded nodes (docs/datapath.md)")
    assert not missed, missed


@slow
def test_shaped_throughput_and_loss(rows):
    shaped = rows["throughput, 100 Mb/s link"]
    assert 80.0 <= shaped["measured_mbit"] <= 100.0, shaped
    loss = rows["loss 10 % each way"]
    low, high = fidelity.wilson(loss["lost"], loss["sent"], z=3.29)  # 99.9 %, as tests/test_fidelity.py
    assert low - 0.03 <= loss["expected"] <= high, loss


VETH_TOPOLOGY = """\
set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set ab [$ns duplex-link $a $b 100Mb 0ms DropTail]
set bc [$ns duplex-link $b $c 10Mb 2ms DropTail]
$ns rtproto Static
$ns run
"""


@slow
def test_veth_link_needs_no_process_and_is_repaired(tmp_path):
    """a-b (no delay) is a veth pair: no plug, no switch; b-c (2 ms) keeps its elements. Deleting a's end
    takes b's with it; a re-run makes the pair again and configures both ends; a third run changes nothing."""
    source = tmp_path / "veth.tcl"
    source.write_text(VETH_TOPOLOGY)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "dpv", f"v{os.getpid()}", "--default-container=process")
    pvars = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    nodes = {n["name"]: n for n in pvars["containerize_nodes"]}
    assert nodes["a"]["interfaces"][0]["veth"] == {"namespace": nodes["b"]["namespace"], "ifname": "eth0"}
    assert {s["substrate"] for s in pvars["containerize_switches"]} == {"bc"}
    run_dir = Path(pvars["containerize_run_dir"])
    before = host_state()
    try:
        playbook(expdir, "swapin")
        assert not (run_dir / "a.eth0.plug.pid").exists()
        # c's shaped interface is plugged by its element (cz-wire on its tap: docs/datapath.md)
        c_eth0 = next(w for w in pvars["containerize_wirefilters"] if (w["node"], w["interface"]) == ("c", "eth0"))
        assert (run_dir / f"{c_eth0['id']}.wf.pid").exists() and not (run_dir / "c.eth0.plug.pid").exists()
        assert_delay(expdir, "a", "b", 0.0, allowance_ms=0.5)
        assert_delay(expdir, "a", "c", 4.0)
        subprocess.run(["ip", "-n", nodes["a"]["namespace"], "link", "del", "eth0"], check=True)
        assert node_exec(expdir, "b", "ip", "link", "show", "eth0").returncode != 0  # gone with its peer
        assert changed(playbook(expdir, "swapin")) > 0
        assert_delay(expdir, "c", "a", 4.0)
        assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)


def test_veth_only_for_links_between_process_nodes_of_one_pnode_without_delay_or_loss(tmp_path):
    source = tmp_path / "mixed.tcl"
    source.write_text("""\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d e f g h} { set $n [$ns node] }
tb-add-node-attribute $h containers:node_type qemu
foreach n {a b c d e f g} { tb-add-node-attribute [set $n] containers:partition 0 }
tb-add-node-attribute $h containers:partition 0
tb-add-node-attribute $g containers:partition 1
set plain [$ns duplex-link $a $b 1Gb 0ms DropTail]
set delayed [$ns duplex-link $b $c 1Gb 1ms DropTail]
set lossy [$ns duplex-link $c $d 1Gb 0ms DropTail]
tb-set-link-loss $lossy 0.01
set lan [$ns make-lan "$d $e $f" 100Mb 0ms]
set crossing [$ns duplex-link $f $g 100Mb 0ms DropTail]
set toqemu [$ns duplex-link $a $h 100Mb 0ms DropTail]
$ns rtproto Static
$ns run
""")
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "dpm", "m", "--default-container=process")
    veth = {}
    for path in sorted((expdir / "inventory" / "host_vars").glob("pnode-*.yml")):
        for node in yaml.safe_load(path.read_text())["containerize_nodes"]:
            for iface in node["interfaces"]:
                veth[iface["substrate"]] = veth.get(iface["substrate"], True) and "veth" in iface
    assert veth == {"plain": True, "delayed": False, "lossy": False, "lan": False, "crossing": False,
                    "toqemu": False}
