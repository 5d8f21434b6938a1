"""LANs on the kernel path: a LAN whose members are all process nodes of one pnode, with no delay and no loss,
is a kernel bridge in a namespace of its own (planners/switches.py bridged_lans, module_utils/lan_bridge.py).

The fast test checks which LANs the compiler bridges; the slow one swaps a bridged LAN in and breaks it.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.e2e import (
    PROCESS_TASK,
    assert_delay,
    assert_nothing_left,
    changed,
    compile_topology,
    host_state,
    node_exec,
    playbook,
    playbook_changes,
    playbook_output,
)

MIXED = """\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d e f g h i j k} { set $n [$ns node] }
tb-add-node-attribute $h containers:node_type qemu
foreach n {a b c d e f h i j k} { tb-add-node-attribute [set $n] containers:partition 0 }
tb-add-node-attribute $g containers:partition 1
set plain [$ns make-lan "$a $b $c" 100Mb 0ms]
set delayed [$ns make-lan "$c $d" 100Mb 1ms]
set lossy [$ns make-lan "$d $e" 100Mb 0ms]
tb-set-lan-loss $lossy 0.01
set crossing [$ns make-lan "$e $f $g" 100Mb 0ms]
set withqemu [$ns make-lan "$a $h" 100Mb 0ms]
set unlimited [$ns make-lan "$i $j $k" 1Gb 0ms]
set pair [$ns duplex-link $i $k 1Gb 0ms DropTail]
$ns rtproto Static
$ns run
"""

LAN = """\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c} { set $n [$ns node] }
set lan [$ns make-lan "$a $b $c" 100Mb 0ms]
$ns rtproto Static
$ns run
"""


def _interfaces(expdir):
    found = {}
    for path in sorted((expdir / "inventory" / "host_vars").glob("pnode-*.yml")):
        for node in yaml.safe_load(path.read_text())["containerize_nodes"]:
            for iface in node["interfaces"]:
                found[(node["name"], iface["substrate"])] = iface
    return found


def test_bridge_only_for_lans_of_process_nodes_of_one_pnode_without_delay_or_loss(tmp_path):
    source = tmp_path / "mixed.tcl"
    source.write_text(MIXED)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "lanb", "m", "--default-container=process")
    interfaces = _interfaces(expdir)
    bridged = {}
    for (_node, substrate), iface in interfaces.items():
        bridged[substrate] = bridged.get(substrate, True) and "bridge" in iface
    assert bridged == {"plain": True, "delayed": False, "lossy": False, "crossing": False, "withqemu": False,
                       "unlimited": True, "pair": False}
    ports = sorted((iface["bridge"]["namespace"], iface["bridge"]["port"], iface["switch"])
                   for (_n, substrate), iface in interfaces.items() if substrate == "plain")
    assert ports == [("plain.lan.m.lanb", f"p{k}", None) for k in (1, 2, 3)]
    # a bridged LAN keeps its bandwidth: a tbf on each member's egress, as on a VDE LAN
    assert interfaces[("a", "plain")]["tc"]["bandwidth"] == 100_000_000
    assert "veth" in interfaces[("i", "pair")]


@pytest.mark.slow
def test_bridged_lan_needs_no_process_and_is_repaired(tmp_path):
    """The LAN's members ping each other by name with no process for the LAN; check mode on a fresh pnode
    makes nothing; a lost LAN namespace or a port taken off the bridge comes back on the next run; a
    further run changes nothing; swap-out leaves nothing."""
    source = tmp_path / "lan.tcl"
    source.write_text(LAN)
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "lanb", f"l{os.getpid()}", "--default-container=process")
    host_vars = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    lan_ns = host_vars["containerize_nodes"][0]["interfaces"][0]["bridge"]["namespace"]
    assert host_vars["containerize_switches"] == []
    before = host_state()
    try:
        playbook_output(expdir, "swapin", "--check")
        assert lan_ns not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout

        playbook(expdir, "swapin")
        assert not host_state()["processes"] - before["processes"], "a bridged LAN runs no process"
        assert_delay(expdir, "a", "c", 0.0, allowance_ms=0.5)

        subprocess.run(["ip", "netns", "delete", lan_ns], check=True)
        assert node_exec(expdir, "a", "ip", "link", "show", "eth0").returncode != 0  # gone with the LAN
        changes = [c for c in playbook_changes(expdir, "swapin") if c["task"] == PROCESS_TASK]
        assert f"{lan_ns}: namespace" in changes[0]["result"]["lans"]
        assert set(changes[0]["result"]["nodes"]) == {"a", "b", "c"}
        assert node_exec(expdir, "c", "ping", "-c", "2", "-W", "3", "a").returncode == 0

        subprocess.run(["ip", "-n", lan_ns, "link", "set", "p2", "nomaster"], check=True)
        changes = [c for c in playbook_changes(expdir, "swapin") if c["task"] == PROCESS_TASK]
        assert list(changes[0]["result"]["nodes"]) == ["b"]
        assert node_exec(expdir, "b", "ping", "-c", "2", "-W", "3", "a").returncode == 0
        assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)


TWO_PNODES = """\
set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d} { set $n [$ns node] }
foreach n {a b} { tb-add-node-attribute [set $n] containers:partition 0 }
foreach n {c d} { tb-add-node-attribute [set $n] containers:partition 1 }
set left [$ns make-lan "$a $b" 100Mb DELAY]
set right [$ns make-lan "$c $d" 100Mb 0ms]
$ns rtproto Static
$ns run
"""


@pytest.mark.slow
def test_each_pnode_keeps_its_own_lans_and_drops_those_no_longer_bridged(tmp_path):
    """Two local pnodes, one bridged LAN each (pnode 0's names have no prefix, so a scan of its LANs would
    match pnode 1's): both stay through swap-in and re-run. Recompiled with delay on one LAN, the next
    swap-in removes that LAN's namespace (it takes VDE) and keeps the other; swap-out leaves nothing."""
    source = tmp_path / "two.tcl"
    expdir = tmp_path / "exp"
    experiment = f"t{os.getpid()}"
    source.write_text(TWO_PNODES.replace("DELAY", "0ms"))
    compile_topology(source, expdir, "lanb", experiment, "--default-container=process")
    lans = {iface["substrate"]: iface["bridge"]["namespace"] for iface in _interfaces(expdir).values()}
    assert lans == {"left": f"left.lan.{experiment}.lanb", "right": f"p1-right.lan.{experiment}.lanb"}
    before = host_state()
    try:
        playbook(expdir, "swapin")
        assert changed(playbook(expdir, "swapin")) == 0
        assert set(lans.values()) <= host_state()["namespaces"]
        assert node_exec(expdir, "a", "ping", "-c", "2", "-W", "3", "b").returncode == 0
        assert node_exec(expdir, "d", "ping", "-c", "2", "-W", "3", "c").returncode == 0

        source.write_text(TWO_PNODES.replace("DELAY", "2ms"))
        compile_topology(source, expdir, "lanb", experiment, "--default-container=process")
        assert "bridge" not in _interfaces(expdir)[("a", "left")]
        playbook(expdir, "swapin")
        namespaces = host_state()["namespaces"]
        assert lans["left"] not in namespaces and lans["right"] in namespaces
        assert_delay(expdir, "a", "b", 4.0)
        assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)
