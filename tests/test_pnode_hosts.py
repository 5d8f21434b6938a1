"""--pnode-hosts packing and the inventory's pnode addresses (fast: compile and ansible-inventory only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.test_cli import REPO, compile_

MIXED = """set ns [new Simulator]
source tb_compat.tcl
foreach n {a b c d e f g} { set $n [$ns node] }
set lan0 [$ns make-lan "$a $b $c $d" 10Mb 0ms]
$ns duplex-link $a $e 100Mb 10ms DropTail
$ns duplex-link $b $f 100Mb 5ms DropTail
$ns duplex-link $c $g 100Mb 0ms DropTail
tb-add-node-attribute $e containers:node_type openvz
tb-add-node-attribute $f containers:node_type openvz
$ns rtproto Static
$ns run
"""


def _compile(tmp_path, text, *args) -> dict:
    source = tmp_path / "topo.tcl"
    source.write_text(text)
    out = tmp_path / "exp"
    status, _, err = compile_("--no-image", "--force", "--default-container=process", "--out", str(out), *args,
                              "proj", "exp", str(source))
    assert status == 0, err
    return yaml.safe_load((out / "embedding.yaml").read_text())


def _kinds(embedding: dict) -> list[list[str]]:
    return [p["kinds"] for p in embedding["pnodes"].values()]


@pytest.mark.parametrize("hosts", [1, 2, 3])
def test_process_and_openvz_pack_onto_the_hosts_given(tmp_path, hosts):
    names = ",".join(f"h{i}.lab.example" for i in range(hosts))
    embedding = _compile(tmp_path, MIXED, "--pnode-hosts", names)
    assert len(embedding["pnodes"]) == hosts  # not one set of pnodes per kind
    assert [p["host"] for p in embedding["pnodes"].values()] == names.split(",")
    assert sorted(n for p in embedding["pnodes"].values() for n in p["nodes"]) == list("abcdefg")


def test_qemu_and_openvz_share_out_the_hosts(tmp_path):
    text = MIXED.replace("$ns rtproto", "tb-add-node-attribute $g containers:node_type qemu\n$ns rtproto")
    embedding = _compile(tmp_path, text, "--pnode-hosts", "h1,h2,h3")
    assert len(embedding["pnodes"]) == 3
    assert all(not {"qemu", "openvz"} <= set(kinds) for kinds in _kinds(embedding))
    # one host cannot hold both: refused with the one-line error
    source = tmp_path / "topo.tcl"
    status, _, err = compile_("--no-image", "--force", "--out", str(tmp_path / "one"), "--default-container=process",
                              "--pnode-hosts", "h1", "proj", "exp", str(source))
    assert status == 2 and "needs 2 pnodes" in err and "1 hosts are given" in err, err


def test_explicit_packing_still_wins(tmp_path):
    embedding = _compile(tmp_path, MIXED, "--pnode-hosts", "h1,h2,h3", "--packing", "5")
    assert len(embedding["pnodes"]) == 2  # five process nodes on one, the two openvz nodes on another


def _inventory_host(tmp_path, host: str) -> dict:
    if shutil.which("ansible-inventory") is None:
        pytest.skip("ansible-core is not installed")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run(["ansible-inventory", "-i", str(tmp_path / "exp" / "inventory"), "--host", host],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inventory_uses_the_recorded_pnode_host_pattern(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("[globals]\ntarget = testbed\npnode_host_pattern = node{index}.{eid}.lab.example\n")
    embedding = _compile(tmp_path, MIXED, "--config", str(site), "--packing", "4")
    assert embedding["pnode_host_pattern"] == "node{index}.{eid}.lab.example"
    assert _inventory_host(tmp_path, "pnode-0001")["ansible_host"] == "node1.exp.lab.example"
    assert _inventory_host(tmp_path, "e")["ansible_host"] == f"node{int(embedding['nodes']['e']['pnode'][-4:])}" \
                                                            ".exp.lab.example"


def test_inventory_reaches_own_hosts(tmp_path):
    _compile(tmp_path, MIXED, "--pnode-hosts", "192.0.2.10,192.0.2.11")
    assert _inventory_host(tmp_path, "pnode-0001")["ansible_host"] == "192.0.2.11"


FROZEN = """import gc, sys
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()  # as the CLIs do: the collection's plugins become loadable
InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
print(gc.get_freeze_count())
"""


@pytest.mark.parametrize("setting, frozen", [(None, True), ("false", False)])
def test_parsing_the_inventory_freezes_the_controllers_objects(tmp_path, setting, frozen):
    """The inventory plugin's gc_freeze (default true): what the controller made before it parsed the
    experiment is out of the garbage collector's reach (no collection walks it in the forked workers
    or at exit); CONTAINERIZE_GC_FREEZE=false leaves it."""
    _compile(tmp_path, MIXED)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    if setting is not None:
        env["CONTAINERIZE_GC_FREEZE"] = setting
    proc = subprocess.run([sys.executable, "-c", FROZEN, str(tmp_path / "exp" / "inventory")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (int(proc.stdout.split()[-1]) > 10000) is frozen, proc.stdout
