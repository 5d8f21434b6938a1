"""Reach a pnode the way Ansible does: the ssh command line of Ansible's own ssh connection plugin.

`containerize exec`, `console` and `info` on a remote pnode run one ssh command. It must use what the
playbooks use (user, port, key, ssh arguments and control socket from ansible.cfg, the environment
such as ANSIBLE_PRIVATE_KEY_FILE and ANSIBLE_REMOTE_USER, ~/.ssh/config, the inventory's host
variables such as ansible_host, ansible_user and ansible_ssh_private_key_file, and become), so the
experiment's inventory is loaded with Ansible's API and the ssh plugin, given the pnode's variables,
builds the command line exactly as it does for a task (sharing its ControlPersist connection).

Ansible's plugin loader must own the `ansible_collections` package, which the commands have already
imported as a plain package, so the command line is built in a fresh interpreter (this module run
with `-m`, ~0.7 s), which prints it as JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from .errors import ContainerizeError

REPO = Path(__file__).resolve().parent.parent  # a checkout: its ansible.cfg serves, as for the playbooks

# the variables the ssh connection plugin and become read (the others are not templated)
CONNECTION_VARS = ("ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port", "ansible_user",
                   "ansible_ssh_user", "ansible_ssh_private_key_file", "ansible_private_key_file",
                   "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args", "ansible_ssh_executable",
                   "ansible_ssh_pass", "ansible_password", "ansible_ssh_host_key_checking", "ansible_host_key_checking",
                   "ansible_ssh_timeout", "ansible_timeout", "ansible_control_path", "ansible_control_path_dir",
                   "ansible_connection", "ansible_become", "ansible_become_user", "ansible_become_method")


@lru_cache(maxsize=8)
def _inventory(inventory: str):
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.vars.manager import VariableManager

    init_plugin_loader()
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[inventory])
    return loader, manager, VariableManager(loader=loader, inventory=manager)


def host_vars(inventory: Path, host: str) -> dict:
    """HOST's connection variables as a play would see them (templated)."""
    from ansible.template import Templar

    loader, manager, variables = _inventory(str(inventory))
    found = manager.get_host(host)
    if found is None:
        raise ContainerizeError(f"{inventory}: Ansible's inventory has no host {host!r}; recompile the experiment")
    every = variables.get_vars(host=found, include_hostvars=False)
    templar = Templar(loader=loader, variables=every)
    return {key: templar.template(every[key]) for key in CONNECTION_VARS if key in every}


def build_ssh_argv(inventory: Path, host: str, command: list[str], tty: bool = False) -> list[str]:
    """The argv that runs COMMAND (an argv, run as root) on HOST over Ansible's ssh connection."""
    if (REPO / "ansible.cfg").is_file():  # as ansible_env() does for the playbooks; before Ansible loads it
        os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    hvars = host_vars(inventory, host)
    connection = str(hvars.get("ansible_connection") or "ssh")
    if connection not in ("ssh", "ansible.builtin.ssh", "smart"):
        raise ContainerizeError(f"pnode {host!r} uses the Ansible connection {connection!r}; containerize can "
                                "enter its nodes only over ssh (or on the local target)")
    context = PlayContext()
    plugin = connection_loader.get("ansible.builtin.ssh", context)
    plugin.set_options(var_options=hvars)
    plugin.host = plugin.get_option("host") or host
    text = shlex.join(command)
    if hvars.get("ansible_become") in (True, "true", "True", "yes", 1):
        method = str(hvars.get("ansible_become_method") or "sudo")
        if method != "sudo":
            raise ContainerizeError(f"pnode {host!r} becomes root with {method!r}; containerize exec knows sudo only")
        text = shlex.join(["sudo", "-n", "-u", str(hvars.get("ansible_become_user") or "root"), "--",
                           "sh", "-c", text])
    argv = plugin._build_command(plugin.get_option("ssh_executable"), "ssh", *(["-tt"] if tty else []),
                                 plugin.host, text)
    return [os.fsdecode(part) for part in argv]


def ssh_argv(inventory: Path, host: str, command: list[str], tty: bool = False) -> list[str]:
    """build_ssh_argv() run in a fresh interpreter (see the module's doc)."""
    argv = [sys.executable, "-m", "containerize.connection", str(inventory), host, "tty" if tty else "notty", *command]
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "[WARNING]" not in line]
        raise ContainerizeError(lines[-1] if lines else f"cannot build the ssh command for pnode {host!r}")
    return json.loads(proc.stdout)


# Runs a program made of standard-library-only module_utils on a pnode that lacks the collection:
# argv[1] is the modules' source (JSON {name: text}, zlib, base64), argv[2] the one whose main() runs.
BOOTSTRAP = """import base64, json, sys, types, zlib
sources = json.loads(zlib.decompress(base64.b64decode(sys.argv[1])))
for name, text in sources.items():
    parts = name.split(".")
    for depth in range(1, len(parts)):
        sys.modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth]))).__path__ = []
    module = sys.modules[name] = types.ModuleType(name)
    exec(compile(text, name.replace(".", "/") + ".py", "exec"), module.__dict__)
sys.exit(sys.modules[sys.argv[2]].main(sys.argv[3:]))
"""


def remote_program(modules: list[str], *args: str) -> list[str]:
    """The argv that runs the last of MODULES (dotted names, in import order; each standard library only
    or importing only the ones before it) as a program with ARGS, on a machine that has only python3."""
    import base64
    import importlib.util
    import zlib

    sources = {}
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ContainerizeError(f"cannot find the module {name} to send to the pnode")
        sources[name] = Path(spec.origin).read_text(encoding="utf-8")
    payload = base64.b64encode(zlib.compress(json.dumps(sources).encode(), 9)).decode("ascii")
    return ["python3", "-c", BOOTSTRAP, payload, modules[-1], *args]


def main(argv: list[str]) -> int:
    inventory, host, tty, *command = argv
    try:
        print(json.dumps(build_ssh_argv(Path(inventory), host, command, tty=tty == "tty")))
    except ContainerizeError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
