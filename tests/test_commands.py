"""`containerize swapin|swapout` from any directory, and a plain (non-editable) install that can swap in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from containerize.expdir import ExperimentDir
from tests.e2e import ENV, RECAP, REPO, compile_topology

EXAMPLE = REPO / "examples" / "star10.tcl"


def cz(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containerize.cli", *args], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=600, check=False)


def test_swapin_without_an_experiment_is_one_line(tmp_path):
    proc = cz("swapin", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "not an experiment directory" in proc.stderr


def test_swapin_usage_error_is_one_line(tmp_path):
    proc = cz("swapout", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "EXPDIR" in proc.stderr


def test_list_query_selects_from_the_json(tmp_path):
    expdir = tmp_path / "exp"
    compile_topology(EXAMPLE, expdir, "proj", "query", "--default-container=process")
    proc = cz("list", str(expdir), "--query", "pnodes.\"pnode-0000\".nodes[?kind=='process'].name | length(@)",
              cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "10", proc.stderr
    bad = cz("list", str(expdir), "--query", "pnodes[?", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a JMESPath expression" in bad.stderr


def test_shape_dry_run_query(tmp_path):
    expdir = tmp_path / "exp"
    compile_topology(EXAMPLE, expdir, "proj", "shapeq", "--default-container=process")
    proc = cz("shape", str(expdir), "link-1", "--delay", "30ms", "--dry-run", "--query",
              "members[].left_to_right.delay_ms", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout) == [15.0, 15.0], proc.stdout + proc.stderr
    applied = cz("shape", str(expdir), "link-1", "--delay", "30ms", "--query", "set", cwd=tmp_path)
    assert applied.returncode == 2 and "--dry-run" in applied.stderr and applied.stderr.count("\n") == 1


@pytest.mark.slow
def test_swapin_and_swapout_from_another_directory(tmp_path):
    expdir = tmp_path / "exp"
    compile_topology(EXAMPLE, expdir, "proj", "cmds", "--default-container=process")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in ENV.items() if k != "ANSIBLE_CONFIG"}  # the command finds the project's itself
    try:
        up = cz("swapin", str(expdir), cwd=elsewhere, env=env)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        again = cz("swapin", str(expdir), "--diff", cwd=elsewhere, env=env)
        assert again.returncode == 0 and [int(m[2]) for m in RECAP.findall(again.stdout)] == [0]
        ping = cz("exec", str(expdir), "n-1", "--", "ping", "-c", "1", "-W", "5", "n-0", cwd=elsewhere, env=env)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        late = cz("status", str(expdir), "--query", "nodes[?state!='booted'].name", cwd=elsewhere, env=env)
        assert late.returncode == 0 and json.loads(late.stdout) == [], late.stdout + late.stderr
        kinds = cz("status", str(expdir), "--query", "nodes[].kind | sort(@) | [0]", cwd=elsewhere, env=env)
        assert json.loads(kinds.stdout) == "process", kinds.stdout + kinds.stderr
        info = cz("info", str(expdir), "n-1", "--query", "node", cwd=elsewhere, env=env)
        assert info.returncode == 0 and json.loads(info.stdout) == "n-1", info.stdout + info.stderr
    finally:
        down = cz("swapout", str(expdir), cwd=elsewhere, env=env)
    assert down.returncode == 0, down.stdout[-3000:]
    assert not Path(ExperimentDir(expdir).run_dir("pnode-0000")).exists()


@pytest.mark.slow
def test_plain_install_in_a_fresh_venv_compiles_and_checks_the_playbook(tmp_path):
    """`pip install .` (not editable) carries the compiler and the whole collection."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(REPO)],
                         capture_output=True, text=True, timeout=900, check=False)
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTHONPATH"))}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    out = tmp_path / "exp"
    compiled = subprocess.run(["containerize", "--default-container=process", "--no-image", "--out", str(out),
                               "proj", "venv", str(EXAMPLE)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=False)
    assert compiled.returncode == 0, compiled.stderr
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import ansible_collections.containerize.deploy as c; print(c.__path__[0])"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout.strip()
    assert site.startswith(str(venv)), site  # the installed copy, not this checkout
    book = Path(site) / "playbooks" / "swapin.yml"
    check = subprocess.run(["ansible-playbook", "--syntax-check", "-i", str(out / "inventory"), str(book)],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    inventory = subprocess.run(["ansible-inventory", "-i", str(out / "inventory"), "--graph"],
                               capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert "pnode-0000" in inventory.stdout and "n-9" in inventory.stdout, inventory.stderr
