"""The start command's log, as the one supervisor (roles/hv/files/start-command.sh) writes it.

`LOG_DIR/start_command.log` holds `start TIME`, then `exit N` and `end TIME` when the command
ends; its output goes to start_command.out and start_command.err beside it. Every kind of node
runs its start command through that script, so this is the one reader of the format.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import wait_for

LOG_NAME = "start_command.log"
SCRIPT_NAME = "start-command.sh"


def wants_start(node):
    """True when the plan of NODE (a dict) has a start command to run (a ghost runs none)."""
    return bool(str(node.get("startcmd") or "").strip()) and not node.get("ghost")


def parse_start_log(text):
    """(started, exit code or None, start time or None) from the text of a start_command.log."""
    started, exit_code, since = False, None, None
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "start":
            started, exit_code = True, None
            since = parts[1] if len(parts) > 1 else None
        elif parts[0] == "exit" and len(parts) > 1 and parts[1].lstrip("-").isdigit():
            exit_code = int(parts[1])
    return started, exit_code, since


def read_start_log(log_dir):
    """parse_start_log of LOG_DIR/start_command.log (not started when it cannot be read)."""
    try:
        with open(os.path.join(log_dir, LOG_NAME), encoding="utf-8", errors="replace") as handle:
            return parse_start_log(handle.read())
    except OSError:
        return False, None, None


def start_field(wants, started, exit_code):
    """The status word of a start command: none, waiting, started or finished."""
    if not wants:
        return "none"
    if exit_code is not None:
        return "finished"
    return "started" if started else "waiting"


def wait_for_start_lines(log_dirs, timeout):
    """Wait (at most TIMEOUT s) until the supervisor of each node of LOG_DIRS {name: log directory} logged
    its start; the names of those that did not, sorted."""
    waiting = dict(log_dirs)

    def begun():
        for name in [name for name, log_dir in waiting.items() if read_start_log(log_dir)[0]]:
            del waiting[name]
        return not waiting

    wait_for(begun, timeout)
    return sorted(waiting)
