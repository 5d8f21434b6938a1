"""The record of the kinds swapped in on each pnode (EXPDIR/swapped/PNODE.json) and the swap-out it shortens.

The record's rules and the inventory variable are fast tests; two slow ones swap in for real: a pnode of
process nodes skips the qemu and openvz roles at swap-out, and an openvz node swapped in under an older
plan is still removed after a recompile to a plan of process nodes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.containerize.deploy.plugins.plugin_utils.swapped_kinds import (
    ALL_KINDS,
    SwappedKinds,
    read_record,
    record_path,
)
from bench.topologies import one_lan
from tests import test_openvz
from tests.e2e import (
    ENV,
    REPO,
    assert_nothing_left,
    compile_topology,
    host_state,
    node_exec,
    playbook,
    playbook_output,
)

NODES_DIR = "/var/containers/nodes/exp.proj"
template_dir = test_openvz.template_dir  # the busybox template the openvz tests build


def hv_task(expdir: Path, state: str, kinds=("process",), check_mode: bool = False) -> SwappedKinds | None:
    task_vars = {
        "containerize_experiment_dir": str(expdir),
        "inventory_hostname": "pnode-0000",
        "containerize_kinds": list(kinds),
    }
    return SwappedKinds.for_task(task_vars, {"state": state, "nodes_dir": NODES_DIR}, check_mode)


def recorded(expdir: Path) -> list[str] | None:
    return read_record(record_path(str(expdir), "pnode-0000"))


def write(expdir: Path, text: str) -> None:
    path = Path(record_path(str(expdir), "pnode-0000"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_swapin_adds_the_plan_s_kinds_to_the_record(tmp_path):
    write(tmp_path, '["openvz"]')
    hv_task(tmp_path, "present").before_base()
    assert recorded(tmp_path) == ["openvz", "process"]
    hv_task(tmp_path, "present").after_base({"changed": False, "changes": []})  # the base was there
    assert recorded(tmp_path) == ["openvz", "process"]
    assert sorted(p.name for p in (tmp_path / "swapped").iterdir()) == ["pnode-0000.json"]  # no temporary file


@pytest.mark.parametrize("old", [None, "not json", '{"kinds": []}'])
def test_without_a_readable_record_swapin_records_every_kind_until_the_base_is_new(tmp_path, old):
    if old is not None:
        write(tmp_path, old)
    task = hv_task(tmp_path, "present")
    task.before_base()
    assert recorded(tmp_path) == sorted(ALL_KINDS)
    task.after_base({"failed": True, "changes": [f"create {NODES_DIR}"]})  # a failed call proves nothing
    assert recorded(tmp_path) == sorted(ALL_KINDS)
    task.after_base({"changed": True, "changes": [f"create {NODES_DIR}", "write /x"]})
    assert recorded(tmp_path) == ["process"]


def test_a_complete_swapout_empties_the_record(tmp_path):
    write(tmp_path, '["openvz", "process"]')
    task = hv_task(tmp_path, "absent")
    task.before_base()
    task.after_base({"failed": True, "msg": "boom"})
    assert recorded(tmp_path) == ["openvz", "process"]
    task.after_base({"changed": True, "changes": []})
    assert recorded(tmp_path) == []
    assert json.loads(Path(record_path(str(tmp_path), "pnode-0000")).read_text()) == []


def test_check_mode_and_a_task_without_experiment_directory_keep_no_record(tmp_path):
    assert hv_task(tmp_path, "present", check_mode=True) is None
    assert hv_task(tmp_path, "absent", check_mode=True) is None
    assert (
        SwappedKinds.for_task(
            {"inventory_hostname": "pnode-0000", "containerize_kinds": ["process"]}, {"state": "present"}, False
        )
        is None
    )
    assert not (tmp_path / "swapped").exists()


def test_a_record_that_cannot_be_written_fails_the_task(tmp_path):
    (tmp_path / "swapped").write_text("a file where the directory goes")
    with pytest.raises(
        AnsibleActionFail,
        match=r"cannot record the kinds of nodes swapped in on this pnode in "
        r".*/swapped/pnode-0000\.json",
    ):
        hv_task(tmp_path, "present").before_base()
    result = {"changed": True}
    hv_task(tmp_path, "absent").after_base(result)
    assert result["failed"] and "make the experiment directory writable" in result["msg"]


def test_the_inventory_sets_the_recorded_kinds_of_each_pnode(tmp_path):
    source = tmp_path / "lan.tcl"
    source.write_text(one_lan(6))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "proj", "exp", "--default-container=process", "--size=3")
    (expdir / "swapped").mkdir()
    (expdir / "swapped" / "pnode-0000.json").write_text('["process", "openvz"]')
    (expdir / "swapped" / "pnode-0001.json").write_text("[process")  # garbage: as if there were none
    proc = subprocess.run(
        [sys.executable, "-m", "ansible", "inventory", "-i", str(expdir / "inventory"), "--list"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
    # data from a file, never a template: each kind is shown as {"__ansible_unsafe": KIND}
    assert [kind["__ansible_unsafe"] for kind in hostvars["pnode-0000"]["containerize_swapped_kinds"]] == [
        "openvz",
        "process",
    ]
    assert "containerize_swapped_kinds" not in hostvars["pnode-0001"]
    assert "containerize_swapped_kinds" not in hostvars["pnode-0002"]


def task_outcomes(output: str) -> dict[str, str]:
    """Task name -> the first outcome the playbook printed for it (ok, changed, skipping, included)."""
    return dict(re.findall(r"^TASK \[(.+?)\] \**\n(\w+)", output, re.M))


def role_ran(outcomes: dict[str, str], role: str) -> bool:
    return any(task.startswith(f"containerize.deploy.{role} :") for task in outcomes)


@pytest.mark.slow
def test_a_pnode_of_process_nodes_skips_the_qemu_and_openvz_roles_at_swapout(tmp_path):
    source = tmp_path / "lan.tcl"
    source.write_text(one_lan(3))
    expdir = tmp_path / "exp"
    compile_topology(source, expdir, "e2e", "swkinds", "--default-container=process", "--size=1")
    before = host_state()
    try:
        playbook(expdir, "swapin")
        assert recorded(expdir) == ["process"]
    finally:
        outcomes = task_outcomes(playbook_output(expdir, "swapout"))
    assert outcomes["Remove the qemu nodes"] == outcomes["Remove the openvz nodes"] == "skipping"
    assert not role_ran(outcomes, "qemu") and not role_ran(outcomes, "openvz") and role_ran(outcomes, "process")
    assert recorded(expdir) == []
    assert_nothing_left(expdir, before)


def lan_source(path: Path, openvz_c: bool) -> Path:
    """A LAN on one pnode: process nodes a and b, and with OPENVZ_C the openvz node c."""
    names = ["a", "b", "c"] if openvz_c else ["a", "b"]
    lines = ["set ns [new Simulator]", "source tb_compat.tcl"]
    for name in names:
        lines += [f"set {name} [$ns node]", f"tb-add-node-attribute ${name} containers:partition 0"]
    if openvz_c:
        lines.append("tb-add-node-attribute $c containers:node_type openvz")
    members = " ".join(f"${name}" for name in names)
    lines += [f'set lan0 [$ns make-lan "{members}" 100Mb 0ms]', "$ns rtproto Static", "$ns run"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_openvz_nodes_of_an_older_plan_are_removed_after_a_recompile(tmp_path, template_dir):
    """Swap in a plan with an openvz node, recompile the same directory (--force drops the record) to process
    nodes only and swap that in over it: the pnode still holds the old nodes dir, so the record keeps every kind,
    and swap-out removes the container."""
    source = lan_source(tmp_path / "lan.tcl", openvz_c=True)
    expdir = tmp_path / "exp"
    options = ["--default-container=process", "--openvz-template=busybox", f"--openvz-template-dir={template_dir}"]
    compile_topology(source, expdir, "e2e", "swkindsovz", *options)
    before = host_state()
    try:
        playbook(expdir, "swapin")
        assert recorded(expdir) == ["openvz", "process"]
        assert node_exec(expdir, "c", "cat", "/proc/1/comm").stdout.strip() == "init"  # the container runs
        lan_source(source, openvz_c=False)
        compile_topology(source, expdir, "e2e", "swkindsovz", *options)
        assert not (expdir / "swapped").exists()
        playbook(expdir, "swapin")
        assert recorded(expdir) == sorted(ALL_KINDS)
    finally:
        outcomes = task_outcomes(playbook_output(expdir, "swapout"))
    assert role_ran(outcomes, "openvz")
    assert recorded(expdir) == []
    assert_nothing_left(expdir, before)
