"""The machine of an embedded_pnode node: the physical node itself, or a simulated one (a network
namespace and a root directory), as the embedded_nodes module reads and changes it.

Primitives only (read the network, run ip/tc, read and write sysctls and files); the module
decides what to change. Standard library only (see daemons.py).
"""

from __future__ import annotations

import json
import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    norm_dest,
    parse_json_stream,
    read_text,
)
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import run as run_argv
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args


def run(argv, stdin=None, timeout=60):
    """run_argv() with the machine's default timeout (network commands on the machine)."""
    return run_argv(argv, stdin, timeout)


def write_in_place(path, text, mode=0o644):
    """Write keeping the inode (/etc/hosts is often a bind mount)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def tc_spec(tc):
    """{kind, args} of the root qdisc planned for TC (None: no shaping): tbf for bandwidth only,
    netem (with its rate for bandwidth) when delay or loss is planned."""
    tc = tc or {}
    bandwidth = int(tc.get("bandwidth") or 0)
    delay = float(tc.get("delay_ms") or 0)
    loss = float(tc.get("loss") or 0)
    if delay > 0 or loss > 0:
        args = ["netem"]
        if delay > 0:
            args += ["delay", f"{delay:g}ms"]
        if loss > 0:
            args += ["loss", f"{loss * 100:.6g}%"]
        if bandwidth:
            args += ["rate", f"{bandwidth}bit"]
        return {"kind": "netem", "args": args}
    if bandwidth:
        return {"kind": "tbf", "args": tbf_tc_args(bandwidth)}
    return None


def device_for(iface, links, mapped=None):
    """The device of LINKS for a planned interface IFACE: MAPPED (interface_map, or recorded), the
    device of the same name, or the one with the planned MAC; None when there is none."""
    if mapped:
        return mapped
    mac = str(iface.get("mac") or "").lower()
    by_mac = [name for name, link in links.items() if mac and link["mac"] == mac]
    return iface["ifname"] if iface["ifname"] in links else (by_mac[0] if by_mac else None)


def planned_device(node, iface, links, dev, control):
    """DEV, checked: a device of LINKS, and not one of CONTROL (the machine's own default route)."""
    if not dev or dev not in links:
        raise RuntimeError(
            f"{node}: no device for planned interface {iface['ifname']} (MAC {iface.get('mac')}); the machine has "
            f"{', '.join(sorted(links))}; map it with interface_map"
        )
    if dev in control:
        raise RuntimeError(f"{node}: {dev} holds the machine's default route (its control network); "
                           "refusing to make it an experiment interface")
    return dev


class Machine:
    """The (possibly simulated) physical machine: its network namespace ("" for the network of the
    machine this runs on) and its file system root."""

    def __init__(self, netns="", root="/"):
        self.netns = netns
        self.root = os.path.abspath(root)

    def ip(self, *args, stdin=None):
        argv = ["ip"] + (["-n", self.netns] if self.netns else []) + list(args)
        return run(argv, stdin=stdin)

    def tc(self, *args):
        argv = ["tc"] + (["-n", self.netns] if self.netns else []) + list(args)
        return run(argv)

    def ip_batch(self, commands, force=False):
        """Run COMMANDS (lines for `ip -batch`); (rc, out, err)."""
        return self.ip(*(["-force"] if force else []), "-batch", "-", stdin="\n".join(commands) + "\n")

    def observe(self):
        """({device: {mac, up, addresses}}, [{dest, gateway, dev}]) of the machine's network (not
        kernel or non-unicast routes)."""
        rc, out, err = self.ip("-json", "-batch", "-", stdin="addr show\nroute show table main\n")
        if rc != 0:
            raise RuntimeError(f"cannot read the machine's network: {err.strip()}")
        values = parse_json_stream(out)
        links = {}
        for link in values[0] if values else []:
            links[link["ifname"]] = {
                "mac": (link.get("address") or "").lower(),
                "up": "UP" in link.get("flags", []),
                "addresses": sorted(
                    f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a.get("family") == "inet"
                ),
            }
        routes = []
        for route in values[1] if len(values) > 1 else []:
            if route.get("protocol") == "kernel" or route.get("type", "unicast") != "unicast":
                continue
            routes.append({"dest": norm_dest(route.get("dst")), "gateway": route.get("gateway"),
                           "dev": route.get("dev")})
        return links, routes

    def sysctl(self, key, value=None):
        """Read KEY (VALUE None) or set it to VALUE, in the machine's network namespace."""
        path = "/proc/sys/" + key.replace(".", "/")
        if not self.netns:
            if value is None:
                return (read_text(path) or "").strip()
            with open(path, "w", encoding="ascii") as handle:
                handle.write(str(value))
            return str(value)
        if value is None:
            rc, out, _err = run(["ip", "netns", "exec", self.netns, "cat", path])
            return out.strip() if rc == 0 else None
        rc, _out, err = run(["ip", "netns", "exec", self.netns, "sysctl", "-q", "-w", f"{key}={value}"])
        if rc != 0:
            raise RuntimeError(f"sysctl {key}={value}: {err.strip()}")
        return str(value)

    def qdisc(self, dev):
        """The kind of DEV's root qdisc (None when it cannot be read)."""
        rc, out, _err = self.tc("-json", "qdisc", "show", "dev", dev)
        if rc != 0:
            return None
        for q in json.loads(out or "[]"):
            if q.get("root"):
                return q.get("kind")
        return None

    def path(self, rel):
        """A path inside the machine's root."""
        return os.path.join(self.root, rel.lstrip("/"))

    def wrap(self, argv):
        """ARGV run inside the machine: its network namespace and its root."""
        if self.root != "/":
            argv = ["chroot", self.root] + argv
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        return argv

    def write(self, rel, text, mode=0o644):
        """Write REL inside the machine in place, making its directory."""
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        write_in_place(path, text, mode)
