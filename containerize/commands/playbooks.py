"""`containerize swapin|swapout EXPDIR [ansible-playbook options]`: the playbooks, from any directory.

Like `netlab up`: the experiment's inventory with this project's playbook and configuration,
whatever the working directory. Options after EXPDIR go to ansible-playbook as they are (-v,
--check, --diff, --limit, -e ...). The exit status is ansible-playbook's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from ..errors import ContainerizeError
from ..expdir import PLAYBOOKS, ExperimentDir, ansible_env
from .base import CommandParser

DESCRIPTIONS = {
    "swapin": "Swap the experiment in (run it again to repair it): playbook containerize.deploy.swapin.",
    "swapout": "Swap the experiment out, removing every trace of it: playbook containerize.deploy.swapout.",
}


def playbook_argv(expdir: ExperimentDir, playbook: str, options: list[str]) -> list[str]:
    """The ansible-playbook command line: this interpreter's Ansible, the experiment's inventory."""
    return [sys.executable, "-m", "ansible", "playbook", "-i", str(expdir.path / "inventory"),
            str(PLAYBOOKS / f"{playbook}.yml"), *options]  # fmt: skip


def run_playbook_command(name: str, argv: list[str]) -> int:
    parser = CommandParser(name, description=DESCRIPTIONS[name],
                           epilog="Options after EXPDIR go to ansible-playbook (-v, --check, --diff, -e ...).")
    parser.add_argument("expdir", metavar="EXPDIR", help="experiment directory written by the compiler")
    parser.add_argument("options", nargs=argparse.REMAINDER, metavar="ANSIBLE-PLAYBOOK-OPTIONS")
    args = parser.parse_args(argv)
    expdir = ExperimentDir(args.expdir)
    try:
        return subprocess.call(playbook_argv(expdir, name, args.options), env=ansible_env())  # noqa: S603
    except OSError as exc:
        raise ContainerizeError(f"cannot run ansible-playbook: {exc.strerror}") from None


def run_swapin(argv: list[str]) -> int:
    return run_playbook_command("swapin", argv)


def run_swapout(argv: list[str]) -> int:
    return run_playbook_command("swapout", argv)
