"""Joined links: a shaped point-to-point link between two process nodes of one pnode has no switch where the
pnode runs cz-wire; each hop's element is its node's plug and sends to the other's socket (peer://)
(planners/switches.py joined_links, module_utils/plugs.py plan_plug, docs/datapath.md).

The fast test checks which links the compiler joins; the slow one swaps a joined link in and breaks it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.e2e import (
    ENV,
    PROCESS_TASK,
    REPO,
    assert_delay,
    assert_nothing_left,
    changed,
    compile_topology,
    host_state,
    playbook,
    playbook_changes,
)

MIXED = """\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d e f g h k o} { set $n [$ns node] }
tb-add-node-attribute $e containers:node_type qemu
tb-add-node-attribute $o containers:node_type openvz
foreach n {a b c d e f h} { tb-add-node-attribute [set $n] containers:partition 0 }
foreach n {k o} { tb-add-node-attribute [set $n] containers:partition 2 }
tb-add-node-attribute $g containers:partition 1
set delayed [$ns duplex-link $a $b 100Mb 2ms DropTail]
set lossy [$ns duplex-link $b $c 100Mb 0ms DropTail]
tb-set-link-loss $lossy 0.01
set plain [$ns duplex-link $c $d 100Mb 0ms DropTail]
set withqemu [$ns duplex-link $d $e 100Mb 2ms DropTail]
set crossing [$ns duplex-link $f $g 100Mb 2ms DropTail]
set lan [$ns make-lan "$a $f $h" 100Mb 2ms]
set withopenvz [$ns duplex-link $k $o 100Mb 2ms DropTail]
$ns rtproto Static
$ns run
"""

LINK = """\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b} { set $n [$ns node] }
set link [$ns duplex-link $a $b 100Mb 2ms DropTail]
$ns rtproto Static
$ns run
"""


def _plan(expdir, pnode="pnode-0000"):
    """PNODE's substrate switches by substrate and wirefilters by id (ids are a pnode's own)."""
    host_vars = yaml.safe_load((expdir / "inventory" / "host_vars" / f"{pnode}.yml").read_text())
    switches = {sw["substrate"]: sw for sw in host_vars["containerize_switches"] if sw["role"] == "substrate"}
    return switches, {wf["id"]: wf for wf in host_vars["containerize_wirefilters"]}


def test_only_shaped_links_of_two_process_or_openvz_nodes_of_one_pnode_are_joined(tmp_path):
    source = tmp_path / "mixed.tcl"
    source.write_text(MIXED)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "join", "m", "--default-container=process")
    switches, wires = _plan(expdir)
    assert sorted(name for name, sw in switches.items() if sw.get("joined")) == ["delayed", "lossy"]
    assert "plain" not in switches  # a veth pair
    joined = {wid: wf["peer"] for wid, wf in wires.items() if "peer" in wf}
    assert len(joined) == 4 and all(joined[peer] == wid for wid, peer in joined.items())
    assert {wires[wid]["right"] for wid in joined} == {switches["delayed"]["id"], switches["lossy"]["id"]}
    switches, wires = _plan(expdir, "pnode-0002")  # a process node and an openvz container
    assert [name for name, sw in switches.items() if sw.get("joined")] == ["withopenvz"]
    assert sorted(wf["peer"] for wf in wires.values()) == sorted(wires)
    switches, wires = _plan(expdir, "pnode-0001")  # g: the crossing link's other end
    assert not any(sw.get("joined") for sw in switches.values()) and not any("peer" in wf for wf in wires.values())


@pytest.mark.slow
def test_a_joined_link_runs_no_switch_keeps_its_delay_and_is_repaired(tmp_path):
    """Swapped in with wirefilter (vde_wire_element false) the link has its switch; with cz-wire the next run
    stops it and joins the two elements: the planned 4 ms round trip, no vde_switch; an element killed comes
    back on the next run (only its node changes); `containerize shape` changes the delay live; a further run
    changes nothing; swap-out leaves nothing (no socket either)."""
    source = tmp_path / "link.tcl"
    source.write_text(LINK)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "join", f"j{os.getpid()}", "--default-container=process")
    _switches, wires = _plan(expdir)
    run_dir = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    run_dir = run_dir["containerize_run_dir"]
    before = host_state()
    try:
        playbook(expdir, "swapin", "-e", "vde_wire_element=false")
        assert os.path.exists(os.path.join(run_dir, "s0.pid"))
        assert_delay(expdir, "a", "b", 4.0)

        playbook(expdir, "swapin")
        assert not os.path.exists(os.path.join(run_dir, "s0.pid"))
        assert not any(p.startswith("vde_switch") for p in host_state()["processes"] - before["processes"])
        assert sorted(name for name in os.listdir(run_dir) if name.endswith(".wf.data")) == \
            sorted(f"{wid}.wf.data" for wid in wires)
        assert_delay(expdir, "a", "b", 4.0, allowance_ms=0.5)
        assert changed(playbook(expdir, "swapin")) == 0

        wid = next(w for w, wf in wires.items() if wf["node"] == "b")
        with open(os.path.join(run_dir, f"{wid}.wf.pid")) as pidfile:
            os.kill(int(pidfile.read()), signal.SIGKILL)
        changes = [c for c in playbook_changes(expdir, "swapin") if c["task"] == PROCESS_TASK]
        assert list(changes[0]["result"]["nodes"]) == ["b"]
        assert_delay(expdir, "a", "b", 4.0, allowance_ms=0.5)

        subprocess.run([sys.executable, "-m", "containerize.cli", "shape", "--delay", "5ms", str(expdir), "link"],
                       env=ENV, cwd=REPO, check=True, capture_output=True)
        assert_delay(expdir, "a", "b", 10.0, allowance_ms=0.5)
        assert changed(playbook(expdir, "swapin")) == 0
        assert_delay(expdir, "a", "b", 10.0, allowance_ms=0.5)
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)
