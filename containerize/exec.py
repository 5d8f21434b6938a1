"""`containerize exec EXPDIR NODE -- CMD [ARGS...]`: run a command inside a node, like ssh to it.

The command runs with the node's network namespace, its /etc/hosts (ip netns exec binds
/etc/netns/NS over /etc) and its /var/containers; the exit status is the command's own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import yaml

from .errors import ContainerizeError

# Runs inside `ip netns exec`, whose private mount namespace keeps the bind mount to this node.
# The node directory and the command arrive as arguments, never as shell text.
BIND_AND_EXEC = 'mount --bind "$1" /var/containers 2>/dev/null; shift; exec "$@"'


def _load(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ContainerizeError(f"cannot read {path}: {exc.strerror}; is it an experiment directory?") from None


def find_guest(expdir: Path, node: str) -> tuple[dict, dict]:
    """(pnode host_vars, guest entry) for NODE."""
    embedding = _load(expdir / "embedding.yaml")
    entry = (embedding.get("nodes") or {}).get(node)
    if entry is None:
        known = ", ".join(list(embedding.get("nodes") or {})[:10])
        raise ContainerizeError(f"{expdir}: no node {node!r} in this experiment (nodes: {known}...)")
    pnode_vars = _load(expdir / "inventory" / "host_vars" / f"{entry['pnode']}.yml")
    for guest in pnode_vars.get("containerize_guests", []):
        if guest["name"] == node:
            return pnode_vars, guest
    raise ContainerizeError(f"{expdir}: node {node!r} is missing from {entry['pnode']}'s host_vars; recompile")


def exec_argv(expdir: Path, node: str, command: list[str]) -> list[str]:
    pnode_vars, guest = find_guest(expdir, node)
    embedding = _load(expdir / "embedding.yaml")
    if guest["kind"] != "process":
        raise ContainerizeError(f"node {node!r} is a {guest['kind']} node; exec supports process nodes so far")
    if embedding.get("target", "local") != "local":
        raise ContainerizeError("exec on a testbed target is not supported yet; ssh to the pnode")
    nodedir = f"{pnode_vars['containerize_root']}/nodes/{embedding['experiment']}.{embedding['project']}/{node}"
    return ["ip", "netns", "exec", guest["namespace"], "sh", "-c", BIND_AND_EXEC, "sh", nodedir, *command]


def run_exec(argv: list[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        head, command = argv[:split], argv[split + 1:]
    else:
        head, command = argv[:2], argv[2:]
    if len(head) != 2 or not command:
        raise ContainerizeError("usage: containerize exec EXPDIR NODE -- CMD [ARGS...]")
    expdir, node = Path(head[0]), head[1]
    argv_exec = exec_argv(expdir, node, command)
    if not Path(f"/run/netns/{argv_exec[3]}").exists():
        raise ContainerizeError(f"node {node!r} is not running here (no namespace {argv_exec[3]}); swap in first")
    sys.stdout.flush()
    os.execvp(shutil.which("ip") or "ip", argv_exec)
    return 127  # not reached
