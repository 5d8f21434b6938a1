"""Where an experiment's processes run: containers:cpus, and the pnode's split between data path and nodes.

- containers:cpus: a process node's start command and `containerize exec` run on the CPUs it names.
- hv_datapath_cpus (auto): the link elements run on the pnode's last CPU, every other node's processes
  on the rest; none takes the split back.

Keeping a busy node off the CPUs of the data path is what holds a shaped link's delay while another link
of the experiment is flooded (bench/datapath.py's "under load" row; docs/datapath.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import cpu_list, plan_split
from ansible_collections.containerize.deploy.plugins.module_utils.nspawn import children
from tests.e2e import assert_nothing_left, changed, compile_topology, host_state, node_exec, playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

TOPOLOGY = """set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 2ms DropTail]
tb-set-node-startcmd $a "sleep 3600"
tb-add-node-attribute $a containers:cpus "{cpus}"
$ns run
"""


def _allowed(pid: int) -> str:
    return re.search(r"^Cpus_allowed_list:\s*(\S+)", Path(f"/proc/{pid}/status").read_text(), re.M)[1]


def _run_dir(expdir: Path) -> Path:
    pnode = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    return Path(pnode["containerize_run_dir"])


def _start_tree(expdir: Path, node: str) -> list[int]:
    """The start command supervisor of NODE and its descendants."""
    tree = [int((_run_dir(expdir) / f"{node}.start.pid").read_text())]
    for pid in tree:
        tree.extend(children(pid))
    return tree


def test_start_command_and_exec_run_on_the_planned_cpus(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    first, last = str(cpus[0]), str(cpus[-1])
    source = tmp_path / "cpus.tcl"
    source.write_text(TOPOLOGY.format(cpus=last))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "cpus", "pin", "--default-container=process")
    before = host_state()
    try:
        playbook(expdir, "swapin")
        tree = _start_tree(expdir, "a")
        assert len(tree) >= 2 and {_allowed(pid) for pid in tree} == {last}
        out = node_exec(expdir, "a", "grep", "Cpus_allowed_list", "/proc/self/status")
        assert out.returncode == 0 and out.stdout.split()[-1] == last, out.stderr
        # b names no CPUs: the nodes' ones, and the link's elements the data path's (the last CPU, or more)
        split = plan_split("auto", set(cpus))
        nodes, datapath = split.get("nodes", cpu_list(cpus)), split.get("datapath")
        unpinned = node_exec(expdir, "b", "grep", "Cpus_allowed_list", "/proc/self/status")
        assert unpinned.stdout.split()[-1] == nodes
        elements = [int(p.read_text()) for p in _run_dir(expdir).glob("*.wf.pid")]
        assert len(elements) == 2 and {_allowed(pid) for pid in elements} == {datapath or cpu_list(cpus)}
        assert changed(playbook(expdir, "swapin")) == 0

        if datapath:  # taken back: the elements may run anywhere again, and so may b's commands
            assert changed(playbook(expdir, "swapin", "-e", "hv_datapath_cpus=none")) > 0
            assert not list(_run_dir(expdir).glob("*.cpus"))
            assert {_allowed(pid) for pid in elements} == {cpu_list(cpus)}
            unpinned = node_exec(expdir, "b", "grep", "Cpus_allowed_list", "/proc/self/status")
            assert unpinned.stdout.split()[-1] == cpu_list(cpus)
            assert changed(playbook(expdir, "swapin", "-e", "hv_datapath_cpus=none")) == 0
            assert changed(playbook(expdir, "swapin")) > 0  # and split again
            assert {_allowed(pid) for pid in elements} == {datapath}

        if first != last:  # placed elsewhere (a machine with 2 CPUs or more): the re-run restarts it there
            source.write_text(TOPOLOGY.format(cpus=first))
            compile_topology(source, expdir, "cpus", "pin", "--default-container=process")
            assert changed(playbook(expdir, "swapin")) > 0
            assert {_allowed(pid) for pid in _start_tree(expdir, "a")} == {first}
            assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)


@pytest.mark.parametrize(("setting", "usable", "split"), [
    ("auto", {0, 1}, {"datapath": "1", "nodes": "0"}),
    ("auto", set(range(16)), {"datapath": "14-15", "nodes": "0-13"}),
    ("auto", {0}, {}),  # one CPU: nothing to split
    ("none", {0, 1}, {}),
    ("0", {0, 1, 2}, {"datapath": "0", "nodes": "1-2"}),
    ("2-3", {0, 1, 2, 3, 5}, {"datapath": "2-3", "nodes": "0-1,5"}),
])
def test_plan_split(setting, usable, split):
    assert plan_split(setting, usable) == split


def test_plan_split_only_with_a_data_path():
    assert plan_split("auto", {0, 1}, has_datapath=False) == {}


@pytest.mark.parametrize(("setting", "problem"), [
    ("0-1", "leaves the nodes no CPU"),
    ("7", "names CPUs this pnode does not give us (7; it has 0-1)"),
    ("1;reboot", "is not a CPU list"),
    ("all", "is not a CPU list such as 1 or 0-3,6 (CPU numbers and ranges, comma-separated), or auto, or none"),
])
def test_plan_split_says_what_is_wrong(setting, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        plan_split(setting, {0, 1})
