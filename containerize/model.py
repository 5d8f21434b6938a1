"""The one topology model every reader produces and every planner reads.

Units are fixed here so no one has to guess: bandwidth in bit/s (float), delay in
seconds (float, one way), loss as a probability 0..1. ``line`` is the 1-based
source line an object came from (ns2) or ``None`` (TopDL reports the element).
Planners fill the ``planned`` fields; readers leave them empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("embedded_pnode", "qemu", "openvz", "process")
RTPROTOS = ("Static", "Session", "Manual")
NO_ROUTING = "none"  # Topology.rtproto when routing is explicitly none (TopDL containers:rtproto none, --routing none)
ROUTING = {"static": "Static", "manual": "Manual", "none": NO_ROUTING}  # --routing -> Topology.rtproto


@dataclass
class Shaping:
    """Behaviour of one direction of travel (bandwidth, one-way delay, loss)."""

    bandwidth: float | None = None  # bit/s; None = unlimited
    delay: float = 0.0  # seconds
    loss: float = 0.0  # probability 0..1

    def is_null(self) -> bool:
        return self.bandwidth is None and not self.delay and not self.loss


@dataclass
class Interface:
    node: str
    substrate: str
    name: str = ""  # TopDL interface name (inf000); readers fill it
    ip: str | None = None  # fixed address from the file, if any
    netmask: str | None = None  # fixed netmask from the file, if any
    # node-to-LAN overrides (tb-set-node-lan-*); None = take the substrate's value
    bandwidth: float | None = None
    delay: float | None = None
    loss: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    # planned
    mac: str = ""
    prefix: int = 0
    ifname: str = ""  # name inside the node (eth0, ...)


@dataclass
class Substrate:
    name: str
    kind: str = "lan"  # "link" (duplex-link, two ends) or "lan" (make-lan, any number)
    bandwidth: float | None = None  # bit/s
    delay: float = 0.0  # one-way, node to node, seconds
    loss: float = 0.0  # node to node, 0..1
    # tb-set-link-simplex-params: {from_node: Shaping} for the direction leaving from_node
    simplex: dict[str, Shaping] = field(default_factory=dict)
    fixed_netmask: str | None = None  # tb-set-netmask
    attributes: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    # planned
    network: str = ""  # "10.0.1.0/24"


@dataclass
class Route:
    dest: str  # "10.1.0.0/16" or a host address "/32"
    gateway: str


@dataclass
class Node:
    name: str
    kind: str | None = None  # one of KINDS, or None until the kinds planner runs
    interfaces: list[Interface] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # containers:* and others
    os: str | None = None  # tb-set-node-os / osid
    hardware: str | None = None  # tb-set-hardware / type
    startcmd: str | None = None
    manual_routes: list[Route] = field(default_factory=list)  # $node add-route
    line: int | None = None
    # planned
    partition: int | None = None
    pnode: str = ""
    routes: list[Route] = field(default_factory=list)

    @property
    def ghost(self) -> bool:
        return self.attributes.get("containers:ghost", "").lower() in ("1", "true", "yes")


@dataclass
class Topology:
    source: str  # path of the input file, for messages
    fmt: str  # "ns2" or "topdl"
    nodes: dict[str, Node] = field(default_factory=dict)  # insertion order = file order
    substrates: dict[str, Substrate] = field(default_factory=dict)
    rtproto: str | None = None  # one of RTPROTOS, NO_ROUTING, or None when the file says nothing
    vtypes: dict[str, list[str]] = field(default_factory=dict)  # tb-make-soft-vtype
    warnings: list[str] = field(default_factory=list)

    def interfaces(self):
        for node in self.nodes.values():
            yield from node.interfaces

    def substrate_members(self) -> dict[str, list[Interface]]:
        """Substrate name -> its interfaces in node order (one pass; use instead of a per-substrate scan)."""
        members: dict[str, list[Interface]] = {name: [] for name in self.substrates}
        for iface in self.interfaces():
            members.setdefault(iface.substrate, []).append(iface)
        return members
