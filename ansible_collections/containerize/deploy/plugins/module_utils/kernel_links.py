"""A process node's interfaces that no process carries: one end of a veth pair to a peer node (a link of two
process nodes of one pnode, planners/switches.py veth_pairs) or a port of its LAN's kernel bridge
(lan_bridge.py). Functions of the ProcessNode (process_node.py) whose interface they make. Stdlib only.
"""

from __future__ import annotations

import errno

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import netns_path, wait_for


def ensure_veth(node, iface):
    """A veth pair to the peer's namespace unless this end exists (the peer's thread may have made the
    pair since the observation, or be making it now); True when this end is (or would be) new."""
    ifname, peer = iface["ifname"], iface["veth"]
    if node.has_link(ifname):
        return True
    node.note(f"veth {ifname}")
    if node.ctx.check:
        return True

    def made():
        try:
            node.rtnl().veth_add(ifname, peer["ifname"], netns_path(peer["namespace"]))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOENT):
                raise RuntimeError(f"{node.name} ({node.ns}): {exc}") from None
        # EEXIST: the peer made it (or its old tap is still going away); ENOENT: its namespace is not yet there
        return node.has_link(ifname)

    if not wait_for(made, node.ctx.timeout, step=0.005):
        raise RuntimeError(f"{node.name} {ifname}: no veth to {peer['ifname']} in {peer['namespace']}")
    return True


def ensure_bridge_port(node, iface, present):
    """The interface as a port of its LAN's bridge (node.ctx.lans, made before the nodes) unless it is one
    (PRESENT: the interface is in the node's namespace); True when it is (or would be) new."""
    ifname, lan = iface["ifname"], iface["bridge"]
    if present and node.ctx.lans.port_ok(lan["namespace"], lan["port"]):
        return False
    node.note(f"bridge port {ifname}")
    if node.ctx.check:
        return True
    if node.has_link(ifname):  # its bridge side went astray, or a veth of an earlier plan
        remove_link(node, ifname)
    try:
        node.ctx.lans.add_port(lan["namespace"], lan["port"], ifname, netns_path(node.ns))
    except OSError as exc:
        raise RuntimeError(f"{node.name} {ifname}: port {lan['port']} of {lan['namespace']}: {exc}") from None
    return True


def remove_link(node, ifname):
    """Delete IFNAME from the node's namespace (its peer goes with it); already gone is fine."""
    try:
        node.rtnl().link_del(ifname)
    except OSError as exc:
        if exc.errno != errno.ENODEV:
            raise RuntimeError(f"{node.name} ({node.ns}): {exc}") from None


def kernel_path(iface, link):
    """What a node's diff shows for an interface without a plug: bridge, veth, or none (LINK missing)."""
    if not link:
        return "none"
    return "bridge" if iface.get("bridge") else "veth"
