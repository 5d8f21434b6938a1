"""The pieces of a cross-pnode uplink (vde_uplinks): a network stack to act in (a named namespace or the
pnode's own), the links in it read with one `ip -batch` and changed with another, the all-zero
forwarding entries of VXLAN devices, and the lock that serializes changes to the wire namespace the
pnodes of one machine share. Also the experiment interface holding the pnode's pnet address and a
VXLAN device flooding to its peers, which embedded_nodes uses for an embedded node's interface.

Standard library only (see daemons.py).
"""

from __future__ import annotations

import errno
import os
import socket
import time

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    netns_inode,
    parse_json_stream,
    proc_netns_inode,
    run,
)

ZERO_MAC = "00:00:00:00:00:00"


class WireLock:
    """Serializes changes to one wire namespace shared by the pnodes of this machine.

    The lock is an abstract unix socket name (no file to leave behind; released when the holder
    exits, whatever happens). `ip netns` itself flocks /run/netns, so that cannot be the lock.
    """

    def __init__(self, name, enabled, timeout=60.0):
        self.address = f"\0containerize-wire-{name}"
        self.enabled = enabled
        self.timeout = timeout
        self.sock = None

    def __enter__(self):
        if not self.enabled:
            return self
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.sock.bind(self.address)
                return self
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    self.sock.close()
                    self.sock = None
                    raise RuntimeError(f"cannot lock the wire namespace: {exc}") from exc
                time.sleep(0.02)

    def __exit__(self, *exc):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Side:
    """A network stack: a named namespace, or (ns=None) the one this module runs in."""

    def __init__(self, ns):
        self.ns = ns

    def ip(self, *args):
        return ["ip", *(["-n", self.ns] if self.ns else []), *args]

    def bridge(self, *args):
        return ["bridge", *(["-n", self.ns] if self.ns else []), *args]

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    def exists(self):
        return self.ns is None or bool(netns_inode(self.ns))

    def inode(self):
        if self.ns is None:
            return proc_netns_inode(os.getpid())
        return netns_inode(self.ns)

    def links(self):
        """{name: link} with kind, master, mtu, up, addrgenmode, vxlan data and IPv4 addresses."""
        if not self.exists():
            return {}
        # `addr show` leaves out some link details (addrgenmode): ask for both in one call
        rc, out, err = run(self.ip("-d", "-j", "-batch", "-"), stdin="link show\naddr show\n")
        if rc != 0:
            raise RuntimeError(f"cannot read links{' of ' + self.ns if self.ns else ''}: {err.strip()}")
        values = parse_json_stream(out)
        if len(values) != 2:
            raise RuntimeError(f"unexpected output of ip -batch: {out[:200]!r}")
        addresses = {item["ifname"]: item.get("addr_info") or [] for item in values[1]}
        links = {}
        for item in values[0]:
            info = item.get("linkinfo") or {}
            data = info.get("info_data") or {}
            links[item["ifname"]] = {
                "kind": info.get("info_kind") or "",
                "master": item.get("master"),
                "mtu": item.get("mtu"),
                "up": "UP" in (item.get("flags") or []),
                "addrgenmode": item.get("inet6_addr_gen_mode"),
                "vxlan": {"id": data.get("id"), "local": data.get("local"), "port": data.get("port")}
                if info.get("info_kind") == "vxlan" else None,
                "inet": sorted(f"{a['local']}/{a['prefixlen']}" for a in addresses.get(item["ifname"], [])
                               if a.get("family") == "inet"),
                "inet6": sorted(f"{a['local']}/{a['prefixlen']}" for a in addresses.get(item["ifname"], [])
                                if a.get("family") == "inet6"),
            }
        return links

    def fdb_zero(self):
        """{vxlan name: set of peer addresses} of the all-zero forwarding entries."""
        if not self.exists():
            return {}
        rc, out, err = run(self.bridge("-j", "fdb", "show"))
        if rc != 0:
            raise RuntimeError(f"cannot read forwarding entries: {err.strip()}")
        found = {}
        for entry in parse_json_stream(out)[0] if out.strip() else []:
            if entry.get("mac") == ZERO_MAC and entry.get("dst") and entry.get("ifname"):
                found.setdefault(entry["ifname"], set()).add(entry["dst"])
        return found

    def batch(self, tool, commands):
        if not commands:
            return
        argv = (self.ip if tool == "ip" else self.bridge)("-batch", "-")
        rc, _out, err = run(argv, stdin="\n".join(commands) + "\n")
        if rc != 0:
            raise RuntimeError(f"{tool} -batch failed: {err.strip()} (commands: {commands})")


def link_fix(name, have, master=None, mtu=None, quiet=True):
    """(commands, what) that make link NAME (observed as HAVE, None when just made) up, with MASTER and
    MTU, and, when QUIET, without IPv6 (no link-local address, so nothing of the pnode's own leaks
    into the experiment's substrates or LAN). addrgenmode goes in a command of its own: given with
    `up` in one command, the kernel brings the link up first and makes a link-local address."""
    cmds, what = [], []
    if quiet and (not have or have["addrgenmode"] != "none"):
        cmds.append(f"link set dev {name} addrgenmode none")
        what.append("addrgenmode none")
    if quiet and have:
        cmds += [f"addr del {a} dev {name}" for a in have.get("inet6") or []]
        what += ["no IPv6 address"] if have.get("inet6") else []
    fix = []
    if mtu and (not have or have["mtu"] != mtu):
        fix.append(f"mtu {int(mtu)}")
    if master and (not have or have["master"] != master):
        fix.append(f"master {master}")
    if not have or not have["up"]:
        fix.append("up")
    if fix:
        cmds.append(f"link set dev {name} {' '.join(fix)}")
        what += fix
    return cmds, what


def route_device(side, peers):
    """The interface SIDE reaches the first of PEERS (other pnodes' hosts) through, or None."""
    for peer in peers:
        try:
            address = socket.getaddrinfo(peer, None, socket.AF_INET)[0][4][0]
        except (OSError, IndexError):
            continue
        rc, out, _err = run(side.ip("-o", "route", "get", address))
        words = out.split() if rc == 0 else []
        if "dev" in words[:-1]:
            device = words[words.index("dev") + 1]
            if device != "lo":
                return device
    return None


def experiment_device(side, pnet, device, links, note, check, quiet=None):
    """(device, added, held): the experiment interface of SIDE with PNET's address (added when missing,
    unless CHECK), DEVICE or, when None, the interface holding the address (held) or routing to the other
    hosts (pnet route_to). ADDED is {device, address} when the address was added here. NOTE gets the changes.
    QUIET (default: in a named namespace, a simulated pnode's wire) takes IPv6 off the interface."""
    want = f"{pnet['address']}/{int(pnet['prefix'])}"
    mtu = pnet.get("mtu")
    if not device:
        holders = [name for name, link in links.items() if any(a.split("/")[0] == pnet["address"]
                                                                 for a in link["inet"])]
        if holders:
            return holders[0], None, True
        device = route_device(side, pnet.get("route_to") or [])
        if not device:
            raise RuntimeError(f"no interface holds the experiment-network address {pnet['address']} and none "
                               "routes to the other pnodes; set vde_uplink_device to the experiment interface "
                               "(the module then adds it)")
    link = links.get(device)
    if link is None:
        if check and side.ns:
            note(f"address {device} {want}")
            return device, None, False
        raise RuntimeError(f"experiment interface {device} does not exist{' in ' + side.ns if side.ns else ''}")
    cmds, added = [], None
    if want not in link["inet"]:
        note(f"address {device} {want}")
        cmds.append(f"addr add {want} dev {device}")
        added = {"device": device, "address": want}
    stale = [a for a in link["inet"] if a != want and a.split("/")[0] == pnet["address"]]
    cmds += [f"addr del {a} dev {device}" for a in stale]
    # a real experiment interface (testbed) keeps its IPv6; the simulated one has none
    fix, what = link_fix(device, link, mtu=mtu, quiet=bool(side.ns) if quiet is None else quiet)
    if fix:
        note(f"set {device}: {', '.join(what)}")
    cmds += fix
    if cmds and not check:
        side.batch("ip", cmds)
    return device, added, False


def vxlan_commands(name, have, want, mtu, peers, have_peers):
    """(ip commands, bridge commands, notes) that make link NAME (observed as HAVE, or None) a VXLAN device
    as WANT ({id, local, port}), up with MTU and no IPv6, flooding to PEERS (HAVE_PEERS: its present ones)."""
    ip_cmds, notes = [], []
    if have and (have["kind"] != "vxlan" or have["vxlan"] != want):
        notes.append(f"replace vxlan {name} (planned {want})")
        ip_cmds.append(f"link del dev {name}")
        have, have_peers = None, set()
    if not have:
        notes.append(f"create vxlan {name} (VNI {want['id']})")
        ip_cmds.append(f"link add {name} type vxlan id {int(want['id'])} local {want['local']} "
                       f"dstport {int(want['port'])}")
    fix, what = link_fix(name, have, mtu=mtu)
    if fix and have:
        notes.append(f"set {name}: {', '.join(what)}")
    ip_cmds += fix
    want_peers = {str(p) for p in peers}
    bridge_cmds = [f"fdb append {ZERO_MAC} dev {name} dst {p}" for p in sorted(want_peers - have_peers)]
    bridge_cmds += [f"fdb del {ZERO_MAC} dev {name} dst {p}" for p in sorted(have_peers - want_peers)]
    if want_peers != have_peers:
        notes.append(f"flood {name} to {', '.join(sorted(want_peers))}")
    return ip_cmds, bridge_cmds, notes
