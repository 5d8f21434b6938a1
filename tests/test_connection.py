"""containerize/connection.py: the ssh command line of a pnode is the one Ansible's ssh plugin builds."""

from __future__ import annotations

import os

import pytest

from containerize.connection import ssh_argv
from containerize.errors import ContainerizeError


def _options(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, part in enumerate(argv[:-1]) if part == "-o"]


def test_host_vars_and_environment(tmp_path, monkeypatch):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("h1 ansible_host=192.0.2.7 ansible_port=2222 ansible_user=lab\n"
                         "h2 ansible_host=192.0.2.8 ansible_ssh_private_key_file=/keys/h2\n")
    monkeypatch.setitem(os.environ, "ANSIBLE_PRIVATE_KEY_FILE", "/keys/env")
    argv = ssh_argv(inventory, "h1", ["echo", "it's"])
    assert argv[0] == "ssh" and argv[-2:] == ["192.0.2.7", "echo 'it'\"'\"'s'"]
    options = _options(argv)
    assert "Port=2222" in options and 'User="lab"' in options and 'IdentityFile="/keys/env"' in options
    assert any(o.startswith("ControlPath=") for o in options)  # Ansible's shared connection
    options = _options(ssh_argv(inventory, "h2", ["true"], tty=True))
    assert 'IdentityFile="/keys/h2"' in options  # the host variable wins over the environment


def test_become_and_unknown_host(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("h1 ansible_host=192.0.2.7 ansible_user=lab ansible_become=true\n")
    assert ssh_argv(inventory, "h1", ["id"])[-1] == "sudo -n -u root -- sh -c id"
    with pytest.raises(ContainerizeError, match="no host 'h9'"):
        ssh_argv(inventory, "h9", ["id"])


def test_remote_program_runs_the_qemu_exec_agent_side_with_python3_alone(tmp_path):
    """The argv that `containerize exec` sends to a remote pnode for a qemu node, run here by a bare
    python3 (no collection on its path), against a stand-in for the node's agent."""
    import subprocess
    import threading
    import time
    from pathlib import Path

    from containerize.commands.exec import DAEMONS_MODULE, QEMU_EXEC_MODULE
    from containerize.connection import remote_program

    xdir = tmp_path / "exec"
    xdir.mkdir()
    stop = threading.Event()

    def agent():  # what roles/qemu/files/agent.sh does in the node, with the pnode's file system
        while not stop.is_set():
            for cmd in xdir.glob("*.cmd"):
                run = cmd.with_suffix(".run")
                cmd.rename(run)
                base = str(run)[:-4]
                proc = subprocess.run(["sh", str(run)], capture_output=True, check=False)
                Path(base + ".out").write_bytes(proc.stdout)
                Path(base + ".err").write_bytes(proc.stderr)
                Path(base + ".rc").write_text(f"{proc.returncode}\n")
            time.sleep(0.05)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    try:
        command = ["sh", "-c", "echo it\\'s; exit 3"]
        argv = remote_program([DAEMONS_MODULE, QEMU_EXEC_MODULE], str(tmp_path), "--", *command)
        proc = subprocess.run(argv, capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"]},
                              timeout=30, check=False)
        assert proc.stdout == "it's\n" and proc.returncode == 3, proc.stderr
        assert sorted(p.name for p in xdir.iterdir()) == []  # the pnode side cleans up after itself
    finally:
        stop.set()
        thread.join()
