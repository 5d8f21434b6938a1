"""The taps of nodes: one vde_plug2tap per interface, started inside the node's namespace and judged
by what the kernel says of the running process (/proc), not by a record of it. A plug runs at
real-time priority, as the switches and wirefilters do (daemons.RT_PRIORITY).

A shaped interface whose element is cz-wire has the element as its plug: cz-wire opens the tap
(tap://IFNAME) in the node's namespace and the substrate switch's port, one process where a plug, a
private switch and the element were three (docs/datapath.md). Its pid file, management socket and
record are the element's (ID.wf.*), so link_shaping and status find it as they find any element.
The two elements of a joined point-to-point link (the compiler's `peer`) send to each other's socket
(peer://RUN/ID.wf.data,RUN/PEER.wf.data) where both are plugs, and no switch runs between them.

A plug is healthy when it runs (its command line naming its pid file, so a reused pid is never
mistaken for it), in the node's namespace, with the planned arguments, started after its switch
(an older plug is attached to the switch that was there before), and its tap exists.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    is_realtime,
    kill_pid,
    make_realtime,
    netns_path,
    proc_alive,
    proc_cmdline,
    proc_netns_inode,
    proc_start_ticks,
    read_json,
    read_pid,
    remove_path,
    spawn_daemon,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import in_netns
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import element_argv

PLUG_SUFFIX = ".plug.pid"
# a per-plug record written by earlier versions (plugs are judged by /proc now): still removed
OLD_RECORD_SUFFIX = ".plug.json"


def plug_pidfile(run_dir, node, ifname):
    return os.path.join(run_dir, f"{node}.{ifname}{PLUG_SUFFIX}")


def plug_argv(run_dir, node, iface):
    """vde_plug2tap's argv; it is started from a thread inside the namespace (no `ip netns exec`)."""
    argv = ["vde_plug2tap", "-d", "-P", plug_pidfile(run_dir, node, iface["ifname"])]
    argv += ["-s", os.path.join(run_dir, f"{iface['switch']}.ctl")]
    if iface.get("port"):
        argv += ["-p", str(int(iface["port"]))]
    return argv + [iface["ifname"]]


class PlugPlan(NamedTuple):
    argv: list
    pidfile: str
    switch: str | None  # the switch it plugs into (a plug started before it is attached to an older one)
    record: str | None  # an element's ID.wf.json: link_shaping records values changed live there
    socket: str | None = None  # a joined element's own peer socket: gone (removed by hand), its peer cannot send


def plan_plug(run_dir, node, iface, wires, element):
    """How interface IFACE of NODE is plugged: its ELEMENT (wirefilter.recorded_element) when WIRES (the
    node_plug wirefilters by id, when the element is cz-wire) has the one IFACE names, else a vde_plug2tap."""
    wf = wires.get(iface.get("wire") or "")
    if wf is None:
        return PlugPlan(plug_argv(run_dir, node, iface), plug_pidfile(run_dir, node, iface["ifname"]),
                        iface["switch"], None)
    wid, port, peer = str(wf["id"]), wf.get("right_port"), wf.get("peer")
    if peer and str(peer) in wires:  # a joined link: the peer element's socket, whenever it runs
        socket, switch = peer_socket(run_dir, wid), None
        right = f"peer://{socket},{peer_socket(run_dir, peer)}"
    else:
        socket, switch = None, wf["right"]
        right = os.path.join(run_dir, f"{wf['right']}.ctl") + (f"[{int(port)}]" if port else "")
    argv = element_argv(element, run_dir, wid, f"tap://{iface['ifname']}", right, wf)
    return PlugPlan(argv, os.path.join(run_dir, f"{wid}.wf.pid"), switch, os.path.join(run_dir, f"{wid}.wf.json"),
                    socket)


def peer_socket(run_dir, wid):
    """The datagram socket element WID of a joined link receives its peer's frames on."""
    return os.path.join(run_dir, f"{wid}.wf.data")


def is_plug(argv):
    """True for a node plug's arguments (found among a run directory's stray processes)."""
    return any(arg.endswith(PLUG_SUFFIX) for arg in argv)


def observe_plug(plan, ns_inode, cpus):
    """What the kernel says of the plug PLAN names: {pid, in_ns, argv, started, realtime, socket} (pid None
    when it is gone; socket False when a joined element's socket file is gone; realtime: at real-time
    priority on CPUS, the data path's, see prioritize_plug).

    An element's argv is its record's when the two agree up to its wire (-v): link_shaping changes an
    element's values over its management socket and records them, its command line stays as started
    (the record is read only then: a 1,000-node re-run reads a thousand records less)."""
    pid = read_pid(plan.pidfile)
    alive = bool(pid and proc_alive(pid, plan.pidfile))
    argv = proc_cmdline(pid) if alive else None
    if argv and plan.record and "-v" in argv and argv != plan.argv:
        recorded = (read_json(plan.record) or {}).get("argv")
        head = argv.index("-v") + 2
        if isinstance(recorded, list) and recorded[:head] == argv[:head]:
            argv = recorded
    return {
        "pid": pid if alive else None,
        "in_ns": alive and bool(ns_inode) and proc_netns_inode(pid) == ns_inode,
        "argv": argv,
        "started": proc_start_ticks(pid) if alive else None,
        "realtime": is_realtime(pid, cpus=cpus) if alive else None,
        "socket": not (alive and plan.socket) or os.path.exists(plan.socket),
    }


def plug_healthy(plug, argv, switch_started, has_tap):
    """True when the observed PLUG runs as planned (ARGV), after its switch, and its tap (and a joined
    element's socket) is there."""
    return bool(
        plug["pid"]
        and plug["in_ns"]
        and plug.get("socket", True)
        and plug["argv"] == argv
        and None not in (plug["started"], switch_started)
        and plug["started"] >= switch_started
        and has_tap
    )


def plugged_interfaces(run_entries):
    """{node: {ifname, ...}} of every plug pid file (or old plug record) among RUN_ENTRIES, the run directory's
    names: built once per module call (a node's scan of every entry cost a 1,000-node re-run 3.7 s)."""
    found = {}
    for entry in run_entries:
        if entry.endswith((PLUG_SUFFIX, OLD_RECORD_SUFFIX)):
            node, _, rest = entry.partition(".")
            if rest:
                found.setdefault(node, set()).add(rest.rsplit(".", 2)[0])
    return found


def unplugged(plugged, node, planned_ifnames):
    """Interfaces of NODE with a plug pid file (or an old plug record) in the run directory, not planned
    (PLUGGED: plugged_interfaces of the run directory's entries)."""
    return sorted(plugged.get(node, set()) - set(planned_ifnames))


def stop_plug(pidfile, timeout):
    """Stop the plug of PIDFILE and remove its pid file, old record and (an element's) peer socket."""
    kill_pid(read_pid(pidfile), pidfile, timeout)
    remove_path(pidfile)
    for suffix in (".json", ".data"):
        remove_path(pidfile[: -len(".pid")] + suffix)


def start_plug(ns, plan, has_tap, timeout, label, cpus):
    """Start the plug PLAN describes inside namespace NS; wait until it runs and HAS_TAP(); real-time priority,
    on CPUS (the data path's).

    vde_plug2tap writes its pid file before it makes the tap: ready means both. Raises RuntimeError.
    """
    argv, pidfile = plan.argv, plan.pidfile
    kill_pid(read_pid(pidfile), pidfile, timeout)
    remove_path(pidfile)
    try:
        with in_netns(netns_path(ns)):
            rc, out = spawn_daemon(argv, timeout)
    except OSError as exc:
        rc, out = 127, f"cannot enter namespace {ns}: {exc}"
    ok = rc == 0 and wait_for(lambda: proc_alive(read_pid(pidfile), pidfile) and has_tap(), timeout, step=0.002)
    if not ok:
        raise RuntimeError(f"{os.path.basename(argv[0])} for {label} did not start (rc={rc}): {out}")
    make_realtime(read_pid(pidfile), cpus=cpus)  # best effort, as the switches (daemons.RT_PRIORITY)
    if plan.record:
        write_json(plan.record, {"argv": argv, "pid": read_pid(pidfile)})


def prioritize_plug(plug, check, cpus):
    """Give a healthy PLUG that runs without real-time priority, or off CPUS (the data path's), both; True
    when that is a change."""
    return plug["realtime"] is False and (check or make_realtime(plug["pid"], cpus=cpus))


class Switches:
    """(pid, start time in clock ticks) of the running switches of a run directory, asked once each.

    Worker threads share this cache: each entry is one tuple, stored at once.
    """

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.cache = {}

    def __call__(self, switch):
        if switch is None:  # a joined element plugs into none: nothing to have started before it
            return (0, 0)
        if switch not in self.cache:
            pidfile = os.path.join(self.run_dir, f"{switch}.pid")
            pid = read_pid(pidfile)
            alive = bool(pid and proc_alive(pid, pidfile))
            self.cache[switch] = (pid, proc_start_ticks(pid)) if alive else (None, None)
        return self.cache[switch]
