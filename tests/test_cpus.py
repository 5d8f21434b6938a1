"""containers:cpus: a process node's start command and `containerize exec` run on the CPUs it names.

Keeping a busy node off the CPUs of others is what holds a shaped link's delay while another link of
the experiment is flooded (bench/datapath.py's "under load" rows; docs/datapath.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

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


def _start_tree(expdir: Path, node: str) -> list[int]:
    """The start command supervisor of NODE and its descendants."""
    pnode = yaml.safe_load((expdir / "inventory" / "host_vars" / "pnode-0000.yml").read_text())
    run_dir = Path(pnode["containerize_run_dir"])
    tree = [int((run_dir / f"{node}.start.pid").read_text())]
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
        unpinned = node_exec(expdir, "b", "grep", "Cpus_allowed_list", "/proc/self/status")
        assert unpinned.stdout.split()[-1] == _allowed(os.getpid())
        assert changed(playbook(expdir, "swapin")) == 0

        if first != last:  # placed elsewhere (a machine with 2 CPUs or more): the re-run restarts it there
            source.write_text(TOPOLOGY.format(cpus=first))
            compile_topology(source, expdir, "cpus", "pin", "--default-container=process")
            assert changed(playbook(expdir, "swapin")) > 0
            assert {_allowed(pid) for pid in _start_tree(expdir, "a")} == {first}
            assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    assert_nothing_left(expdir, before)
