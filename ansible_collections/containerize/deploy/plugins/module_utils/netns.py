"""Network namespaces of nodes and uplinks: made and removed in batches, their /etc/netns files,
their sysctls, and the processes that run in them.

Standard library only (see daemons.py).
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    NETNS_DIR,
    kill_many,
    netns_inode,
    netns_path,
    proc_alive,
    proc_netns_inode,
    remove_path,
    run,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import NAME_RE
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import in_netns

# `ip netns exec NS` bind-mounts the files of /etc/netns/NS/ over /etc/ (hosts, hostname)
ETC_NETNS = "/etc/netns"


def write_in_place(path, text, mode=0o644):
    """Write TEXT into PATH keeping its inode: files bind-mounted into nodes see the new content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def etc_dir(ns):
    """The directory of NS's own /etc files."""
    return os.path.join(ETC_NETNS, ns)


def write_etc_file(ns, name, text):
    """Write /etc/netns/NS/NAME in place (a running node sees the new text through its bind mount)."""
    os.makedirs(etc_dir(ns), mode=0o755, exist_ok=True)
    write_in_place(os.path.join(etc_dir(ns), name), text)


def sysctl_in_netns(ns, key, value=None):
    """A net sysctl inside namespace NS, read from this thread without spawning; set to VALUE if given.

    Returns what it was before (None when it cannot be read); a failed write raises.
    """
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with in_netns(netns_path(ns)):
            with open(path, "r" if value is None else "r+", encoding="ascii") as handle:
                old = handle.read().strip()
                if value is not None and old != str(value):
                    handle.seek(0)
                    handle.write(str(value))
            return old
    except OSError as exc:
        if value is None:
            return None
        raise RuntimeError(f"sysctl {key}={value} in {ns}: {exc}") from None


def sysctls_in_netns(ns, values):
    """Set VALUES ({/proc/sys path: text}) inside namespace NS in one visit; the paths that held another value.

    A path that does not exist there (a kernel without IPv6) is left out; a failed write raises RuntimeError.
    """
    changed = []
    try:
        with in_netns(netns_path(ns)):
            for path, value in values.items():
                try:
                    handle = open(path, "r+", encoding="ascii")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    continue
                with handle:
                    if handle.read().strip() != str(value):
                        handle.seek(0)
                        handle.write(str(value))
                        changed.append(path)
    except OSError as exc:
        raise RuntimeError(f"sysctl in {ns}: {exc}") from None
    return changed


def processes_by_netns():
    """{netns inode: [pid, ...]} for every process but this one."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        inode = proc_netns_inode(int(entry))
        if inode is not None:
            found.setdefault(inode, []).append(int(entry))
    return found


def processes_in(namespaces):
    """Pids of the live processes inside the mounted NAMESPACES (names)."""
    inodes = {netns_inode(ns) for ns in namespaces} - {None, 0}
    if not inodes:
        return []
    pids = [pid for inode, pids in processes_by_netns().items() if inode in inodes for pid in pids]
    return [pid for pid in pids if proc_alive(pid)]


def add_namespaces(namespaces):
    """Make NAMESPACES with one `ip -batch` (one process instead of one per namespace); those now there."""
    if namespaces:
        run(["ip", "-batch", "-"], stdin="".join(f"netns add {ns}\n" for ns in namespaces))
    return {ns for ns in namespaces if netns_inode(ns)}


def add_namespace(ns):
    """Make NS, first removing a file of that name that is not a namespace (half-made); raises on failure."""
    if netns_inode(ns) == 0:
        run(["ip", "netns", "delete", ns])
        remove_path(netns_path(ns))
    rc, _out, err = run(["ip", "netns", "add", ns])
    if rc != 0:
        raise RuntimeError(f"ip netns add {ns}: {err.strip()}")


def delete_namespaces(namespaces):
    """Remove the NAMESPACES that exist (one `ip -batch`, then by hand what it left); those that existed."""
    existing = [ns for ns in namespaces if os.path.lexists(netns_path(ns))]
    if existing:
        run(["ip", "-force", "-batch", "-"], stdin="".join(f"netns delete {ns}\n" for ns in existing))
        for ns in existing:
            if os.path.lexists(netns_path(ns)):
                run(["umount", netns_path(ns)])
                remove_path(netns_path(ns))
    return existing


def delete_netns(ns, timeout):
    """Kill what runs in NS and remove it. True when it existed."""
    if not os.path.lexists(netns_path(ns)):
        return False
    kill_many([(pid, None) for pid in processes_in([ns])], timeout)
    rc, _out, _err = run(["ip", "netns", "delete", ns])
    if rc != 0 and os.path.lexists(netns_path(ns)):
        run(["umount", netns_path(ns)])
        remove_path(netns_path(ns))
    return True


def scan_namespaces(prefix, exp_name):
    """{node: namespace} of the mounted namespaces named PREFIX NODE.EXP_NAME."""
    suffix = "." + exp_name
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return {}
    found = {}
    for ns in names:
        if ns.startswith(prefix) and ns.endswith(suffix):
            node = ns[len(prefix) : -len(suffix)]
            if NAME_RE.match(node):
                found[node] = ns
    return found
