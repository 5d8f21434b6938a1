"""End to end on this machine: compile, swap in process nodes, check what a user relies on, swap out.

Marked slow (real namespaces, VDE switches, wirefilters and Ansible runs); CI runs them.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml

from bench.topologies import one_lan
from tests.e2e import (
    HV_TASK,
    PROCESS_TASK,
    REPO,
    assert_delay,
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
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def clean_host():
    return host_state()


@pytest.fixture(scope="module")
def star(tmp_path_factory, clean_host):
    expdir = tmp_path_factory.mktemp("star") / "exp"
    compile_topology(EXAMPLES / "star10.tcl", expdir, "e2e", "star", "--default-container=process")
    playbook(expdir, "swapin")
    yield expdir
    playbook(expdir, "swapout")


def _node(expdir: Path, node: str) -> dict:
    from containerize.commands.exec import find_node

    return find_node(expdir, node)[1]


def test_star_satellites_reach_centre_with_planned_delay(star):
    for satellite in ("n-1", "n-5", "n-9"):
        assert_delay(star, satellite, "n-0", 20.0)


def test_star_satellites_reach_each_other_through_centre(star):
    assert_delay(star, "n-1", "n-2", 40.0)


def test_star_rerun_changes_nothing(star):
    assert changed(playbook(star, "swapin")) == 0


def test_exec_exits_with_the_command_status(star):
    assert node_exec(star, "n-3", "sh", "-c", "exit 7").returncode == 7
    hosts = node_exec(star, "n-3", "cat", "/etc/hosts").stdout
    assert re.search(r"^10\.\S+\s+n-0\b", hosts, re.M), hosts
    assert node_exec(star, "n-3", "cat", "/var/containers/eid").stdout.strip() == "star"


def _pid_of(pattern: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if re.search(pattern, cmdline):
                return int(entry.name)
    raise AssertionError(f"no process matches {pattern!r}")


@pytest.mark.parametrize("breakage", ["peer socket", "wirefilter", "plug", "namespace", "hosts"])
def test_star_rerun_repairs(star, breakage):
    node = _node(star, "n-4")
    namespace = node["namespace"]
    tag = yaml.safe_load((star / "inventory" / "group_vars" / "all.yml").read_text())["containerize_exp_tag"]
    run_dir = re.escape(f"/run/{tag}/")  # only this experiment's daemons, whatever else runs here
    if breakage == "peer socket":  # a star's links are joined (no switch): n-4's element receives on it
        Path(f"/var/containers/run/{tag}/w4-0.wf.data").unlink()
    elif breakage == "wirefilter":
        os.kill(_pid_of(rf"(?:wirefilter|cz-wire) .*{run_dir}w4-0"), signal.SIGKILL)  # cz-wire in its place
    elif breakage == "plug":
        # a shaped interface's plug is its element where cz-wire runs (docs/datapath.md)
        os.kill(_pid_of(rf"{run_dir}(?:n-4\.eth0\.plug|w4-0\.wf)\.pid"), signal.SIGKILL)
    elif breakage == "namespace":
        os.system(f"ip netns pids {namespace} | xargs -r kill -9; ip netns delete {namespace}")
    elif breakage == "hosts":
        Path(f"/etc/netns/{namespace}/hosts").write_text("127.0.0.1 tampered\n")
    time.sleep(0.3)
    assert changed(playbook(star, "swapin")) > 0
    assert_delay(star, "n-4", "n-0", 20.0)
    assert changed(playbook(star, "swapin")) == 0


@pytest.fixture(scope="module")
def routed(tmp_path_factory, clean_host):
    # routed.tcl asks for a qemu and an openvz node; this test runs every node as a process node.
    source = tmp_path_factory.mktemp("routed-src") / "routed.tcl"
    text = (EXAMPLES / "routed.tcl").read_text()
    source.write_text(re.sub(r"^tb-add-node-attribute .*containers:node_type.*$", "", text, flags=re.M))
    expdir = tmp_path_factory.mktemp("routed") / "exp"
    compile_topology(source, expdir, "e2e", "routed", "--default-container=process", "--size=1")
    playbook(expdir, "swapin")
    yield expdir
    playbook(expdir, "swapout")


def test_routed_every_node_reaches_every_other(routed):
    nodes = ["a-1", "a-3", "b-2", "c-1", "c-2", "r1", "r2"]
    for source in nodes:
        for target in nodes:
            if source != target:
                proc = node_exec(routed, source, "ping", "-c", "3", "-i", "0.2", "-W", "3", target)
                assert proc.returncode == 0, f"{source} -> {target}: {proc.stdout}"


def test_routed_start_command_logs(routed):
    root = Path("/var/containers/nodes/routed.e2e")
    for _ in range(50):
        log = root / "a-1" / "log" / "start_command.log"
        if log.exists() and "exit" in log.read_text():
            break
        time.sleep(0.2)
    assert "exit 0" in (root / "a-1" / "log" / "start_command.log").read_text()
    assert (root / "a-1" / "log" / "start_command.out").read_text().strip() == "started on a-1"
    assert "exit 0" in (root / "b-1" / "log" / "start_command.log").read_text()


def _assert_same(before: dict, after: dict) -> None:
    for key in before:
        assert after[key] == before[key], f"{key}: left behind {after[key] - before[key]}, " \
            f"removed {before[key] - after[key]}"


def test_swapout_leaves_nothing_behind(tmp_path):
    expdir = tmp_path / "exp"
    compile_topology(EXAMPLES / "muppetnet.ns", expdir, "e2e", "mup", "--default-container=process", "--size=1")
    before = host_state()
    playbook(expdir, "swapin")
    assert node_exec(expdir, "beaker", "ping", "-c", "1", "-W", "3", "animal").returncode == 0
    assert changed(playbook(expdir, "swapout")) > 0
    assert changed(playbook(expdir, "swapout")) == 0
    _assert_same(before, host_state())


def test_swapout_after_interrupted_swapin(tmp_path):
    expdir = tmp_path / "exp"
    compile_topology(EXAMPLES / "muppetnet.ns", expdir, "e2e", "half", "--default-container=process", "--size=1")
    before = host_state()
    run_dir = Path(yaml.safe_load((expdir / "inventory/host_vars/pnode-0000.yml").read_text())["containerize_run_dir"])
    # cut while the process nodes are being made: once their records are written (before their namespaces;
    # its LANs are kernel bridges: no plug runs), or a plug runs
    markers = ("process-nodes.json", "*.plug.pid", "*.wf.pid")
    cut_swapin(expdir, lambda: any(any(run_dir.glob(marker)) for marker in markers))
    assert any(traces(host_state(), expdir).values()), "the swap-in was cut before it made anything"
    playbook(expdir, "swapout")
    _assert_same(before, host_state())


def test_unshaped_network_runs_in_the_base_call(tmp_path):
    """A pnode whose links are not shaped gets its switches and uplinks from the hv role's one call (no
    vde role on swap-in, none on swap-out): a LAN over two pnodes works, a killed switch is restarted
    by that call, a re-run changes nothing, and swap-out leaves nothing."""
    source = tmp_path / "lan.tcl"
    source.write_text(one_lan(4))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "e2e", "unshaped", "--default-container=process", "--size=2")
    before = host_state()
    try:
        changes = playbook_changes(expdir, "swapin")
        assert {change["task"] for change in changes} == {HV_TASK, PROCESS_TASK}
        started = {switch for change in changes if change["task"] == HV_TASK for switch in change["result"]["started"]}
        assert started and all(change["result"]["network_run"] for change in changes if change["task"] == HV_TASK)
        assignment = yaml.safe_load((expdir / "assignment").read_text())
        first, second = (names[0] for names in assignment.values())
        assert node_exec(expdir, first, "ping", "-c", "2", "-W", "3", second).returncode == 0
        host_vars = yaml.safe_load((expdir / "inventory/host_vars/pnode-0000.yml").read_text())
        switch = Path(host_vars["containerize_run_dir"]) / f"{host_vars['containerize_switches'][0]['id']}.pid"
        os.kill(int(switch.read_text()), signal.SIGKILL)
        time.sleep(0.3)
        repaired = [change for change in playbook_changes(expdir, "swapin") if change["task"] == HV_TASK]
        assert [change["result"]["started"] for change in repaired] == [[switch.name[:-len(".pid")]]]
        assert node_exec(expdir, first, "ping", "-c", "2", "-W", "3", second).returncode == 0
        assert changed(playbook(expdir, "swapin")) == 0
    finally:
        playbook(expdir, "swapout")
    _assert_same(before, host_state())
