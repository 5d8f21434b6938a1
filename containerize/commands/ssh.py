"""`containerize ssh`: log into a qemu or openvz node with ssh, by its name, as DETER users did.

  containerize ssh EXPDIR NODE [SSH ARGS...] [-- COMMAND]     ssh -F EXPDIR/ssh_config NODE ...
  containerize ssh-proxy EXPDIR NODE                          (ssh's ProxyCommand: stdin/stdout to the node's sshd)

Swap-in (the node_ssh role) makes a key pair for the experiment in EXPDIR/ssh/ (the private key
never leaves the experiment directory; the public key goes into each qemu and openvz node's
/root/.ssh/authorized_keys) and writes EXPDIR/ssh_config, whose ProxyCommand is `ssh-proxy`:

- ``openvz``: the proxy enters the container's network namespace (setns on its init's
  /proc/PID/ns/net) and connects to 127.0.0.1:22 there: nothing listens on a pnode address.
- ``qemu``: the node has a control NIC on qemu's user network, isolated (restrict=on: the node
  cannot reach anything through it) with one forward from 127.0.0.1:PORT on the pnode to its port
  22; the qemu module keeps PORT in the pnode's run directory (NODE.ssh-port). Only the pnode's
  loopback reaches it.

Both paths are made on the node's pnode by module_utils/ssh_relay.py (nothing listens: the relay only
connects). On the local target ssh-proxy runs it in its own process; on a remote pnode
(``--pnode-hosts``, the DETER target) it sends ssh_relay.py over the connection Ansible uses for the
pnode (containerize/connection.py, as ``containerize exec`` does for qemu nodes) and the pnode's
python3 runs it there, relaying the bytes of that ssh session. The ssh client and the experiment's
key stay where the playbook ran. Swap-out removes EXPDIR/ssh/ and ssh_config with the nodes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ansible_collections.containerize.deploy.plugins.module_utils import ssh_relay

from ..errors import ContainerizeError
from ..expdir import ExperimentDir
from .base import CommandParser

SSH_KINDS = ssh_relay.KINDS
# what is sent to a remote pnode for the relay, in import order (standard library only)
RELAY_MODULES = ["ansible_collections.containerize.deploy.plugins.module_utils.names", ssh_relay.__name__]


def _node(expdir: ExperimentDir, node: str) -> tuple[str, dict]:
    plan = expdir.node_plan(node)
    kind = str(plan.get("kind") or "process")
    if kind not in SSH_KINDS:
        raise ContainerizeError(f"node {node!r} is a {kind} node; ssh reaches qemu and openvz nodes "
                                f"(use containerize exec {expdir.path} {node} -- CMD)")
    return kind, plan


def remote_proxy_argv(expdir: ExperimentDir, node: str) -> list[str]:
    """The ssh command that runs the relay (module_utils/ssh_relay.py) for NODE on its remote pnode, over
    the connection Ansible uses for that pnode: its standard input and output are the node's sshd."""
    from ..connection import remote_program, ssh_argv

    kind, _plan = _node(expdir, node)
    pnode = expdir.pnode_of(node)
    program = remote_program(RELAY_MODULES, expdir.run_dir(pnode), kind, node)
    return ssh_argv(expdir.path / "inventory", pnode, program)


def run_proxy(argv: list[str]) -> int:
    parser = CommandParser("ssh-proxy", description="ssh's ProxyCommand for a node (EXPDIR/ssh_config uses it): "
                                                    "connects standard input and output to the node's sshd.")
    parser.add_expdir()
    parser.add_argument("node", metavar="NODE")
    args = parser.parse_args(argv)
    expdir = ExperimentDir(Path(args.expdir))
    kind, _plan = _node(expdir, args.node)
    if expdir.target != "local":
        argv = remote_proxy_argv(expdir, args.node)
        program = shutil.which(argv[0])
        if program is None:
            raise ContainerizeError(f"{argv[0]}: command not found (apt-get install openssh-client)")
        os.execv(program, argv)
    try:
        ssh_relay.proxy(expdir.run_dir(expdir.pnode_of(args.node)), kind, args.node)
    except ssh_relay.Unreachable as exc:
        raise ContainerizeError(str(exc)) from None
    return 0


def ssh_config_text(expdir: ExperimentDir, python: str = sys.executable) -> str:
    """EXPDIR/ssh_config: each qemu and openvz node by name, through ssh-proxy, with the experiment's key."""
    base = expdir.path.absolute()
    lines = [f"# Written by containerize at swap-in: ssh -F {base}/ssh_config NODE, or containerize ssh EXPDIR NODE.",
             "# Nodes make new host keys whenever they are made again, and the path to them is private to the",
             "# pnode: host keys are not checked."]
    for node, plan in sorted(expdir.nodes.items()):
        if str(plan.get("kind") or "") not in SSH_KINDS:
            continue
        proxy = shlex.join([python, "-m", "containerize.cli", "ssh-proxy", str(base), node])
        lines += [f"Host {node}", "    User root", f'    IdentityFile "{base / "ssh" / "id_ed25519"}"',
                  "    IdentitiesOnly yes", "    IdentityAgent none", "    StrictHostKeyChecking no",
                  "    UserKnownHostsFile /dev/null", "    LogLevel ERROR", f"    ProxyCommand {proxy}"]
    return "\n".join(lines) + "\n"


def run_setup(argv: list[str]) -> int:
    parser = CommandParser("ssh-setup", description="Make the experiment's ssh key pair (EXPDIR/ssh/, kept) and "
                                                    "write EXPDIR/ssh_config; print the public key. Swap-in runs it "
                                                    "(the node_ssh role); --remove undoes it (swap-out).")
    parser.add_expdir()
    parser.add_argument("--remove", action="store_true", help="remove EXPDIR/ssh/ and EXPDIR/ssh_config")
    parser.add_argument("--check", action="store_true", help="change nothing: say what would be made ('made ...' "
                                                             "on standard error)")
    args = parser.parse_args(argv)
    expdir = ExperimentDir(Path(args.expdir))
    keydir, config = expdir.path / "ssh", expdir.path / "ssh_config"
    if args.remove:
        if keydir.exists() or config.exists():
            print(f"made {keydir} and {config} go", file=sys.stderr)
        if args.check:
            return 0
        shutil.rmtree(keydir, ignore_errors=True)
        config.unlink(missing_ok=True)
        return 0
    key = keydir / "id_ed25519"
    text = ssh_config_text(expdir)
    if args.check:
        if not key.with_suffix(".pub").is_file() or not config.is_file() or config.read_text() != text:
            print(f"made {key} and {config} (check mode: not yet)", file=sys.stderr)
        if key.with_suffix(".pub").is_file():
            print(key.with_suffix(".pub").read_text().strip())
        return 0
    if not key.is_file() or not key.with_suffix(".pub").is_file():
        keydir.mkdir(mode=0o700, exist_ok=True)
        for stale in (key, key.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        try:
            proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                   f"containerize-{expdir.exp_name}", "-f", str(key)],
                                  capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
        except OSError as exc:
            raise ContainerizeError(f"ssh-keygen: {exc.strerror} (apt-get install openssh-client)") from None
        if proc.returncode != 0:
            raise ContainerizeError(f"ssh-keygen failed: {proc.stderr.strip() or proc.returncode}")
        print(f"made {key}", file=sys.stderr)
    if not config.is_file() or config.read_text() != text:
        tmp = config.with_name(".ssh_config.tmp")
        tmp.write_text(text)
        os.replace(tmp, config)
        print(f"made {config}", file=sys.stderr)
    print(key.with_suffix(".pub").read_text().strip())
    return 0


def run_ssh(argv: list[str]) -> int:
    parser = CommandParser("ssh", description="Log into a qemu or openvz node with ssh (the experiment's key and "
                                              "EXPDIR/ssh_config, written at swap-in); SSH ARGS go to ssh.")
    parser.add_expdir()
    parser.add_argument("node", metavar="NODE")
    parser.add_argument("ssh_args", nargs="*", metavar="SSH ARGS", help="ssh options and a command, e.g. -- uname -a")
    args, extra = parser.parse_known_args(argv)
    expdir = ExperimentDir(Path(args.expdir))
    _node(expdir, args.node)
    config = Path(args.expdir).absolute() / "ssh_config"
    if not config.is_file():
        raise ContainerizeError(f"{config}: missing; swap the experiment in first (it is written at swap-in)")
    program = shutil.which("ssh")
    if program is None:
        raise ContainerizeError("ssh: command not found (apt-get install openssh-client)")
    sys.stdout.flush()
    os.execv(program, ["ssh", "-F", str(config), *extra, args.node, *args.ssh_args])
    return 127  # not reached
