#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: boot status and start command exit code of every guest of one pnode, and its links."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: experiment_status
short_description: Report the status of the guests and links of one pnode
description:
  - Reads, without changing anything, the state of every guest planned for this pnode
    (C(containerize_guests) of C(host_vars/pnode-NNNN.yml)), whatever its kind, in one call.
  - Each guest gets a boot status, C(state), and the exit status of its start command, C(exit)
    (null while it runs or when there is none). C(state) is C(booted) (up and its start command
    started, or none planned), C(running) (its container or VM runs but has not finished booting),
    C(dead) (not running, or cut off), or C(unknown) (this module cannot tell for that kind).
  - C(process) guests are C(dead) when their namespace is missing, a tap plug of theirs is not
    running, or the supervisor of their start command was killed before it recorded an exit status.
  - C(qemu) guests follow the files of the qemu role (C(run_dir/NODE.qemu.pid), C(NODE.qemu.json),
    C(NODE.serial.log) and C(log/booted) in the node directory).
  - C(openvz) guests follow the files of the openvz role (C(run_dir/NODE.openvz.pid) and
    C(NODE.openvz.json) of the nspawn runtime, C(log/boot.log) in the node directory, and their
    tap plugs like process guests).
  - C(embedded_pnode) guests are the pnode itself, C(booted) once the embedded_pnode role configured
    it (C(run_dir/NODE.embedded.json)), unless its start command's supervisor
    (C(NODE.embedded-start.pid)) was killed.
  - The start command's status comes from C(log/start_command.log) (C(start TIME), then C(exit N))
    in the node directory C(root/nodes/exp_name/NODE/), or in the machine's C(/var/containers) for
    C(embedded_pnode) guests.
  - With O(links), each planned wirefilter is asked for its current bandwidth, delay and loss over
    its management socket, and the C(tbf) of each end-node shaped process interface is read.
  - With O(wait), the module waits until every guest that is not a ghost is C(booted) (its start
    command started), at most O(timeout) seconds, and fails naming the late ones (unless
    O(fail_late=false)).
  - With O(info_files), the module keeps an C(info) script and a C(facts) file in every node
    directory (seen as C(/var/containers/info) inside the nodes); this is the only thing it writes,
    and only when their content differs.
version_added: "0.1.0"
author:
  - containerize authors
options:
  root:
    description: Pnode root (C(containerize_root)), holds C(nodes/EXP_NAME/NODE/).
    type: path
    default: /var/containers
  run_dir:
    description: Runtime directory of the experiment on this pnode (C(root/run/EXP_TAG)).
    type: path
    required: true
  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id (for the facts file).
    type: str
    default: ""
  experiment:
    description: Experiment id (for the facts file).
    type: str
    default: ""
  pnode:
    description: Name of this pnode (for the facts file).
    type: str
    default: ""
  guests:
    description:
      - Every guest of this pnode (C(containerize_guests)); keys not used here are ignored.
      - Left out of a task, the module's action plugin passes the host's C(containerize_guests) as the
        inventory holds it (no template pass, and the task does not carry the list back).
    type: list
    elements: dict
    default: []
  wirefilters:
    description: The planned wirefilters of this pnode (C(containerize_wirefilters)), read with O(links).
    type: list
    elements: dict
    default: []
  links:
    description: Also report the shaping in effect on every wirefilter and end-node shaped interface.
    type: bool
    default: false
  wait:
    description: Wait until every guest that is not a ghost is booted.
    type: bool
    default: false
  timeout:
    description: Seconds to wait with O(wait).
    type: float
    default: 300
  fail_late:
    description:
      - With O(wait), fail when some guests are not booted after O(timeout) seconds.
      - When false the late guests are named in a warning (and in RV(late)) instead.
    type: bool
    default: true
  info_files:
    description: Keep C(info) and C(facts) up to date in every node directory that exists.
    type: bool
    default: false
notes:
  - Supports check mode (it only reads, except O(info_files), which check mode reports without writing).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the status of every guest of this pnode
  experiment_status:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    guests: "{{ containerize_guests }}"
    wirefilters: "{{ containerize_wirefilters }}"
    links: true
  register: status

- name: Wait until every node booted (at most 5 minutes)
  experiment_status:
    run_dir: /var/containers/run/1a2b3c4d
    exp_name: exp.proj
    guests: "{{ containerize_guests }}"
    wait: true
    timeout: 300
"""

RETURN = r"""
nodes:
  description: Per guest, its kind, ghost flag, boot status, start command exit status and state, and a detail.
  returned: always
  type: dict
  sample:
    a: {kind: process, ghost: false, state: booted, exit: 0, start: finished, detail: ""}
    b: {kind: qemu, ghost: false, state: running, exit: null, start: none, detail: "booting"}
late:
  description: With O(wait), the guests that are not ghosts and were not booted in time.
  returned: always
  type: list
  elements: str
links:
  description:
    - With O(links), per wirefilter id the shaping in effect, C({node, interface, method, running,
      left_to_right, right_to_left}) (C(bandwidth) bit/s or null, C(delay_ms), C(loss) 0..1), and
      per end-node shaped interface C(NODE.IFNAME) C({node, interface, method=tc, bandwidth}).
  returned: always
  type: dict
table:
  description: One readable line per guest (name, kind, state, exit status, detail).
  returned: always
  type: list
  elements: str
waited:
  description: Seconds spent waiting with O(wait).
  returned: always
  type: float
"""

import json
import os
import re
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    compact_invocation,
    proc_alive,
    read_json,
    read_pid,
    read_text,
    write_new_or_replace,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
BOOTED_MARKER = "containerize: booted"
WF_PROMPT = b"VDEwf$ "
WF_NUMBER = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"
WF_LINE = re.compile(rf"^(Loss|Delay|Bandw)\s+L->R\s+{WF_NUMBER}\+\S*\s+R->L\s+{WF_NUMBER}\+", re.M)

# The script behind `/var/containers/info` inside every node and `containerize info`: POSIX sh,
# busybox-compatible. Facts come from arguments, then /var/containers/facts, then guesses; the
# interfaces are what the node really has.
INFO_SCRIPT = r"""#!/bin/sh
# containerize node information (what DETER's info.py --all printed); written by containerize.
# usage: info [--all|--json] [NODE KIND PROJECT EXPERIMENT PNODE]
mode=text
case "$1" in
    --json) mode=json; shift ;;
    --all|-a) shift ;;
    -h|--help) echo "usage: $0 [--all|--json]"; exit 0 ;;
esac
node=$1 kind=$2 project=$3 experiment=$4 pnode=$5
facts=/var/containers/facts
if [ -r "$facts" ]; then
    while IFS='=' read -r key value; do
        case "$key" in
            node) [ -n "$node" ] || node=$value ;;
            kind) [ -n "$kind" ] || kind=$value ;;
            project) [ -n "$project" ] || project=$value ;;
            experiment) [ -n "$experiment" ] || experiment=$value ;;
            pnode) [ -n "$pnode" ] || pnode=$value ;;
        esac
    done < "$facts"
fi
[ -n "$project" ] || project=$(cat /var/containers/pid 2>/dev/null)
[ -n "$experiment" ] || experiment=$(cat /var/containers/eid 2>/dev/null)
[ -n "$node" ] || node=$(cat /etc/hostname 2>/dev/null || hostname)
if [ -z "$kind" ]; then
    if [ -r /etc/containerize/settings ]; then kind=qemu
    elif [ -r /run/systemd/container ]; then kind=openvz
    else kind=process
    fi
fi
netmask() {
    p=$1 out= i=0
    while [ $i -lt 4 ]; do
        if [ "$p" -ge 8 ]; then o=255; p=$((p - 8))
        elif [ "$p" -gt 0 ]; then o=$((256 - (1 << (8 - p)))); p=0
        else o=0
        fi
        out=$out${out:+.}$o
        i=$((i + 1))
    done
    echo "$out"
}
# names and MACs from `ip` (a container's /sys may show another network namespace)
links=$(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \([^:@ ]*\)[^ ]*: .* link\/ether \([0-9a-f:]*\).*/\1 \2/p')
first=1
if [ "$mode" = json ]; then
    printf '{"node": "%s", "kind": "%s", "project": "%s", "experiment": "%s", "pnode": "%s", "interfaces": [' \
        "$node" "$kind" "$project" "$experiment" "$pnode"
else
    echo "Node:       $node"
    echo "Project:    $project"
    echo "Experiment: $experiment"
    echo "Kind:       $kind"
    [ -n "$pnode" ] && echo "Pnode:      $pnode"
    echo "Interfaces:"
fi
echo "$links" | while read -r name mac; do
    [ -n "$name" ] || continue
    cidr=$(ip -o -4 addr show dev "$name" 2>/dev/null | sed -n 's/.* inet \([0-9.]*\/[0-9]*\).*/\1/p' | head -n 1)
    [ -n "$cidr" ] || continue  # not an experiment interface (ifb, tunnels, ...)
    addr=${cidr%/*}
    mask=$(netmask "${cidr#*/}")
    if [ "$mode" = json ]; then
        [ $first = 1 ] || printf ', '
        printf '{"name": "%s", "address": "%s", "netmask": "%s", "mac": "%s"}' "$name" "$addr" "$mask" "$mac"
    else
        printf '  %-8s %-15s %-15s %s\n' "$name" "${addr:--}" "${mask:--}" "$mac"
    fi
    first=0
done
[ "$mode" = json ] && printf ']}\n'
exit 0
"""


# ----------------------------------------------------------------------------------------------
# helpers (modules ship alone: the few process helpers are repeated here)


def netns_exists(ns):
    """True when /run/netns/NS is a mounted namespace (not a stale file)."""
    try:
        return os.stat(os.path.join(NETNS_DIR, ns)).st_dev != os.stat(NETNS_DIR).st_dev
    except OSError:
        return False


def start_log(nodedir):
    """(started, exit code or None, start time) from the node's start_command.log."""
    log = read_text(os.path.join(nodedir, "log", "start_command.log")) or ""
    started, exit_code, since = False, None, None
    for line in log.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "start":
            started, exit_code = True, None
            since = parts[1] if len(parts) > 1 else None
        elif parts[0] == "exit" and len(parts) > 1 and parts[1].lstrip("-").isdigit():
            exit_code = int(parts[1])
    return started, exit_code, since


def start_field(wants, started, exit_code):
    if not wants:
        return "none"
    if exit_code is not None:
        return "finished"
    return "started" if started else "waiting"


# ----------------------------------------------------------------------------------------------
# per kind: one function each, {state, exit, start, detail}


class Context:
    def __init__(self, params):
        self.root = os.path.abspath(params["root"])
        self.run_dir = os.path.abspath(params["run_dir"])
        self.exp_name = params["exp_name"]
        self.nodes_dir = os.path.join(self.root, "nodes", self.exp_name)

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def nodedir(self, name):
        return os.path.join(self.nodes_dir, name)


def wants_start(guest):
    return bool(str(guest.get("startcmd") or "").strip()) and not guest.get("ghost")


def process_status(ctx, guest):
    name = guest["name"]
    wants = wants_start(guest)
    started, exit_code, since = start_log(ctx.nodedir(name))
    result = {"exit": exit_code, "start": start_field(wants, started, exit_code), "since": since}
    if not netns_exists(str(guest.get("namespace") or "")):
        return {**result, "state": "dead", "detail": "no namespace"}
    down = []
    for iface in guest.get("interfaces") or []:
        pidfile = ctx.rpath(f"{name}.{iface.get('ifname')}.plug.pid")
        if not proc_alive(read_pid(pidfile), pidfile):
            down.append(str(iface.get("ifname")))
    if down:
        return {**result, "state": "dead", "detail": f"{', '.join(down)} unplugged"}
    if not wants or exit_code is not None:
        return {**result, "state": "booted", "detail": ""}
    pidfile = ctx.rpath(f"{name}.start.pid")
    if proc_alive(read_pid(pidfile), pidfile):
        if started:
            return {**result, "state": "booted", "detail": "start command running"}
        return {**result, "state": "running", "detail": "start command starting"}
    if started:
        return {**result, "state": "dead", "detail": "start command killed"}
    return {**result, "state": "dead", "detail": "start command never ran"}


def qemu_status(ctx, guest):
    """The qemu role's files (docs/qemu.md, "Lifecycle and status")."""
    name = guest["name"]
    nodedir = ctx.nodedir(name)
    wants = wants_start(guest)
    started, exit_code, since = start_log(nodedir)
    result = {"exit": exit_code, "start": start_field(wants, started, exit_code), "since": since}
    pidfile = ctx.rpath(f"{name}.qemu.pid")
    if not proc_alive(read_pid(pidfile), pidfile):
        return {**result, "state": "dead", "detail": "qemu not running"}
    record = read_json(ctx.rpath(f"{name}.qemu.json")) or {}
    booted = False
    try:
        booted = os.stat(os.path.join(nodedir, "log", "booted")).st_mtime >= float(record.get("started") or 0) - 2
    except (OSError, TypeError, ValueError):
        pass
    if not booted:
        booted = BOOTED_MARKER in (read_text(ctx.rpath(f"{name}.serial.log")) or "")
    if not booted:
        return {**result, "state": "running", "detail": "booting"}
    if wants and not started:
        return {**result, "state": "running", "detail": "start command starting"}
    return {**result, "state": "booted", "detail": "start command running" if result["start"] == "started" else ""}


def openvz_status(ctx, guest):
    """The openvz role's files: run_dir/NODE.openvz.pid and .json (nspawn runtime), log/boot.log, taps."""
    name = guest["name"]
    nodedir = ctx.nodedir(name)
    wants = wants_start(guest)
    started, exit_code, since = start_log(nodedir)
    result = {"exit": exit_code, "start": start_field(wants, started, exit_code), "since": since}
    pidfile = ctx.rpath(f"{name}.openvz.pid")
    rootfs = os.path.join(ctx.root, "openvz", ctx.exp_name, name, "root")
    if not proc_alive(read_pid(pidfile), rootfs):
        return {**result, "state": "dead", "detail": "container not running"}
    down = [str(i.get("ifname")) for i in guest.get("interfaces") or []
            if not proc_alive(read_pid(ctx.rpath(f"{name}.{i.get('ifname')}.plug.pid")),
                              ctx.rpath(f"{name}.{i.get('ifname')}.plug.pid"))]
    if down:
        return {**result, "state": "dead", "detail": f"{', '.join(down)} unplugged"}
    record = read_json(ctx.rpath(f"{name}.openvz.json")) or {}
    boots = len((read_text(os.path.join(nodedir, "log", "boot.log")) or "").splitlines())
    if boots <= int(record.get("boots") or 0):
        return {**result, "state": "running", "detail": "booting"}
    if wants and not started:
        return {**result, "state": "running", "detail": "start command starting"}
    return {**result, "state": "booted", "detail": "start command running" if result["start"] == "started" else ""}


def embedded_wrap(ctx, name):
    """The embedded_pnode role's way into its machine: the prefix of its start command's argv
    (C(ip netns exec NS), C(chroot ROOT)), from run_dir/NODE.embedded.json; [] for the pnode itself."""
    argv = (read_json(ctx.rpath(f"{name}.embedded.json")) or {}).get("start_argv") or []
    for index in range(len(argv) - 1):
        if argv[index] == "sh" and argv[index + 1] == "-c":
            return [str(a) for a in argv[:index]]
    return []


def embedded_status(ctx, guest):
    """The pnode itself, configured by the embedded_pnode role (run_dir/NODE.embedded.json)."""
    name = guest["name"]
    wants = wants_start(guest)
    wrap = embedded_wrap(ctx, name)
    machine_root = wrap[wrap.index("chroot") + 1] if "chroot" in wrap[:-1] else "/"
    logdir = os.path.join(machine_root, "var", "containers")
    started, exit_code, since = start_log(ctx.nodedir(name) if os.path.isdir(ctx.nodedir(name)) else logdir)
    result = {"exit": exit_code, "start": start_field(wants, started, exit_code), "since": since}
    if not os.path.exists(ctx.rpath(f"{name}.embedded.json")):
        return {**result, "state": "dead", "detail": "not configured"}
    if wants and exit_code is None:
        pidfile = ctx.rpath(f"{name}.embedded-start.pid")
        if not proc_alive(read_pid(pidfile), pidfile):
            why = "start command killed" if started else "start command never ran"
            return {**result, "state": "dead", "detail": why}
        if not started:
            return {**result, "state": "running", "detail": "start command starting"}
        return {**result, "state": "booted", "detail": "start command running"}
    return {**result, "state": "booted", "detail": ""}


STATUS = {"process": process_status, "qemu": qemu_status, "openvz": openvz_status, "embedded_pnode": embedded_status}


def guest_status(ctx, guest):
    kind = str(guest.get("kind") or "process")
    reader = STATUS.get(kind)
    if reader is None:
        status = {"state": "unknown", "exit": None, "start": "none", "since": None, "detail": f"kind {kind}"}
    else:
        status = reader(ctx, guest)
    return {"kind": kind, "ghost": bool(guest.get("ghost")), **status}


def gather_nodes(ctx, guests):
    return {str(g["name"]): guest_status(ctx, g) for g in guests}


def is_ready(status):
    return status["ghost"] or status["state"] == "booted"


# ----------------------------------------------------------------------------------------------
# links


def wirefilter_session(path, commands, timeout=2.0):
    """Send COMMANDS to a wirefilter management socket; return the reply text of each."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)

        def until_prompt():
            data = b""
            while not data.endswith(WF_PROMPT):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace")

        until_prompt()  # banner
        for command in commands:
            sock.sendall(command.encode() + b"\n")
            replies.append(until_prompt())
    return replies


def parse_showinfo(text):
    """{left_to_right: {...}, right_to_left: {...}} from a wirefilter's showinfo reply."""
    values = {"left_to_right": {}, "right_to_left": {}}
    for key, lr, rl in WF_LINE.findall(text):
        for direction, raw in (("left_to_right", lr), ("right_to_left", rl)):
            number = float(raw)
            if key == "Delay":
                values[direction]["delay_ms"] = number
            elif key == "Bandw":
                values[direction]["bandwidth"] = int(round(number * 8)) if number > 0 else None
            else:
                values[direction]["loss"] = number / 100.0
    return values


def wirefilter_info(ctx, wf):
    wid = str(wf.get("id"))
    entry = {"node": wf.get("node"), "interface": wf.get("interface"), "method": "wirefilter", "running": False,
             "planned": {"left_to_right": wf.get("left_to_right"), "right_to_left": wf.get("right_to_left")}}
    pidfile = ctx.rpath(f"{wid}.wf.pid")
    if not proc_alive(read_pid(pidfile), pidfile):
        return entry
    entry["running"] = True
    try:
        entry.update(parse_showinfo(wirefilter_session(ctx.rpath(f"{wid}.wf.mgmt"), ["showinfo"])[0]))
    except OSError as exc:
        entry["error"] = f"management socket: {exc}"
    return entry


def tc_info(guest, iface):
    entry = {"node": guest["name"], "interface": iface.get("ifname"), "method": "tc", "bandwidth": None,
             "planned": {"bandwidth": (iface.get("tc") or {}).get("bandwidth")}}
    try:
        proc = subprocess.run(  # noqa: S603 - argv list
            ["tc", "-n", str(guest.get("namespace")), "-j", "qdisc", "show", "dev", str(iface.get("ifname"))],
            capture_output=True, text=True, timeout=10, check=False,
        )
        for qdisc in json.loads(proc.stdout or "[]"):
            if qdisc.get("kind") == "tbf" and qdisc.get("root", True):
                entry["bandwidth"] = int(qdisc.get("options", {}).get("rate", 0)) * 8 or None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        entry["error"] = str(exc)
    return entry


def gather_links(ctx, guests, wirefilters):
    links = {}
    for wf in wirefilters:
        links[str(wf.get("id"))] = wirefilter_info(ctx, wf)
    for guest in guests:
        if str(guest.get("kind") or "process") != "process":
            continue
        for iface in guest.get("interfaces") or []:
            if (iface.get("tc") or {}).get("bandwidth") and netns_exists(str(guest.get("namespace") or "")):
                links[f"{guest['name']}.{iface.get('ifname')}"] = tc_info(guest, iface)
    return links


# ----------------------------------------------------------------------------------------------
# info files


def facts_text(guest, params):
    facts = {"node": guest["name"], "kind": guest.get("kind") or "process", "project": params["project"],
             "experiment": params["experiment"], "pnode": params["pnode"]}
    return "".join(f"{key}={value}\n" for key, value in facts.items())


def write_if_changed(path, text, mode, check):
    if read_text(path) == text and (os.stat(path).st_mode & 0o777) == mode:
        return False
    if not check:
        write_new_or_replace(path, text, mode)
    return True


def ensure_info_files(ctx, guests, params, check):
    changed = []
    for guest in guests:
        nodedir = ctx.nodedir(guest["name"])
        if not os.path.isdir(nodedir):
            continue
        if write_if_changed(os.path.join(nodedir, "info"), INFO_SCRIPT, 0o755, check):
            changed.append(f"{guest['name']} info")
        if write_if_changed(os.path.join(nodedir, "facts"), facts_text(guest, params), 0o644, check):
            changed.append(f"{guest['name']} facts")
    return changed


# ----------------------------------------------------------------------------------------------


def gather(params, progress=None):
    """Everything the module returns, without Ansible: {nodes, late, links, waited}.

    PROGRESS, when given, is called with (ready, total) while waiting.
    """
    ctx = Context(params)
    guests = [g for g in params.get("guests") or [] if NAME_RE.match(str(g.get("name", "")))]
    started = time.monotonic()
    nodes = gather_nodes(ctx, guests)
    if params.get("wait"):
        deadline = started + float(params.get("timeout") or 0)
        step = 0.05
        while True:
            ready = sum(1 for s in nodes.values() if is_ready(s))
            if progress:
                progress(ready, len(nodes))
            if ready == len(nodes) or time.monotonic() >= deadline:
                break
            time.sleep(step)
            step = min(step * 1.5, 1.0)
            nodes = gather_nodes(ctx, guests)
    late = sorted(name for name, s in nodes.items() if not is_ready(s)) if params.get("wait") else []
    result = {"nodes": nodes, "late": late, "waited": round(time.monotonic() - started, 3), "links": {}}
    if params.get("links"):
        result["links"] = gather_links(ctx, guests, params.get("wirefilters") or [])
    return result


def status_lines(nodes):
    """One readable line per guest, for the playbook's output."""
    width = max([len(name) for name in nodes] + [4])
    lines = []
    for name, s in nodes.items():
        exit_code = "-" if s["exit"] is None else str(s["exit"])
        extra = ", ".join(filter(None, ["ghost" if s["ghost"] else "", s["detail"]]))
        lines.append(f"{name:<{width}}  {s['kind']:<14}  {s['state']:<7}  exit {exit_code:<4}  {extra}".rstrip())
    return lines


ARGUMENT_SPEC = {
    "root": {"type": "path", "default": "/var/containers"},
    "run_dir": {"type": "path", "required": True},
    "exp_name": {"type": "str", "required": True},
    "project": {"type": "str", "default": ""},
    "experiment": {"type": "str", "default": ""},
    "pnode": {"type": "str", "default": ""},
    "guests": {"type": "list", "elements": "dict", "default": []},
    "wirefilters": {"type": "list", "elements": "dict", "default": []},
    "links": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 300},
    "fail_late": {"type": "bool", "default": True},
    "info_files": {"type": "bool", "default": False},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if "/" in params["exp_name"] or not params["exp_name"].strip("."):
        module.fail_json(msg=f"exp_name {params['exp_name']!r} is not a valid name")
    result = gather(params)
    result["changed"] = False
    result["table"] = status_lines(result["nodes"])
    if params["info_files"]:
        ctx = Context(params)
        guests = [g for g in params["guests"] if NAME_RE.match(str(g.get("name", "")))]
        written = ensure_info_files(ctx, guests, params, module.check_mode)
        result["changed"] = bool(written)
        result["info_files"] = written
    if params["wait"] and result["late"]:
        details = "; ".join(
            f"{name} {result['nodes'][name]['state']}"
            + (f" ({result['nodes'][name]['detail']})" if result["nodes"][name]["detail"] else "")
            for name in result["late"]
        )
        message = f"{len(result['late'])} node(s) not booted after {params['timeout']:g} s: {details}"
        if params["fail_late"]:
            module.fail_json(msg=message, **result, invocation=compact_invocation(module))
        module.warn(message)
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
