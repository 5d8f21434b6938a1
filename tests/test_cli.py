"""The command line as a user meets it: refusing and replacing directories, --help, deterministic and
complete output, an inventory Ansible reads, and partitioned.xml compiling back to the same plan."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from containerize.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
ROUTED = EXAMPLES / "routed.tcl"

OPTIONS = ("--default-container --force-partition --packing --size --pass-pack --pass-size --pnode-types "
           "--pass-pnodes --nodes-only --pass-nodes-only --config --end-node-shaping --vde-switch-shaping "
           "--openvz-diskspace --openvz-template --openvz-template-dir --qemu-prefer-users --image --no-image "
           "--debug --keep-tmp --out --force").split()

# What docs/experiment-directory.md promises, besides one file per node or pnode (checked apart).
CONTRACT = ["inventory/containerize.yml", "inventory/group_vars/all.yml", "embedding.yaml", "hosts", "assignment",
            "shaping.yaml", "wirefilters.yaml", "ghosts", "site.conf", "pid_eid", "annotated.xml",
            "partitioned.xml", "topo.xml", "phys_topo.ns", "phys_topo.xml", "visualization.png"]


def compile_(*args: str) -> tuple[int, str, str]:
    """Run the compiler in-process: (exit status, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(list(args))
    return status, stdout.getvalue(), stderr.getvalue()


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `path` with its bytes and modification time."""
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def tree(path: Path) -> dict[str, bytes]:
    """Every file's bytes; visualization.png only as "a PNG": Graphviz lays it out the same every
    time, but its rasterizer here changes a few pixels in about one run of seven (tests/test_topdl.py)."""
    def content(p: Path) -> bytes:
        data = p.read_bytes()
        return data[:8] if p.name == "visualization.png" else data
    return {str(p.relative_to(path)): content(p) for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if re.match(rf"\.{re.escape(name)}\.(tmp|old)-", p.name))


@pytest.fixture
def old_dir(tmp_path) -> Path:
    out = tmp_path / "exp"
    (out / "sub").mkdir(parents=True)
    (out / "mine.txt").write_text("keep me")
    (out / "sub" / "notes").write_text("and me")
    return out


# --- refusing and replacing ----------------------------------------------------------------------

def test_existing_directory_is_refused_without_force(old_dir, tmp_path):
    before = snapshot(old_dir)
    status, out, err = compile_("--default-container=process", "--out", str(old_dir), "p", "e", str(ROUTED))
    assert status == 2 and out == ""
    assert err == f"{old_dir} already exists; pass --force to replace it (or --out DIR)\n"
    assert snapshot(old_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_existing_file_is_refused_even_with_force(tmp_path):
    target = tmp_path / "exp"
    target.write_text("not a directory")
    status, _, err = compile_("--force", "--out", str(target), "p", "e", str(ROUTED))
    assert status == 2 and len(err.splitlines()) == 1 and "not a directory" in err
    assert target.read_text() == "not a directory"
    assert leftovers(tmp_path, "exp") == []


def test_force_replaces_the_directory(old_dir, tmp_path):
    status, out, err = compile_("--default-container=process", "--force", "--out", str(old_dir), "p", "e",
                                str(ROUTED))
    assert status == 0, err
    assert out == f"{old_dir}: 10 nodes on 2 pnodes, 4 links/LANs, 1 crossing pnodes\n"
    assert not (old_dir / "mine.txt").exists() and not (old_dir / "sub").exists()
    assert (old_dir / "inventory" / "containerize.yml").is_file()
    assert leftovers(tmp_path, "exp") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    assert oct(old_dir.stat().st_mode & 0o777) == "0o755"


def test_force_with_bad_input_keeps_the_old_directory(old_dir, tmp_path):
    bad = tmp_path / "bad.tcl"
    bad.write_text("set ns [new Simulator]\nset a [$ns node]\nnosuch $a\n")
    before = snapshot(old_dir)
    status, _, err = compile_("--force", "--out", str(old_dir), "p", "e", str(bad))
    assert status == 2 and err == f'{bad}:3: invalid command name "nosuch"\n'
    assert snapshot(old_dir) == before
    assert leftovers(tmp_path, "exp") == []


def test_force_twice_in_a_row(tmp_path):
    out = tmp_path / "exp"
    for source in (ROUTED, EXAMPLES / "star10.tcl"):
        status, _, err = compile_("--no-image", "--force", "--out", str(out), "p", "e", str(source))
        assert status == 0, err
    assert sorted(p.name for p in (out / "route").iterdir()) == [f"n-{i}" for i in range(10)]
    assert leftovers(tmp_path, "exp") == []


def test_default_directory_is_experiments_project_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = compile_("--no-image", "proj/grp", "exp1", str(EXAMPLES / "star10.tcl"))
    assert status == 0
    assert out.startswith("experiments/proj/exp1: 10 nodes on 1 pnode")
    group_vars = yaml.safe_load((tmp_path / "experiments/proj/exp1/inventory/group_vars/all.yml").read_text())
    assert (group_vars["containerize_project"], group_vars["containerize_group"]) == ("proj", "grp")


# --- help ----------------------------------------------------------------------------------------

def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    missing = [option for option in OPTIONS if not re.search(rf"(^|[\s,\[]){re.escape(option)}\b(?!-)", text)]
    assert missing == []


def test_help_from_the_shell():
    proc = subprocess.run([sys.executable, "-m", "containerize.cli", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "--default-container" in proc.stdout and "exec" in proc.stdout


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--packing=many", "p", "e", str(ROUTED)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1


# --- the output ----------------------------------------------------------------------------------

def test_output_is_deterministic_across_processes(tmp_path):
    """Two separate compiles (different hash seeds, so set order differs) give identical bytes."""
    procs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "containerize.cli", "--out", str(tmp_path / f"out{seed}"), "demo", "x",
             str(ROUTED)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    first, second = tree(tmp_path / "out1"), tree(tmp_path / "out2")
    assert "visualization.png" in first
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


@pytest.mark.parametrize("source", ["star10.tcl", "muppetnet.ns", "two-pnodes.xml"])
def test_output_is_deterministic_in_process(tmp_path, source):
    for name in ("a", "b"):
        status, _, err = compile_("--default-container=process", "--packing=4", "--out", str(tmp_path / name),
                                  "demo", "x", str(EXAMPLES / source))
        assert status == 0, err
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_experiment_directory_has_every_contract_file(tmp_path):
    out = tmp_path / "exp"
    status, _, err = compile_("--out", str(out), "demo", "x", str(ROUTED))  # qemu default: 2 pnodes
    assert status == 0, err
    for name in CONTRACT:
        assert (out / name).is_file(), name
    assert (out / "experiment.tcl").read_bytes() == ROUTED.read_bytes()
    embedding = yaml.safe_load((out / "embedding.yaml").read_text())
    pnodes = list(embedding["pnodes"])
    assert pnodes == ["pnode-0000", "pnode-0001"]
    for pnode in pnodes:
        assert (out / "inventory" / "host_vars" / f"{pnode}.yml").is_file()
        assert (out / "switch" / f"{pnode}.yaml").is_file()
    assert sorted(p.name for p in (out / "route").iterdir()) == sorted(embedding["nodes"])
    assert (out / "pid_eid").read_text() == "demo x\n"
    assert (out / "visualization.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the hosts file: every address, the first with the bare node name
    hosts = [line.split() for line in (out / "hosts").read_text().splitlines()]
    nodes = _nodes(out)
    assert len(hosts) == sum(len(g["interfaces"]) for g in nodes.values()) == 13
    assert ["10.1.1.11", "a-1", "a-1-lanA"] in hosts
    assert [line[1] for line in hosts if len(line) == 3] == list(nodes)


def test_topdl_input_is_copied_and_no_image_means_no_picture(tmp_path):
    out = tmp_path / "exp"
    source = EXAMPLES / "two-pnodes.xml"
    status, _, _ = compile_("--no-image", "--out", str(out), "demo", "x", str(source))
    assert status == 0
    assert (out / "experiment.xml").read_bytes() == source.read_bytes()
    assert not (out / "experiment.tcl").exists() and not (out / "visualization.png").exists()


def test_ansible_inventory_lists_every_pnode_and_node(tmp_path):
    if shutil.which("ansible-inventory") is None:
        pytest.skip("ansible-core is not installed")
    out = tmp_path / "exp"
    status, _, err = compile_("--default-container=process", "--packing=3", "--out", str(out), "demo", "x",
                              str(EXAMPLES / "muppetnet.ns"))
    assert status == 0, err
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run(["ansible-inventory", "-i", str(out / "inventory"), "--graph"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"\|--([^@\s]\S*)$", proc.stdout, re.M))
    embedding = yaml.safe_load((out / "embedding.yaml").read_text())
    assert len(embedding["pnodes"]) == 5
    assert set(embedding["pnodes"]) | set(embedding["nodes"]) <= listed
    assert len(embedding["nodes"]) == 15


def _nodes(out: Path) -> dict[str, dict]:
    nodes = {}
    for path in sorted((out / "inventory" / "host_vars").glob("*.yml")):
        for node in yaml.safe_load(path.read_text())["containerize_nodes"]:
            nodes[node["name"]] = node
    return nodes


def _recompiled(tmp_path: Path, source: Path, *args: str) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    status, _, err = compile_(*args, "--no-image", "--out", str(first), "demo", "x", str(source))
    assert status == 0, err
    status, _, err = compile_("--no-image", "--out", str(second), "demo", "x", str(first / "partitioned.xml"))
    assert status == 0, err
    return first, second


@pytest.mark.parametrize("source, args", [
    (ROUTED, ()),
    (EXAMPLES / "muppetnet.ns", ("--default-container=process", "--packing=4")),
    (EXAMPLES / "two-pnodes.xml", ()),
])
def test_partitioned_xml_compiles_to_the_same_plan(tmp_path, source, args):
    first, second = _recompiled(tmp_path, source, *args)
    for name in ("hosts", "assignment", "shaping.yaml", "wirefilters.yaml", "embedding.yaml", "partitioned.xml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    before, after = _nodes(first), _nodes(second)
    assert list(before) == list(after)
    for name, node in before.items():
        for field in ("kind", "interfaces", "namespace", "startcmd", "forwarding"):
            assert node[field] == after[name][field], (name, field)


def test_partitioned_xml_keeps_the_routes(tmp_path):
    first, second = _recompiled(tmp_path, ROUTED)
    assert tree(first / "route") == tree(second / "route")
