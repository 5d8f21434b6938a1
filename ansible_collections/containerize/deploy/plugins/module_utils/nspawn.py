"""The systemd-nspawn runtime of the openvz nodes (module_utils of openvz_nodes).

A container runs as `systemd-nspawn --boot` in the node's network namespace, started detached with
its pid in run_dir/NODE.openvz.pid and what it was started with in run_dir/NODE.openvz.json
(argv, pid, start command fingerprint, boot count). The functions take a Container
(openvz_container.py) and plan steps `(note, action)` that the container applies.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    netns_inode,
    netns_path,
    proc_alive,
    proc_netns_inode,
    read_json,
    read_pid,
    remove_path,
    short_hash,
    wait_for,
    write_json,
    write_new_or_replace,
)


def children(pid):
    """The child pids of PID (its init, for a systemd-nspawn)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except (OSError, ValueError):
        return []


def kill_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def processes_rooted_at(roots):
    """{root: [pid, ...]}: live processes whose root directory is one of ROOTS (any mount namespace)."""
    keys = {}
    for root in roots:
        try:
            st = os.stat(root)
            keys[(st.st_dev, st.st_ino)] = root
        except OSError:
            pass
    found = {}
    if not keys:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/root")
            except OSError:
                continue
            root = keys.get((st.st_dev, st.st_ino))
            if root and proc_alive(int(entry)):
                found.setdefault(root, []).append(int(entry))
    return found


def kill_rooted(roots, timeout):
    """SIGKILL whatever still runs in ROOTS (left by a killed nspawn); the roots that had any."""
    rooted = processes_rooted_at(roots)
    leftovers = [pid for pid_list in rooted.values() for pid in pid_list]
    if leftovers:
        kill_all(leftovers, signal.SIGKILL)
        wait_for(lambda: not any(proc_alive(p) for p in leftovers), timeout)
    return set(rooted)


def stop_many(containers, timeout):
    """Stop containers at once: TERM to nspawn, then KILL their init and anything left in their roots.

    Returns the names of the containers that were running.
    """
    pids = {}
    for c in containers:
        pid = read_pid(c.pidfile)
        if proc_alive(pid, c.rootfs):
            pids[c.name] = pid
            kill_all([pid], signal.SIGTERM)
    stopped = set(pids)

    def all_dead():
        return not any(proc_alive(pid) for pid in pids.values())

    if pids and not wait_for(all_dead, timeout):
        for pid in pids.values():
            kill_all(children(pid), signal.SIGKILL)
        wait_for(all_dead, 5)
        kill_all(list(pids.values()), signal.SIGKILL)
    rooted = kill_rooted([c.rootfs for c in containers], 5)
    stopped |= {c.name for c in containers if c.rootfs in rooted}
    for c in containers:
        remove_path(c.pidfile)
    return stopped


# --- one container ---------------------------------------------------------------------------------------


def observe(c):
    """{pid, init, state}: the running nspawn of container C (None when not running) and its record."""
    pid = read_pid(c.pidfile)
    o = {"state": read_json(c.statefile) or {}, "pid": pid if pid and proc_alive(pid, c.rootfs) else None,
         "init": None}
    if o["pid"]:
        kids = [k for k in children(o["pid"]) if proc_alive(k)]
        o["init"] = kids[0] if kids else None
    return o


def kill_signal(rootfs, wanted):
    """WANTED, or SIGUSR2 (poweroff) when ROOTFS's /sbin/init is busybox, SIGINT (its ctrlaltdel entry: a
    shutdown) when it is sysvinit (a file, with /etc/inittab: before 3.10 it ignores nspawn's SIGRTMIN+3,
    and the container would be killed only after the stop timeout); "" leaves nspawn's default."""
    if wanted:
        return wanted
    try:
        target = os.readlink(os.path.join(rootfs, "sbin/init"))
    except OSError:
        init = os.path.join(rootfs, "sbin/init")
        return "SIGINT" if os.path.isfile(init) and os.path.isfile(os.path.join(rootfs, "etc/inittab")) else ""
    return "SIGUSR2" if os.path.basename(target) == "busybox" else ""


def machine_name(name, ns):
    """The nspawn machine name: the namespace's name, shortened past nspawn's 64 characters."""
    return ns if len(ns) <= 64 else f"{name[:50]}-{short_hash(ns)}"


def argv(c):
    """The systemd-nspawn command line of container C."""
    p = c.ctx.module.params
    result = [
        "systemd-nspawn", "--register=no", "--keep-unit", "--boot",
        f"--machine={machine_name(c.name, c.ns)}", f"--hostname={c.hostname}",
        f"--network-namespace-path={netns_path(c.ns)}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
    ]  # fmt: skip
    signal_name = kill_signal(c.rootfs, p["kill_signal"])
    if signal_name:
        result.append(f"--kill-signal={signal_name}")
    if p["capabilities"]:
        result.append("--capability=" + ",".join(p["capabilities"]))
    if c.ctx.node_cpus:
        result.append(f"--cpu-affinity={c.ctx.node_cpus}")
    result.append(f"--bind={c.nodedir}:/var/containers")
    for path, mount, readonly in c.shares():
        result.append(f"--bind{'-ro' if readonly else ''}={path}:{mount}")
    return result + list(p["nspawn_args"]) + ["-D", c.rootfs]


def start(c):
    """Start container C detached (whatever a killed runtime left in its root is killed first)."""
    if not shutil.which("systemd-nspawn"):
        raise RuntimeError("systemd-nspawn not found (package systemd-container)")
    if not netns_inode(c.ns):
        raise RuntimeError(f"network namespace {c.ns} is missing (run process_nodes with kinds=[openvz] first)")
    kill_rooted([c.rootfs], c.ctx.stop_timeout)
    command = argv(c)
    c.boot_lines = c.boot_count()
    with open(c.console, "ab") as console:
        console.write(f"--- start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode())
        console.flush()
        c.proc = subprocess.Popen(  # noqa: S603 - argv list
            command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    write_new_or_replace(c.pidfile, f"{c.proc.pid}\n")
    write_json(c.statefile, {"argv": command, "pid": c.proc.pid, "startcmd": short_hash(c.startcmd),
                             "boots": c.boot_lines})


def check_alive(c):
    """Raise when container C's nspawn has exited.

    The child this module started is judged by its exit status: until it has exec'd systemd-nspawn,
    its /proc cmdline is still this module's (a busy machine stretches that moment).
    """
    if c.proc is not None:
        status = c.proc.poll()
        running = status is None
    else:
        status, running = None, proc_alive(read_pid(c.pidfile), c.rootfs)
    if not running:
        raise RuntimeError(f"{c.name}: systemd-nspawn exited (status {status}); console: {c.console_tail()}")


def plan_running(c, o, rebuilt):
    """Steps that leave container C running with what it should boot with; notes what and why."""
    wanted = argv(c) if o["root_exists"] else None
    reasons = []
    if o["pid"]:
        if rebuilt:
            reasons.append("root")
        if wanted is not None and o["state"].get("argv") != wanted:
            reasons.append("arguments")
        if o["state"].get("startcmd") != short_hash(c.startcmd):
            reasons.append("start command")
        init_ns = proc_netns_inode(o["init"]) if o["init"] else None
        if init_ns is not None and init_ns != netns_inode(c.ns):
            reasons.append("network namespace")
        if not reasons:
            return []
        c.restarted = True
        return [(f"restart container ({', '.join(reasons)})", lambda: stop_many([c], c.ctx.stop_timeout)),
                (None, lambda: start(c))]
    if c.bounced:
        c.restarted = True
        return [(f"restart container ({c.bounced})", lambda: start(c))]
    c.started = True
    return [("start container", lambda: start(c))]
