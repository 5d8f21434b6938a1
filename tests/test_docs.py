"""Every module, and the inventory and filter plugins, documents itself as ansible-doc reads it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e import ENV, MODULES, REPO

NAMES = sorted(p.stem for p in MODULES.glob("*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_ansible_doc_renders_the_module(name):
    proc = subprocess.run([sys.executable, "-m", "ansible", "doc", f"containerize.deploy.{name}"],
                          capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0 and "ERROR" not in proc.stderr, proc.stderr
    assert f"containerize.deploy.{name}" in proc.stdout and "OPTIONS" in proc.stdout


def test_ansible_doc_renders_the_inventory_plugin():
    proc = subprocess.run([sys.executable, "-m", "ansible", "doc", "-t", "inventory",
                           "containerize.deploy.containerize"], capture_output=True, text=True, env=ENV, cwd=REPO,
                          check=False)
    assert proc.returncode == 0 and "site_defaults" in proc.stdout, proc.stderr
