"""What runs in an experiment's run directory on a pnode: its VDE switches, wirefilters and pid files (vde_network)."""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    proc_alive,
    proc_cmdline,
    read_json,
    read_pid,
)


def switch_state(run_dir, sid):
    pidfile = os.path.join(run_dir, f"{sid}.pid")
    pid = read_pid(pidfile)
    if pid and proc_alive(pid, pidfile):
        return {"running": True, "pid": pid, "argv": proc_cmdline(pid)}
    return {"running": False, "pid": None, "argv": None}


def wirefilter_state(run_dir, wid):
    pidfile = os.path.join(run_dir, f"{wid}.wf.pid")
    pid = read_pid(pidfile)
    record = read_json(os.path.join(run_dir, f"{wid}.wf.json")) or {}
    running = bool(pid and proc_alive(pid, pidfile))
    return {
        "running": running,
        "pid": pid if running else None,
        "argv": record.get("argv"),
        "switch_pids": record.get("switch_pids", {}),
    }


def scan_pidfiles(run_dir):
    """Every pid file of RUN_DIR, classified: {(kind, id): path}."""
    found = {}
    try:
        names = sorted(os.listdir(run_dir))
    except FileNotFoundError:
        return found
    for name in names:
        if not name.endswith(".pid"):
            continue
        stem = name[: -len(".pid")]
        if stem.endswith(".wf"):
            found[("wirefilter", stem[:-3])] = name
        elif stem.endswith(".plug"):
            found[("plug", stem[:-5])] = name
        elif stem.endswith(".start"):
            found[("start", stem[:-6])] = name
        elif "." not in stem:
            found[("switch", stem)] = name
        else:
            found[("other", stem)] = name
    return found
