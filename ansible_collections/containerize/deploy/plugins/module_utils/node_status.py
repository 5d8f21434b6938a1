"""The status of every kind of node of one pnode, and of its links, read from the files the roles keep.

One reader per kind (``STATUS``), each returning {state, exit, start, since, detail}:
``booted`` (up and its start command started, or none planned), ``failed`` (up, but its boot found
it unlike its plan: the detail says why, e.g. ``eth2: no such interface``), ``running`` (its container or VM
runs but has not finished booting), ``dead`` or ``unknown``. The experiment_status module, and
``containerize status`` / ``exec`` in the compiler's process, call these directly.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    proc_alive,
    read_json,
    read_pid,
    read_text,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_name
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import (
    SCRIPT_NAME,
    read_start_log,
    start_field,
    wants_start,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter_mgmt import (
    WirefilterSession,
    parse_showinfo,
)

BOOTED_MARKER = "containerize: booted"


class Context:
    """Where one pnode keeps an experiment: its root, run directory and node directories."""

    def __init__(self, params):
        self.root = os.path.abspath(params["root"])
        self.run_dir = os.path.abspath(params["run_dir"])
        self.exp_name = params["exp_name"]
        self.nodes_dir = os.path.join(self.root, "nodes", self.exp_name)

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def nodedir(self, name):
        return os.path.join(self.nodes_dir, name)


def netns_exists(ns):
    """True when /run/netns/NS is a mounted namespace (not a stale file)."""
    try:
        return os.stat(os.path.join(NETNS_DIR, ns)).st_dev != os.stat(NETNS_DIR).st_dev
    except OSError:
        return False


def start_status(node, log_dir):
    """(started, {exit, start, since}) of NODE's start command, from LOG_DIR/start_command.log."""
    started, exit_code, since = read_start_log(log_dir)
    return started, {"exit": exit_code, "start": start_field(wants_start(node), started, exit_code), "since": since}


def plugs_down(ctx, node):
    """The interfaces of NODE whose tap plug (run_dir/NODE.IFNAME.plug.pid, or its element WIRE.wf.pid when
    that is the plug: plugs.plan_plug) is not running (a veth or a bridge port has none)."""
    down = []
    for iface in node.get("interfaces") or []:
        if iface.get("veth") or iface.get("bridge"):
            continue
        pidfiles = [ctx.rpath(f"{node['name']}.{iface.get('ifname')}.plug.pid")]
        if iface.get("wire"):  # the element first: where cz-wire runs, it is the plug
            pidfiles.insert(0, ctx.rpath(f"{iface['wire']}.wf.pid"))
        if not any(proc_alive(read_pid(pidfile), pidfile) for pidfile in pidfiles):
            down.append(str(iface.get("ifname")))
    return down


def after_boot(result, wants, started):
    """The state of a node that finished booting: booted once its start command started."""
    if wants and not started:
        return {**result, "state": "running", "detail": "start command starting"}
    return {**result, "state": "booted", "detail": "start command running" if result["start"] == "started" else ""}


def process_status(ctx, node):
    name = node["name"]
    wants = wants_start(node)
    started, result = start_status(node, os.path.join(ctx.nodedir(name), "log"))
    if not netns_exists(str(node.get("namespace") or "")):
        return {**result, "state": "dead", "detail": "no namespace"}
    down = plugs_down(ctx, node)
    if down:
        return {**result, "state": "dead", "detail": f"{', '.join(down)} unplugged"}
    if not wants or result["exit"] is not None:
        return {**result, "state": "booted", "detail": ""}
    pidfile = ctx.rpath(f"{name}.start.pid")
    pid = read_pid(pidfile)
    # the supervisor's arguments name the node's log directory (its pid file, started by earlier versions)
    if proc_alive(pid, os.path.join(ctx.nodedir(name), "log")) or proc_alive(pid, pidfile):
        if started:
            return {**result, "state": "booted", "detail": "start command running"}
        return {**result, "state": "running", "detail": "start command starting"}
    if started:
        return {**result, "state": "dead", "detail": "start command killed"}
    return {**result, "state": "dead", "detail": "start command never ran"}


def boot_failure(log_dir, record):
    """What kept a qemu node of this start from being as planned (its boot script's log/failed), or ''."""
    path = os.path.join(log_dir, "failed")
    try:
        if os.stat(path).st_mtime < float(record.get("started") or 0) - 2:
            return ""
    except (OSError, TypeError, ValueError):
        return ""
    return " ".join((read_text(path) or "").split())[:500] or "failed"


def qemu_status(ctx, node):
    """The qemu role's files (docs/qemu.md, "Lifecycle and status")."""
    name = node["name"]
    nodedir = ctx.nodedir(name)
    started, result = start_status(node, os.path.join(nodedir, "log"))
    pidfile = ctx.rpath(f"{name}.qemu.pid")
    if not proc_alive(read_pid(pidfile), pidfile):
        return {**result, "state": "dead", "detail": "qemu not running"}
    record = read_json(ctx.rpath(f"{name}.qemu.json")) or {}
    failed = boot_failure(os.path.join(nodedir, "log"), record)
    if failed:
        return {**result, "state": "failed", "detail": failed}
    booted = False
    try:
        booted = os.stat(os.path.join(nodedir, "log", "booted")).st_mtime >= float(record.get("started") or 0) - 2
    except (OSError, TypeError, ValueError):
        pass
    if not booted:
        booted = BOOTED_MARKER in (read_text(ctx.rpath(f"{name}.serial.log")) or "")
    if not booted:
        return {**result, "state": "running", "detail": "booting"}
    return after_boot(result, wants_start(node), started)


def openvz_status(ctx, node):
    """The openvz role's files: run_dir/NODE.openvz.pid and .json (nspawn runtime), log/boot.log, taps."""
    name = node["name"]
    nodedir = ctx.nodedir(name)
    started, result = start_status(node, os.path.join(nodedir, "log"))
    pidfile = ctx.rpath(f"{name}.openvz.pid")
    rootfs = os.path.join(ctx.root, "openvz", ctx.exp_name, name, "root")
    if not proc_alive(read_pid(pidfile), rootfs):
        return {**result, "state": "dead", "detail": "container not running"}
    down = plugs_down(ctx, node)
    if down:
        return {**result, "state": "dead", "detail": f"{', '.join(down)} unplugged"}
    record = read_json(ctx.rpath(f"{name}.openvz.json")) or {}
    boot_log = os.path.join(nodedir, "log", "boot.log")
    boots = len((read_text(boot_log) or "").splitlines())
    if boots <= int(record.get("boots") or 0):
        return {**result, "state": "running", "detail": "booting"}
    try:  # (rc.local writes log/failed, or removes it, just before it counts the boot)
        failed = boot_failure(os.path.join(nodedir, "log"), {"started": os.stat(boot_log).st_mtime - 5})
    except OSError:
        failed = ""
    if failed:
        return {**result, "state": "failed", "detail": failed}
    return after_boot(result, wants_start(node), started)


def embedded_wrap(ctx, name):
    """The embedded_pnode role's way into its machine: the argv prefix (C(ip netns exec NS), C(chroot ROOT))
    its start command runs under, from run_dir/NODE.embedded.json; [] for the pnode itself."""
    return record_wrap(read_json(ctx.rpath(f"{name}.embedded.json")) or {})


def record_wrap(record):
    """embedded_wrap() of the embedded_nodes module's RECORD."""
    if isinstance(record.get("wrap"), list):
        return [str(a) for a in record["wrap"]]
    argv = record.get("start_argv") or []  # a record of an earlier version: the prefix of `sh -c`
    for index in range(len(argv) - 1):
        if argv[index] == "sh" and argv[index + 1] == "-c":
            return [str(a) for a in argv[:index]]
    return []


def start_needle(record, pidfile):
    """An argument of the running supervisor of an embedded_pnode node's start command (to tell it from
    another process with its pid): the supervisor script in the recorded argv (PIDFILE in older records)."""
    argv = record.get("start_argv") or []
    return next((str(a) for a in argv if str(a).endswith("/" + SCRIPT_NAME)), pidfile)


def embedded_status(ctx, node):
    """The pnode itself, configured by the embedded_pnode role (run_dir/NODE.embedded.json)."""
    name = node["name"]
    wants = wants_start(node)
    record = read_json(ctx.rpath(f"{name}.embedded.json")) or {}
    wrap = record_wrap(record)
    machine_root = wrap[wrap.index("chroot") + 1] if "chroot" in wrap[:-1] else "/"
    logdir = os.path.join(machine_root, "var", "containers")
    nodedir = ctx.nodedir(name)
    started, result = start_status(node, os.path.join(nodedir if os.path.isdir(nodedir) else logdir, "log"))
    if not os.path.exists(ctx.rpath(f"{name}.embedded.json")):
        return {**result, "state": "dead", "detail": "not configured"}
    if wants and result["exit"] is None:
        pidfile = ctx.rpath(f"{name}.embedded-start.pid")
        if not proc_alive(read_pid(pidfile), start_needle(record, pidfile)):
            why = "start command killed" if started else "start command never ran"
            return {**result, "state": "dead", "detail": why}
        if not started:
            return {**result, "state": "running", "detail": "start command starting"}
        return {**result, "state": "booted", "detail": "start command running"}
    return {**result, "state": "booted", "detail": ""}


STATUS = {"process": process_status, "qemu": qemu_status, "openvz": openvz_status, "embedded_pnode": embedded_status}


def node_status(ctx, node):
    kind = str(node.get("kind") or "process")
    reader = STATUS.get(kind)
    if reader is None:
        status = {"state": "unknown", "exit": None, "start": "none", "since": None, "detail": f"kind {kind}"}
    else:
        status = reader(ctx, node)
    return {"kind": kind, "ghost": bool(node.get("ghost")), **status}


def gather_nodes(ctx, nodes):
    return {str(g["name"]): node_status(ctx, g) for g in nodes}


def is_ready(status):
    return status["ghost"] or status["state"] == "booted"


# ----------------------------------------------------------------------------------------------
# links


def wirefilter_info(ctx, wf):
    wid = str(wf.get("id"))
    entry = {"node": wf.get("node"), "interface": wf.get("interface"), "method": "wirefilter", "running": False,
             "planned": {"left_to_right": wf.get("left_to_right"), "right_to_left": wf.get("right_to_left")}}
    # the element vde_network runs in the wirefilter's place: cz-wire, or wirefilter where it could not be built
    argv = (read_json(ctx.rpath(f"{wid}.wf.json")) or {}).get("argv") or ["wirefilter"]
    entry["element"] = "cz-wire" if os.path.basename(str(argv[0])) == "cz-wire" else "wirefilter"
    pidfile = ctx.rpath(f"{wid}.wf.pid")
    if not proc_alive(read_pid(pidfile), pidfile):
        return entry
    entry["running"] = True
    try:
        with WirefilterSession(ctx.rpath(f"{wid}.wf.mgmt"), 2.0) as session:
            entry.update(parse_showinfo(session.command("showinfo")))
    except OSError as exc:
        entry["error"] = f"management socket: {exc}"
    return entry


def tc_info(node, iface):
    entry = {"node": node["name"], "interface": iface.get("ifname"), "method": "tc", "bandwidth": None,
             "planned": {"bandwidth": (iface.get("tc") or {}).get("bandwidth")}}
    try:
        proc = subprocess.run(  # noqa: S603 - argv list
            ["tc", "-n", str(node.get("namespace")), "-j", "qdisc", "show", "dev", str(iface.get("ifname"))],
            capture_output=True, text=True, timeout=10, check=False,
        )
        for qdisc in json.loads(proc.stdout or "[]"):
            if qdisc.get("kind") == "tbf" and qdisc.get("root", True):
                entry["bandwidth"] = int(qdisc.get("options", {}).get("rate", 0)) * 8 or None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        entry["error"] = str(exc)
    return entry


def gather_links(ctx, nodes, wirefilters):
    links = {}
    for wf in wirefilters:
        links[str(wf.get("id"))] = wirefilter_info(ctx, wf)
    for node in nodes:
        if str(node.get("kind") or "process") != "process":
            continue
        for iface in node.get("interfaces") or []:
            if (iface.get("tc") or {}).get("bandwidth") and netns_exists(str(node.get("namespace") or "")):
                links[f"{node['name']}.{iface.get('ifname')}"] = tc_info(node, iface)
    return links


# ----------------------------------------------------------------------------------------------


def named_nodes(params):
    """The nodes of PARAMS with a valid name (others are not looked at)."""
    return [g for g in params.get("nodes") or [] if valid_name(str(g.get("name", "")))]


def gather(params, progress=None):
    """The status of a pnode's experiment: {nodes, late, links, waited}.

    PARAMS are the experiment_status module's (root, run_dir, exp_name, nodes, wirefilters, links,
    wait, timeout). PROGRESS, when given, is called with (ready, total) while waiting.
    """
    ctx = Context(params)
    plans = named_nodes(params)
    started = time.monotonic()
    nodes = gather_nodes(ctx, plans)
    if params.get("wait"):
        deadline = started + float(params.get("timeout") or 0)
        step = 0.05
        while True:
            ready = sum(1 for s in nodes.values() if is_ready(s))
            settled = sum(1 for s in nodes.values() if not is_ready(s) and s["state"] == "failed")
            if progress:
                progress(ready, len(nodes))
            # a failed node (its boot found it unlike its plan) stays so: no use waiting for it
            if ready + settled == len(nodes) or time.monotonic() >= deadline:
                break
            time.sleep(step)
            step = min(step * 1.5, 1.0)
            nodes = gather_nodes(ctx, plans)
    late = sorted(name for name, s in nodes.items() if not is_ready(s)) if params.get("wait") else []
    result = {"nodes": nodes, "late": late, "waited": round(time.monotonic() - started, 3), "links": {}}
    if params.get("links"):
        result["links"] = gather_links(ctx, plans, params.get("wirefilters") or [])
    return result


def status_lines(nodes):
    """One readable line per node, for the playbook's output."""
    width = max([len(name) for name in nodes] + [4])
    lines = []
    for name, s in nodes.items():
        exit_code = "-" if s["exit"] is None else str(s["exit"])
        extra = ", ".join(filter(None, ["ghost" if s["ghost"] else "", s["detail"]]))
        lines.append(f"{name:<{width}}  {s['kind']:<14}  {s['state']:<7}  exit {exit_code:<4}  {extra}".rstrip())
    return lines
