"""Faults and isolation, end to end on this machine: break each moving part of a running experiment,
during and after swap-in; the next swap-in repairs exactly that; interrupted runs leave nothing behind;
two experiments side by side never touch each other.

Marked slow (real namespaces, VDE switches, wirefilters and Ansible runs); CI runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e import (
    ENV,
    HV_TASK,
    PROCESS_TASK,
    REPO,
    VDE_TASK,
    assert_delay,
    assert_nothing_left,
    changed,
    compile_topology,
    cut_swapin,
    host_state,
    node_exec,
    playbook,
    playbook_changes,
    traces,
)

pytestmark = pytest.mark.slow

# A LAN of three (5 ms) and a link (10 ms one way); a runs a long start command, d a short one.
TOPOLOGY = """\
source tb_compat.tcl
set ns [new Simulator]
foreach name {a b c d} { set $name [$ns node] }
set lan0 [$ns make-lan "$a $b $c" 100Mb 5ms]
set link0 [$ns duplex-link $c $d 10Mb 10ms DropTail]
tb-set-node-startcmd $a "sleep 3600"
tb-set-node-startcmd $d "echo up"
$ns rtproto Static
$ns run
"""
NODES = ["a", "b", "c", "d"]
PING_EACH = 'for t; do ping -n -c 1 -W 3 "$t" >/dev/null || echo "$t"; done'


class Experiment:
    """A compiled experiment of TOPOLOGY as process nodes, and where its parts live on this machine."""

    def __init__(self, tmp: Path, name: str):
        source = tmp / "faults.tcl"
        source.write_text(TOPOLOGY)
        self.expdir = tmp / "exp"
        compile_topology(source, self.expdir, "flt", name, "--default-container=process")
        from containerize.expdir import ExperimentDir

        exp = ExperimentDir(self.expdir)
        self.tag = exp.group_vars["containerize_exp_tag"]
        self.name = exp.group_vars["containerize_exp_name"]
        self.run_dir = Path(f"/var/containers/run/{self.tag}")
        self.namespaces = {node: exp.node_plan(node)["namespace"] for node in NODES}

    def pid(self, name: str) -> int:
        # a pid file being written is empty for a moment: ValueError, as for a file not yet there
        return int(((self.run_dir / name).read_text().split() or [""])[0])

    def daemons(self) -> dict[int, str]:
        """Every live process of this experiment's run directory: {pid: arguments}."""
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    status = (entry / "stat").read_text().split(")")[-1].split()[0]
                except OSError:
                    continue
                if str(self.run_dir) + "/" in argv and status != "Z":
                    found[int(entry.name)] = argv
        return found


def all_reach_each_other(exp: Experiment) -> None:
    for source in NODES:
        targets = [target for target in NODES if target != source]
        proc = node_exec(exp.expdir, source, "sh", "-c", PING_EACH, "sh", *targets)
        assert proc.returncode == 0 and not proc.stdout.strip(), f"{source} cannot reach: {proc.stdout}{proc.stderr}"
    assert_delay(exp.expdir, "c", "d", 20.0)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    before = host_state()
    experiment = Experiment(tmp_path_factory.mktemp("faults"), "faults")
    playbook(experiment.expdir, "swapin")
    yield experiment
    playbook(experiment.expdir, "swapout")
    assert_nothing_left(experiment.expdir, before)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _ip(namespace: str, *args: str) -> None:
    subprocess.run(["ip", "-n", namespace, *args], check=True, capture_output=True)


def _replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


# breakage -> (how to break it, {task: what its module must report, and nothing else})
BREAKAGES = {
    # the LAN's switch: it comes back, and the elements plugged into it (each LAN member's cz-wire, which is
    # its plug: docs/datapath.md) are restarted by process_nodes; the link's switch and element are untouched
    "lan switch": (lambda e: _kill(e.pid("s0.pid")),
                   {VDE_TASK: {"started": {"s0"}}, PROCESS_TASK: {"nodes": {"a", "b", "c"}}}),
    # the element of d's link, which is d's plug (joined to c's: no switch): process_nodes starts it again,
    # nothing else moves
    "link element": (lambda e: _kill(e.pid("w3-0.wf.pid")), {PROCESS_TASK: {"nodes": {"d"}}}),
    "lan element": (lambda e: _kill(e.pid("w1-0.wf.pid")), {PROCESS_TASK: {"nodes": {"b"}}}),
    # the socket the link's element of d receives c's frames on (joined link): d's element is made again
    "peer socket": (lambda e: (e.run_dir / "w3-0.wf.data").unlink(), {PROCESS_TASK: {"nodes": {"d"}}}),
    "supervisor": (lambda e: os.killpg(e.pid("a.start.pid"), signal.SIGKILL), {PROCESS_TASK: {"nodes": {"a"}}}),
    "namespace": (lambda e: subprocess.run(["ip", "netns", "delete", e.namespaces["b"]], check=True),
                  {PROCESS_TASK: {"nodes": {"b"}}}),
    "tap": (lambda e: _ip(e.namespaces["c"], "link", "del", "eth1"), {PROCESS_TASK: {"nodes": {"c"}}}),
    "address": (lambda e: _ip(e.namespaces["b"], "addr", "flush", "dev", "eth0"), {PROCESS_TASK: {"nodes": {"b"}}}),
    "route": (lambda e: _ip(e.namespaces["d"], "route", "flush", "10.0.0.0/23"), {PROCESS_TASK: {"nodes": {"d"}}}),
    # every node's hosts is a link of one copy (shared_files.py): writing c's writes them all, and the
    # re-run mends the copy; a file put in place of the link is c's own, mended as c's
    "node hosts": (lambda e: Path(f"/etc/netns/{e.namespaces['c']}/hosts").write_text("127.0.0.1 tampered\n"),
                   {PROCESS_TASK: {"node_files": {"hosts"}, "nodes": set()}}),
    "node hosts replaced": (lambda e: _replace(Path(f"/etc/netns/{e.namespaces['c']}/hosts"), "127.0.0.1 own\n"),
                            {PROCESS_TASK: {"nodes": {"c"}, "node_files": set()}}),
    "experiment config": (lambda e: Path(f"/var/containers/config/{e.name}/hosts").unlink(), {HV_TASK: {}}),
    # the node's /var/containers/facts: process_nodes keeps it (no readiness call on a pnode of process nodes)
    "node facts": (lambda e: Path(f"/var/containers/nodes/{e.name}/b/facts").unlink(),
                   {PROCESS_TASK: {"info_files": {"b facts"}}}),
    # the whole run directory (pid files, sockets): the orphaned daemons are found by their arguments
    "run directory": (lambda e: shutil.rmtree(e.run_dir), {HV_TASK: {}, VDE_TASK: {}, PROCESS_TASK: {}}),
}


def test_process_nodes_are_ready_when_their_call_returns(exp):
    """A pnode of process nodes makes no readiness call: the process role's one call leaves every start
    command begun and the info and facts files in every node directory."""
    proc = subprocess.run(["ansible-playbook", "-i", str(exp.expdir / "inventory"), "playbooks/swapin.yml", "-v"],
                          capture_output=True, text=True, env=ENV, cwd=REPO, check=True)
    readiness = r"TASK \[Wait until the nodes are ready\]\s*\*+\s*skipping"
    assert re.search(readiness, proc.stdout), proc.stdout
    for node in NODES:
        nodedir = Path(f"/var/containers/nodes/{exp.name}/{node}")
        assert f"node={node}\nkind=process\n" in (nodedir / "facts").read_text()
        assert os.access(nodedir / "info", os.X_OK)
    for node in ("a", "d"):  # started by the first swap-in; d's has ended
        assert (Path(f"/var/containers/nodes/{exp.name}/{node}/log/start_command.log").read_text()
                .startswith("start "))
    inside = node_exec(exp.expdir, "c", "/var/containers/info")
    assert inside.returncode == 0 and "Node:" in inside.stdout and "c" in inside.stdout, inside.stdout + inside.stderr


def test_each_shaped_interface_is_one_element_to_its_switch(exp):
    """Every interface here is shaped: its plug is its cz-wire (tap://IF in the node's namespace), with no
    vde_plug2tap and no private switch; a LAN member's element plugs into the LAN's switch, the link's two
    are joined to each other with no switch (peer://, docs/datapath.md)."""
    daemons = list(exp.daemons().values())
    elements = [argv.split(" -v ")[1].split()[0] for argv in daemons if argv.split()[0].endswith("cz-wire")]
    assert sorted(wire.split(":")[0] for wire in elements) == ["tap"] * 5
    assert sum(":peer://" in wire for wire in elements) == 2, elements
    assert not [argv for argv in daemons if "vde_plug2tap" in argv], daemons
    switches = sorted(argv.split(" -s ")[1].split()[0].rsplit("/", 1)[1] for argv in daemons if "vde_switch" in argv)
    assert switches == ["s0.ctl"], switches


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_rerun_repairs_exactly_what_broke(exp, breakage):
    before = exp.daemons()
    breaker, expected = BREAKAGES[breakage]
    breaker(exp)
    time.sleep(0.3)
    changes = playbook_changes(exp.expdir, "swapin")
    reported = {change["task"]: change["result"] for change in changes}
    assert set(reported) == set(expected), f"changed tasks {sorted(reported)}, want {sorted(expected)}"
    for task, want in expected.items():
        for key, items in want.items():
            have = reported[task].get(key)
            assert set(have) == items, f"{task}: {key} {have}, want {sorted(items)}"
    all_reach_each_other(exp)
    hosts = {node: Path(f"/etc/netns/{ns}/hosts").read_text() for node, ns in exp.namespaces.items()}
    assert len(set(hosts.values())) == 1 and "127.0.0.1 localhost" in hosts["c"], hosts
    after = exp.daemons()
    if breakage != "run directory":  # every daemon that was not broken is the same process as before
        kept = {pid for pid in before if pid in after and before[pid] == after[pid]}
        assert len(kept) >= len(before) - 4, f"restarted more than the breakage: {set(before) - kept}"
    assert len(after) == len(before), f"daemons before {len(before)}, after {len(after)}: {sorted(after.values())}"
    assert changed(playbook(exp.expdir, "swapin")) == 0


def test_parts_killed_during_swapin_come_back_on_the_next_run(exp):
    """Two elements (the plugs of b's and c's interfaces) die while swap-in is still running; the next run
    repairs them."""
    playbook(exp.expdir, "swapout")

    def break_when_up():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _kill(exp.pid("w1-0.wf.pid"))
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        while time.monotonic() < deadline:
            try:
                _kill(exp.pid("w2-1.wf.pid"))
                return
            except (OSError, ValueError):
                time.sleep(0.05)

    breaker = threading.Thread(target=break_when_up)
    breaker.start()
    cmd = ["ansible-playbook", "-i", str(exp.expdir / "inventory"), str(REPO / "playbooks" / "swapin.yml")]
    subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    breaker.join()
    assert changed(playbook(exp.expdir, "swapin")) > 0
    all_reach_each_other(exp)
    assert changed(playbook(exp.expdir, "swapin")) == 0


@pytest.mark.parametrize("when", ["vde", "process"])
def test_interrupted_swapin_then_swapout_leaves_nothing(tmp_path, when):
    """swap-in killed (SIGKILL, whole process group) once the switches, or the first plugs, exist."""
    before = host_state()
    exp = Experiment(tmp_path, f"cut-{when}")
    marker = "s0.pid" if when == "vde" else "w0-0.wf.pid"  # the LAN's switch, or a's plug (its element)
    cut_swapin(exp.expdir, lambda: (exp.run_dir / marker).exists())
    assert any(traces(host_state(), exp.expdir).values()), "the swap-in was cut before it made anything"
    playbook(exp.expdir, "swapout")
    assert_nothing_left(exp.expdir, before)


def test_two_experiments_side_by_side(tmp_path_factory):
    """Same topology, same node names, two experiments: each works, swapping one out leaves the other as is."""
    before = host_state()
    one = Experiment(tmp_path_factory.mktemp("iso-one"), "iso-one")
    two = Experiment(tmp_path_factory.mktemp("iso-two"), "iso-two")
    try:
        playbook(one.expdir, "swapin")
        playbook(two.expdir, "swapin")
        assert not set(one.namespaces.values()) & set(two.namespaces.values())
        all_reach_each_other(one)
        all_reach_each_other(two)
        # a's start command runs in each experiment's own node
        out = node_exec(one.expdir, "a", "sh", "-c", "ip netns identify $$").stdout.strip()
        assert out == one.namespaces["a"]
        state = traces(host_state(), two.expdir)
        daemons = two.daemons()
        playbook(one.expdir, "swapout")
        assert_nothing_left(one.expdir, before)
        assert traces(host_state(), two.expdir) == state, "swapping one out changed the other"
        assert two.daemons() == daemons
        all_reach_each_other(two)
        assert changed(playbook(two.expdir, "swapin")) == 0
        hosts = Path("/etc/hosts").read_text()
        assert re.search(rf"containerize experiment {re.escape(two.name)}", hosts)
        assert f"containerize experiment {one.name}" not in hosts
    finally:
        playbook(one.expdir, "swapout")
        playbook(two.expdir, "swapout")
    assert_nothing_left(two.expdir, before)
