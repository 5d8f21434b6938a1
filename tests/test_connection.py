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
