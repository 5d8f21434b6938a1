"""The kernel bridge of a LAN whose members are all process nodes of this pnode (the compiler's
bridged_lans, planners/switches.py): a network namespace of the LAN's own holding one bridge (BRIDGE) and,
per member, one end of a veth pair enslaved to it; the other end is the member's interface. No process
runs for it: the kernel moves every frame, as on a veth link (docs/datapath.md).

LanBridges observes each planned LAN namespace once per module call (one link dump), makes or repairs it
before the nodes' threads run, and then makes each member's port for the member's thread (add_port).
Names are the compiler's: the namespace PREFIX SUBSTRATE.lan.EXP_NAME and the port pK, K the member's port
number. The pnode's run directory records the LAN namespaces it made (RECORD), so a swap-in removes
those no longer planned and never another pnode's (on the local target pnode 0's prefix is empty: a scan
would match every pnode's); swap-out removes the recorded ones and what lan_namespaces() finds. Stdlib only.
"""

from __future__ import annotations

import errno
import os
import threading

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    netns_inode,
    netns_path,
    read_json,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import Rtnl, in_netns
from ansible_collections.containerize.deploy.plugins.module_utils.netns import (
    add_namespace,
    add_namespaces,
    delete_namespaces,
    scan_namespaces,
    sysctls_in_netns,
)

BRIDGE = "lan"
RECORD = "lan-bridges.json"  # in the run directory: the LAN namespaces this pnode made, a JSON list
# the LAN namespace sends nothing of its own: no IPv6 link-local address, router solicitation or MLD
# report on the bridge or its ports (every member would receive them)
IPV6_OFF = {
    "/proc/sys/net/ipv6/conf/all/disable_ipv6": "1",
    "/proc/sys/net/ipv6/conf/default/disable_ipv6": "1",
}


def lan_namespaces(prefix, exp_name):
    """The LAN namespaces of the experiment on this pnode (PREFIX SUBSTRATE.lan.EXP_NAME), sorted."""
    return sorted(scan_namespaces(prefix, "lan." + exp_name).values())


def recorded_lans(record):
    """The LAN namespaces RECORD (a path) lists, sorted; none when it is missing or not a list of names."""
    found = read_json(record)
    return sorted(ns for ns in found if isinstance(ns, str)) if isinstance(found, list) else []


class LanBridges:
    """The planned LANs of one module call (NAMESPACES); CHECK: note, change nothing.

    After ensure(), the nodes' threads ask port_ok() and add_port(); each LAN's netlink socket is shared
    under one lock (a port is one request)."""

    def __init__(self, namespaces, check):
        self.planned = sorted(set(namespaces))
        self.check = check
        self.changes = []  # "NS: what", in check mode too
        self.existed = []  # the LAN namespaces there before ensure(): planned and stale
        self._sockets = {}  # ns -> Rtnl bound inside it
        self._bridge = {}  # ns -> ifindex of its bridge
        self._ports = {}  # ns -> {port: True when enslaved to the bridge and up}
        self._lock = threading.Lock()

    def ensure(self, record):
        """Make or repair every planned LAN (namespace, bridge up), and (RECORD, a path) remove those it
        records that are no longer planned, then record the planned ones."""
        recorded = recorded_lans(record) if record else []
        gone = [ns for ns in recorded if ns not in self.planned and os.path.lexists(netns_path(ns))]
        self.existed = sorted(set(gone) | {ns for ns in self.planned if os.path.lexists(netns_path(ns))})
        if gone:
            self.changes.extend(f"{ns}: removed" for ns in gone)
            if not self.check:
                delete_namespaces(gone)
        if record and not self.check and recorded != self.planned:
            write_json(record, self.planned)  # before they are made: a failure later leaves them recorded
        missing = [ns for ns in self.planned if not os.path.lexists(netns_path(ns))]
        self.changes.extend(f"{ns}: namespace" for ns in missing)
        if self.check:
            for ns in self.planned:
                if ns not in missing and netns_inode(ns):
                    self._observe(ns, make=False)
            return
        add_namespaces(missing)
        for ns in self.planned:
            if not netns_inode(ns):  # a file that is not (or no longer) a namespace
                if ns not in missing:
                    self.changes.append(f"{ns}: namespace")
                add_namespace(ns)
                missing.append(ns)
            if ns in missing:
                sysctls_in_netns(ns, IPV6_OFF)
            self._observe(ns, make=True)

    def _observe(self, ns, make):
        """Bind a socket in NS, read its links, and (MAKE) add or raise its bridge."""
        with in_netns(netns_path(ns)):
            nl = self._sockets[ns] = Rtnl()
        links = nl.links()
        bridge = links.get(BRIDGE)
        if bridge is None or not bridge["up"]:
            self.changes.append(f"{ns}: bridge {BRIDGE}" + ("" if bridge is None else " up"))
            if make:
                if bridge is None:
                    nl.bridge_add(BRIDGE)
                else:
                    nl.link_set(BRIDGE, up=True)
                bridge = nl.links()[BRIDGE]
        index = bridge["index"] if bridge else None
        self._bridge[ns] = index
        self._ports[ns] = {
            name: index is not None and link["master"] == index and link["up"]
            for name, link in links.items()
            if name not in (BRIDGE, "lo")
        }

    def port_ok(self, ns, port):
        """PORT of NS's bridge is there, enslaved and up (as observed, or made by this call)."""
        return self._ports.get(ns, {}).get(port, False)

    def add_port(self, ns, port, ifname, node_netns):
        """A veth pair: PORT on NS's bridge (up) and IFNAME in the namespace NODE_NETNS (a path), made
        anew (a PORT there, astray, goes first, and with it its other end). Raises OSError."""
        with self._lock:
            nl = self._sockets[ns]
            if port in self._ports[ns]:
                try:
                    nl.link_del(port)
                except OSError as exc:
                    if exc.errno != errno.ENODEV:
                        raise
            nl.veth_add(port, ifname, node_netns, master=self._bridge[ns], up=True)
            self._ports[ns][port] = True

    def close(self):
        for nl in self._sockets.values():
            nl.close()
        self._sockets.clear()
