"""Enter a node: `containerize exec`, `console` (alias `shell`) and `info`, for every kind of node.

  containerize exec EXPDIR NODE -- CMD [ARGS...]     run a command in the node, like ssh to it
  containerize console EXPDIR NODE                   an interactive shell in the node
  containerize info [EXPDIR NODE] [--json]           DETER's info.py --all: node, project, experiment,
                                                     kind, interfaces (without EXPDIR: of the node it runs in)

How a node is entered, per kind (one function each, see ``ENTER``):

- ``process``: its network namespace (``ip netns exec``, which binds /etc/netns/NS over /etc), a
  fresh UTS namespace with the node's hostname, and its node directory on /var/containers.
- ``qemu``: the node's exec agent (``node_exec`` of the collection's module_utils/qemu_exec.py: a
  command file in the node directory, which the node sees on /var/containers over 9p). No
  terminal: ``console`` is a line-by-line shell.
- ``openvz``: the container's namespaces and root (``nsenter`` on its init, the child of the
  ``systemd-nspawn`` whose pid the openvz role keeps in ``run_dir/NODE.openvz.pid``).
- ``embedded_pnode``: the pnode itself (inside the namespace and root the embedded_pnode role ran
  its start command in, when it simulates the machine).

The exit status is the command's own. On a testbed target (pnodes reached over SSH), process,
openvz and embedded_pnode nodes are entered over the ssh connection Ansible uses for the pnode
(containerize/connection.py: user, port, key, ssh arguments and become as the playbooks have them);
for qemu nodes the exec agent's pnode side (qemu_exec.py) is sent over the same connection and run
by the pnode's python3.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.containerize.deploy.plugins.module_utils import ssh_relay
from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import NODES_FILE, nodes_cpus
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import Context as StatusContext
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import embedded_wrap, qemu_status
from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import taskset_prefix
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec import node_exec
from ansible_collections.containerize.deploy.plugins.plugin_utils.modules import COLLECTION

from ..errors import ContainerizeError
from ..expdir import ExperimentDir
from .base import CommandParser, json_text, json_wanted

# Runs inside `ip netns exec` (a private mount namespace) and `unshare --uts`: bind the node
# directory, set the hostname, run the command. Directory, hostname and command are arguments,
# never shell text.
BIND_AND_EXEC = 'mount --bind "$1" /var/containers 2>/dev/null; hostname "$2" 2>/dev/null; shift 2; exec "$@"'
# On a remote pnode: taskset to the CPU list in file $1 (datapath_cpus.NODES_FILE) when there is one.
ON_NODE_CPUS = 'c=$(cat "$1" 2>/dev/null); shift; [ -n "$c" ] && exec taskset --cpu-list "$c" "$@"; exec "$@"'
INTERACTIVE_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi'
INFO_SCRIPT = COLLECTION / "roles" / "hv" / "files" / "info.sh"
DAEMONS_MODULE = "ansible_collections.containerize.deploy.plugins.module_utils.daemons"
QEMU_EXEC_MODULE = "ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec"


@dataclass
class Entry:
    """How to run a command in a node: an argv to exec (``argv``), or a function (``call``)."""

    node: str
    kind: str
    argv: list[str] = field(default_factory=list)
    call: object = None  # callable(command: list[str]) -> exit status
    interactive_ok: bool = True


# ----------------------------------------------------------------------------------------------
# per kind


def _process(expdir: ExperimentDir, node: str, plan: dict, command: list[str]) -> Entry:
    ns = str(plan.get("namespace") or "")
    if expdir.target == "local" and not Path(f"/run/netns/{ns}").exists():
        raise ContainerizeError(f"node {node!r} is not running here (no namespace {ns}); swap in first")
    argv = ["ip", "netns", "exec", ns, "unshare", "--uts", "--", "sh", "-c", BIND_AND_EXEC, "sh",
            expdir.node_dir(node), str(plan.get("hostname") or node), *command]  # fmt: skip
    # on the node's CPUs (containers:cpus), else the nodes' ones of its pnode, as its start command
    if plan.get("cpus"):
        return Entry(node, "process", argv=[*taskset_prefix(plan["cpus"]), *argv])
    return Entry(node, "process", argv=on_node_cpus(expdir, node, argv))


def on_node_cpus(expdir: ExperimentDir, node: str, argv: list[str]) -> list[str]:
    """ARGV run on the CPUs of NODE's pnode that are the nodes' (hv_datapath_cpus; all when nothing is split)."""
    run_dir = expdir.run_dir(expdir.pnode_of(node))
    if expdir.target == "local":
        return [*taskset_prefix(nodes_cpus(run_dir)), *argv]
    return ["sh", "-c", ON_NODE_CPUS, "sh", os.path.join(run_dir, NODES_FILE), *argv]


def qemu_runner(node_dir: str):
    """The one place that knows how to run a command in a qemu node: the qemu role's exec agent."""

    def call(command: list[str], stdout=None) -> int:
        sys.stdout.flush()
        return node_exec(node_dir, command, stdout=stdout)

    return call


def remote_qemu_runner(expdir: ExperimentDir, node: str):
    """qemu_runner for a node on a remote pnode: the exec agent's pnode side (qemu_exec.py and the
    daemons.py it imports, standard library only) sent over the pnode's ssh connection and run there
    by its python3; the command's output streams back, its exit status is ssh's."""
    from ..connection import remote_program, ssh_argv

    def call(command: list[str], stdout=None) -> int:
        program = remote_program([DAEMONS_MODULE, QEMU_EXEC_MODULE], expdir.node_dir(node), "--", *command)
        argv = ssh_argv(expdir.path / "inventory", expdir.pnode_of(node), program)
        sys.stdout.flush()
        if stdout is None:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode  # noqa: S603
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False)  # noqa: S603
        stdout.write(proc.stdout)
        return proc.returncode

    return call


def _qemu(expdir: ExperimentDir, node: str, plan: dict, command: list[str]) -> Entry:
    if expdir.target != "local":
        # the agent answers 255 with a reason when the node is not running: no status check first
        return Entry(node, "qemu", call=remote_qemu_runner(expdir, node), interactive_ok=False)
    pnode = expdir.pnode_of(node)
    state = qemu_status(StatusContext(expdir.module_params(pnode)), plan)
    if state["state"] == "dead":
        raise ContainerizeError(f"node {node!r} is not running ({state['detail']}); swap in first")
    return Entry(node, "qemu", call=qemu_runner(expdir.node_dir(node)), interactive_ok=False)


def openvz_leader(expdir: ExperimentDir, node: str) -> int:
    """Pid of the init of NODE's container: the child of systemd-nspawn (the openvz role's NODE.openvz.pid)."""
    try:
        return ssh_relay.openvz_leader(expdir.run_dir(expdir.pnode_of(node)), node)
    except ssh_relay.Unreachable as exc:
        raise ContainerizeError(str(exc)) from None


def _openvz(expdir: ExperimentDir, node: str, plan: dict, command: list[str]) -> Entry:
    if expdir.target == "local":
        leader = openvz_leader(expdir, node)
        return Entry(node, "openvz", argv=on_node_cpus(expdir, node, [
            "nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--", *command]))
    pidfile = shlex.quote(f"{expdir.run_dir(expdir.pnode_of(node))}/{node}.openvz.pid")
    script = (f'nspawn=$(cat {pidfile}) && leader=$(cut -d" " -f1 /proc/$nspawn/task/$nspawn/children) && '
              'exec nsenter -t "$leader" -m -u -i -n -p -C -r -w -- "$@"')
    return Entry(node, "openvz", argv=on_node_cpus(expdir, node, ["sh", "-c", script, "sh", *command]))


def _embedded(expdir: ExperimentDir, node: str, plan: dict, command: list[str]) -> Entry:
    wrap = []
    if expdir.target == "local":
        wrap = embedded_wrap(StatusContext(expdir.module_params(expdir.pnode_of(node))), node)
    return Entry(node, "embedded_pnode", argv=[*wrap, *command])


ENTER = {"process": _process, "qemu": _qemu, "openvz": _openvz, "embedded_pnode": _embedded}


def entry_for(expdir: ExperimentDir, node: str, command: list[str], interactive: bool = False) -> Entry:
    plan = expdir.node_plan(node)
    kind = str(plan.get("kind") or "process")
    enter = ENTER.get(kind)
    if enter is None:
        raise ContainerizeError(f"node {node!r} has kind {kind!r}, which containerize exec cannot enter")
    entry = enter(expdir, node, plan, command)
    if entry.argv and expdir.target != "local":
        from ..connection import ssh_argv

        # the connection the playbooks use: Ansible's ssh plugin, given the pnode's inventory variables
        entry.argv = ssh_argv(expdir.path / "inventory", expdir.pnode_of(node), entry.argv, tty=interactive)
    return entry


def run_entry(entry: Entry, command: list[str]) -> int:
    if entry.call is not None:
        return int(entry.call(command))
    sys.stdout.flush()
    program = shutil.which(entry.argv[0])
    if program is None:
        raise ContainerizeError(f"{entry.argv[0]}: command not found (needed to enter {entry.kind} nodes)")
    os.execv(program, entry.argv)
    return 127  # not reached


def capture_entry(entry: Entry, command: list[str]) -> tuple[int, bytes]:
    """Run COMMAND in the node like run_entry, but return (exit status, its standard output)."""
    if entry.call is not None:
        buffer = io.BytesIO()
        return int(entry.call(command, stdout=buffer)), buffer.getvalue()
    try:
        proc = subprocess.run(entry.argv, stdout=subprocess.PIPE, check=False)  # noqa: S603
    except OSError as exc:
        raise ContainerizeError(f"{entry.argv[0]}: {exc.strerror} (needed to enter {entry.kind} nodes)") from None
    return proc.returncode, proc.stdout


# back compatible helpers (tests and other modules use them)


def find_node(expdir: Path, node: str) -> tuple[dict, dict]:
    """(pnode host_vars, node plan) for NODE."""
    exp = ExperimentDir(expdir)
    plan = exp.node_plan(node)
    return exp.pnode_vars(exp.pnode_of(node)), plan


def exec_argv(expdir: Path, node: str, command: list[str]) -> list[str]:
    entry = entry_for(ExperimentDir(expdir), node, command)
    if not entry.argv:
        raise ContainerizeError(f"node {node!r} is a {entry.kind} node, entered through a function, not an argv")
    return entry.argv


# ----------------------------------------------------------------------------------------------
# commands


def run_exec(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: containerize exec EXPDIR NODE -- CMD [ARGS...]\n\nRun a command inside a node "
              "(any kind) with the node's network, /etc/hosts and /var/containers; exits with its status.")
        return 0
    if "--" in argv:
        split = argv.index("--")
        head, command = argv[:split], argv[split + 1:]
    else:
        head, command = argv[:2], argv[2:]
    if len(head) != 2 or not command:
        raise ContainerizeError("usage: containerize exec EXPDIR NODE -- CMD [ARGS...]")
    expdir, node = ExperimentDir(head[0]), head[1]
    return run_entry(entry_for(expdir, node, command), command)


def _line_shell(entry: Entry) -> int:
    """A line-by-line shell for nodes without a terminal (qemu nodes): each line runs as `sh -c LINE`."""
    print(f"{entry.node}: commands run one line at a time (no terminal, the directory does not persist); "
          "exit or Ctrl-D to leave")
    status = 0
    while True:
        try:
            line = input(f"{entry.node}# ")
        except EOFError:
            print()
            return status
        if line.strip() in ("exit", "logout"):
            return status
        if not line.strip():
            continue
        status = int(entry.call(["sh", "-c", line]))
        if status:
            print(f"[exit {status}]")


def run_console(argv: list[str]) -> int:
    parser = _parser("console", "An interactive shell inside a node (a line-by-line shell for qemu nodes).")
    parser.add_argument("expdir", metavar="EXPDIR")
    parser.add_argument("node", metavar="NODE")
    args = parser.parse_args(argv)
    expdir = ExperimentDir(args.expdir)
    command = ["sh", "-c", INTERACTIVE_SHELL]
    entry = entry_for(expdir, args.node, command, interactive=True)
    if not entry.interactive_ok:
        return _line_shell(entry)
    return run_entry(entry, command)


def info_script() -> str:
    """The text of the info script every node gets as /var/containers/info (the hv role's files/info.sh)."""
    return INFO_SCRIPT.read_text()


def info_command(expdir: ExperimentDir, node: str, as_json: bool) -> list[str]:
    script = info_script()
    plan = expdir.node_plan(node)
    return ["sh", "-c", script, "info", "--json" if as_json else "--all", node, str(plan.get("kind") or "process"),
            expdir.project, expdir.experiment, expdir.pnode_of(node)]


def run_info(argv: list[str]) -> int:
    parser = _parser("info", "Print what DETER's info.py --all did: node, project, experiment, kind and each "
                             "interface with address, netmask and MAC, read inside the node. Without EXPDIR "
                             "and NODE, of the node this runs in (facts from /var/containers).")
    parser.add_expdir(nargs="?")
    parser.add_argument("node", metavar="NODE", nargs="?")
    parser.add_argument("--all", action="store_true", help="everything (the default; for DETER's scripts)")
    parser.add_json()
    args = parser.parse_args(argv)
    args.json, query = json_wanted(args)
    if args.expdir is None:
        script = info_script()
        argv = ["sh", "-c", script, "info", "--json" if args.json else "--all"]
        if query is None:
            return subprocess.run(argv, check=False).returncode  # noqa: S603
        proc = subprocess.run(argv, stdout=subprocess.PIPE, check=False)  # noqa: S603
        if proc.returncode != 0:
            return proc.returncode
        print(json_text(json.loads(proc.stdout), query))
        return 0
    if args.node is None:
        raise ContainerizeError("usage: containerize info [EXPDIR NODE] [--json]")
    expdir = ExperimentDir(args.expdir)
    command = info_command(expdir, args.node, args.json)
    if query is None:
        return run_entry(entry_for(expdir, args.node, command), command)
    status, out = capture_entry(entry_for(expdir, args.node, command), command)
    if status != 0:
        return status
    try:
        data = json.loads(out.decode("utf-8", "replace"))
    except ValueError:
        raise ContainerizeError(f"node {args.node!r}: info did not print JSON") from None
    print(json_text(data, query))
    return 0



def _parser(name: str, description: str) -> argparse.ArgumentParser:
    return CommandParser(name, description=description)
