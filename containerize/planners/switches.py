"""VDE switches per pnode, the port of every interface, where wirefilters sit, and which links need none.

A link between two process nodes of one pnode with no delay and no loss is a veth pair between
their namespaces (veth_pairs); a LAN of process nodes of one pnode with no delay and no loss is a
kernel bridge in a namespace of its own, each member's interface a veth into it (bridged_lans): no
switch, no plug, no process at all (docs/datapath.md).

Each pnode runs one switch per substrate that has a switched interface on it. A shaped
interface gets a small private switch and a wirefilter joining it to the substrate switch,
so the node (tap or qemu) always plugs into a switch, and shaping never sits on the
substrate switch itself (a LAN is shaped per member, as DETER did). A process or openvz node's
wirefilter is marked node_plug: where the pnode runs cz-wire, the element opens the node's tap itself
and the private switch and plug are not run (decided on the pnode, which knows its element). A shaped
point-to-point link between two process or openvz nodes of one pnode is marked joined (joined_links):
its two elements, where both are plugs, talk straight to each other and its switch is not run either.

A substrate whose switches sit on more than one pnode is carried between them over the
experiment network ("pnet"): each such switch gets an uplink, a tap plugged into the switch and
bridged with a VXLAN device whose VNI comes from the experiment tag and the substrate index.
Shaping stays at the node side (the wirefilters), so an uplink adds none. With the testbed target an
embedded_pnode node's pnode carries the substrates of its interfaces too: the interface is a VXLAN
device on its host (its plan's `vxlan`: VNI, device name, peers), flooding to the switches' uplinks.
With the local target every pnode's "physical" side is a network namespace joined to the others by a veth wire into a
shared namespace standing for the experiment LAN; with the testbed target it is the pnode itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import ContainerizeError
from ..model import Topology
from .addresses import experiment_tag
from .kinds import switched_kinds
from .shaping import InterfaceShaping, as_dict

PRIVATE_PORTS = 4
PNET_SUBNET = "198.18.0.0/15"  # RFC 2544 benchmarking range: never a node's or a control network's
PNET_MIN_PREFIX = 24  # the pnet is at least a /24 (DETER's habit), larger when there are more pnodes
PNET_DEVICE = "pnet"  # local target: name of this pnode's end of the veth wire, in its namespace
PNET_BRIDGE = "pnet"  # local target: the bridge standing for the experiment LAN, in the wire namespace
VXLAN_HEADROOM = 50  # outer Ethernet + IP + UDP + VXLAN headers
NODE_MTU = 1500
VNI_SPACE = (1 << 24) - 1  # VNIs 1 .. 2**24-1


@dataclass
class PnodeNetwork:
    switches: list[dict] = field(default_factory=list)
    wirefilters: list[dict] = field(default_factory=list)
    # (node, ifname) -> {"switch": id, "port": n, "tc": dict|None}
    attachments: dict[tuple[str, str], dict] = field(default_factory=dict)
    # this pnode on the experiment network joining pnodes (None with a single pnode)
    pnet: dict | None = None
    # one per substrate switch of this pnode whose substrate crosses pnodes
    uplinks: list[dict] = field(default_factory=list)


def plan_switches(topo: Topology, assignment: dict[str, list[str]], shaping: list[InterfaceShaping],
                  options) -> tuple[dict[str, PnodeNetwork], list[str]]:
    """Returns the per-pnode network plan and the substrates that span more than one pnode."""
    switched = switched_kinds(options)
    shaping_of = {(s.node, s.ifname): s for s in shaping}
    sub_index = {name: i for i, name in enumerate(topo.substrates)}
    veths = veth_pairs(topo, assignment, shaping_of, switched)
    bridged = bridged_lans(topo, assignment, shaping_of, switched)
    joined = joined_links(topo, assignment, shaping_of, switched)
    pnodes_of_sub: dict[str, set[str]] = {}
    plans: dict[str, PnodeNetwork] = {}
    for pnode, names in assignment.items():
        net = PnodeNetwork()
        sub_switch: dict[str, dict] = {}
        for node_index, name in enumerate(names):
            node = topo.nodes[name]
            for iface in node.interfaces:
                pnodes_of_sub.setdefault(iface.substrate, set()).add(pnode)
                plan = shaping_of[(name, iface.ifname)]
                peer = veths.get((name, iface.ifname))
                if peer is not None:
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": None, "port": None, "tc": tc,
                                                             "veth": {"node": peer.node, "ifname": peer.ifname}}
                    continue
                lan_port = bridged.get((name, iface.ifname))
                if lan_port is not None:  # the port of its LAN's bridge; "bridge" names the LAN
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": None, "port": lan_port, "tc": tc,
                                                             "bridge": iface.substrate}
                    continue
                if node.kind not in switched:
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": None, "port": None, "tc": tc}
                    continue
                switch = sub_switch.get(iface.substrate)
                if switch is None:
                    switch = {"id": f"s{sub_index[iface.substrate]}", "substrate": iface.substrate,
                              "ports": 0, "role": "substrate"}
                    sub_switch[iface.substrate] = switch
                    net.switches.append(switch)
                switch["ports"] += 1
                port = switch["ports"]
                if plan.method == "wirefilter":
                    private = f"p{node_index}-{iface.ifname[3:]}"
                    wid = f"w{node_index}-{iface.ifname[3:]}"
                    net.switches.append({"id": private, "substrate": iface.substrate,
                                         "ports": PRIVATE_PORTS, "role": "private"})
                    net.wirefilters.append({
                        "id": wid, "node": name, "interface": iface.ifname,
                        "left": private, "right": switch["id"], "right_port": port,
                        "left_to_right": as_dict(plan.outbound), "right_to_left": as_dict(plan.inbound),
                        # a process or openvz node's element may be its plug (cz-wire opens the tap in the
                        # node's namespace): the pnode decides (wirefilter.runs_as_plug)
                        "node_plug": node.kind in ("process", "openvz"), "node_kind": node.kind,
                    })
                    net.attachments[(name, iface.ifname)] = {"switch": private, "port": 1, "tc": None, "wire": wid}
                else:
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": switch["id"], "port": port, "tc": tc}
        join_elements(net, [sub_switch[name] for name in joined if name in sub_switch])
        for switch in net.switches:
            if switch["role"] == "substrate":
                # room for the planned ports, cross-pnode plugs and a few hand-plugged monitors
                switch["ports"] = max(8, switch["ports"] + 4)
        plans[pnode] = net
    crossing = [name for name in topo.substrates if len(pnodes_of_sub.get(name, ())) > 1]
    crosses = set(crossing)
    for net in plans.values():
        for switch in net.switches:
            switch["crosses_pnodes"] = switch["substrate"] in crosses
    plan_uplinks(topo, plans, crossing, options)
    return plans, crossing


def one_pnode_links(topo: Topology, assignment: dict[str, list[str]], switched: set, kinds=("process",)):
    """(name, members) of each point-to-point link between two nodes of KINDS on one pnode: the links that
    may take a veth pair (veth_pairs: process nodes) or join their two elements (joined_links)."""
    pnode_of = {name: pnode for pnode, names in assignment.items() for name in names}
    for name, members in topo.substrate_members().items():
        if topo.substrates[name].kind != "link" or len(members) != 2:
            continue
        nodes = [topo.nodes[i.node] for i in members]
        if all(n.kind in kinds and n.kind in switched for n in nodes) and \
                pnode_of.get(nodes[0].name) == pnode_of.get(nodes[1].name):
            yield name, members


def veth_pairs(topo: Topology, assignment: dict[str, list[str]], shaping_of: dict, switched: set) -> dict:
    """{(node, ifname): the peer's Interface} for the links carried by a veth pair: two process nodes of one
    pnode joined by a link with no delay and no loss (bandwidth, if any, is a tbf on each sender's egress).
    Nothing in user space: the kernel hands a frame from one namespace to the other."""
    pairs = {}
    for _name, members in one_pnode_links(topo, assignment, switched):
        if any(shaping_of[(i.node, i.ifname)].method == "wirefilter" for i in members):
            continue
        pairs[(members[0].node, members[0].ifname)] = members[1]
        pairs[(members[1].node, members[1].ifname)] = members[0]
    return pairs


def joined_links(topo: Topology, assignment: dict[str, list[str]], shaping_of: dict, switched: set) -> set:
    """The links whose two hops' elements may be joined without a switch: two process or openvz nodes of one
    pnode joined by a link with a wirefilter on both hops (delay or loss). Where the pnode runs cz-wire, each
    element is its node's plug and sends to the other's socket (peer://): one element per node and
    direction, and the delay counts from the kernel's time of sending, so a busy CPU's late wake-ups add
    less (docs/datapath.md). Where one element is not a plug (an openvz node on an OpenVZ kernel), both
    keep the switch: the pnode decides."""
    return {name for name, members in one_pnode_links(topo, assignment, switched, ("process", "openvz"))
            if all(shaping_of[(i.node, i.ifname)].method == "wirefilter" for i in members)}


def join_elements(net: PnodeNetwork, switches: list[dict]) -> None:
    """Mark each of SWITCHES (a joined link's) `joined` and give its two wirefilters each other's id (`peer`)."""
    for switch in switches:
        pair = [wf for wf in net.wirefilters if wf["right"] == switch["id"]]
        if len(pair) != 2:  # not a joined link after all (cannot happen): it keeps its switch
            continue
        switch["joined"] = True
        pair[0]["peer"], pair[1]["peer"] = pair[1]["id"], pair[0]["id"]


def bridged_lans(topo: Topology, assignment: dict[str, list[str]], shaping_of: dict, switched: set) -> dict:
    """{(node, ifname): its port number, from 1} for the LANs carried by a kernel bridge: every member a process
    node of one pnode, and no delay or loss on any member's hop (bandwidth, if any, is a tbf on each member's
    egress, as on a VDE LAN). The bridge forwards in the kernel; qemu and VXLAN uplinks need a VDE switch."""
    pnode_of = {name: pnode for pnode, names in assignment.items() for name in names}
    ports = {}
    for name, members in topo.substrate_members().items():
        if topo.substrates[name].kind != "lan" or not members:
            continue
        nodes = [topo.nodes[i.node] for i in members]
        if any(n.kind != "process" or n.kind not in switched for n in nodes) or \
                len({pnode_of.get(n.name) for n in nodes}) != 1:
            continue
        if any(shaping_of[(i.node, i.ifname)].method == "wirefilter" for i in members):
            continue
        for port, member in enumerate(members, 1):
            ports[(member.node, member.ifname)] = port
    return ports


def pnet_addresses(pnodes: list[str], subnet: str = PNET_SUBNET) -> tuple[dict[str, str], int]:
    """({pnode: address}, prefix) on the experiment network: pnode i gets the (i+1)th address."""
    try:
        net = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise ContainerizeError(f"site key pnet_subnet = {subnet!r}: {exc}") from None
    prefix = max(net.prefixlen, min(PNET_MIN_PREFIX, 32 - (len(pnodes) + 1).bit_length()))
    if len(pnodes) > (1 << (32 - prefix)) - 2:
        raise ContainerizeError(f"site key pnet_subnet = {subnet!r} is too small for {len(pnodes)} pnodes")
    return {p: str(net.network_address + i + 1) for i, p in enumerate(pnodes)}, prefix


def uplink_vni(tag: str, substrate_index: int) -> int:
    """VXLAN network identifier of a substrate: deterministic, distinct within the experiment."""
    return (int(tag, 16) + substrate_index) % VNI_SPACE + 1


def uplink_names(tag: str, substrate_index: int) -> dict[str, str]:
    """Interface names of an uplink: kind letter + tag + hex index (at most 15 characters)."""
    suffix = f"{tag}{substrate_index:x}"
    return {"tap": f"t{suffix}", "bridge": f"b{suffix}", "vxlan": f"x{suffix}"}


def plan_uplinks(topo: Topology, plans: dict[str, PnodeNetwork], crossing: list[str], options) -> None:
    """Give every pnode its place on the experiment network and an uplink per crossing substrate switch."""
    if len(plans) < 2:
        return
    tag = experiment_tag(options.project, options.experiment)
    local = options.site.get("target", "local") == "local"
    pnodes = list(plans)
    addresses, prefix = pnet_addresses(pnodes, options.site.get("pnet_subnet") or PNET_SUBNET)
    for pnode in pnodes:
        plans[pnode].pnet = {
            "address": addresses[pnode], "prefix": prefix,
            # local: the veth end in the pnode's namespace; testbed: the experiment interface
            # (None: whichever interface holds the address)
            "device": PNET_DEVICE if local else (options.site.get("pnet_device") or None),
            "mtu": NODE_MTU + VXLAN_HEADROOM if local else None,
            "namespace": f"cz-{tag}-{pnode}" if local else None,
            "wire_namespace": f"cz-{tag}-pnet" if local else None,
            "wire_bridge": PNET_BRIDGE if local else None,
            "wire_port": pnode if local else None,
        }
    sub_index = {name: i for i, name in enumerate(topo.substrates)}
    carriers: dict[str, list[str]] = {}  # substrate -> pnodes with a switch for it
    crosses = set(crossing)
    embedded = []  # (pnode, attachment, substrate): an embedded node's interface joins over VXLAN (testbed)
    for pnode, net in plans.items():
        for switch in net.switches:
            if switch["role"] == "substrate" and switch["substrate"] in crosses:
                carriers.setdefault(switch["substrate"], []).append(pnode)
        for (name, ifname), attach in net.attachments.items():
            if local or topo.nodes[name].kind != "embedded_pnode":
                continue
            substrate = next(i.substrate for i in topo.nodes[name].interfaces if i.ifname == ifname)
            if substrate in crosses:
                embedded.append((pnode, attach, substrate))
                carriers.setdefault(substrate, []).append(pnode)
    for pnode, net in plans.items():
        for switch in net.switches:
            if switch["role"] != "substrate":
                continue
            substrate = switch["substrate"]
            peers = [addresses[p] for p in carriers.get(substrate, []) if p != pnode]
            if not peers:
                continue
            index = sub_index[substrate]
            # the switch's highest port: never a node's or a wirefilter's (endpoints sharing a VDE
            # port do not hear each other, and the uplink may be plugged before the nodes)
            net.uplinks.append({"substrate": substrate, "switch": switch["id"], "port": switch["ports"] - 1,
                                "vni": uplink_vni(tag, index), **uplink_names(tag, index), "peers": peers})
    for pnode, attach, substrate in embedded:
        # the machine's interface is a VXLAN device on its host ("e": not one of vde_uplinks' [tbx] links)
        index = sub_index[substrate]
        attach["vxlan"] = {"vni": uplink_vni(tag, index), "device": f"e{tag}{index:x}", "mtu": NODE_MTU,
                           "peers": [addresses[p] for p in carriers[substrate] if p != pnode]}
