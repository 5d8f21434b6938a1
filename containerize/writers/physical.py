"""The host experiment a DETER testbed would swap in: ``phys_topo.ns`` and ``phys_topo.xml``.

One physical node per pnode of the assignment (``pnode-NNNN``, written as the ns2 array element
``pnode(NNNN)``, which DETER names ``pnode-NNNN``), all on one LAN when there is more than one.
A pnode hosting an embedded_pnode node takes that node's hardware type and OS; others are ``pc``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..model import Interface, Node, Substrate, Topology
from .topdl import write_topdl

DEFAULT_HARDWARE = "pc"
LAN_NAME = "pnet"
LAN_BANDWIDTH = 1e9  # bit/s: the experiment network between pnodes
LAN_BANDWIDTH_NS = "1000Mb"


def phys_topology(topology: Topology, assignment: dict[str, list[str]]) -> Topology:
    """The physical topology as a model: one node per pnode (assignment order), one LAN if needed."""
    phys = Topology(source=topology.source, fmt=topology.fmt)
    pnodes = list(assignment)
    for pnode in pnodes:
        node = Node(name=pnode, hardware=DEFAULT_HARDWARE)
        for name in assignment[pnode]:
            guest = topology.nodes.get(name)
            if guest is not None and guest.kind == "embedded_pnode":
                node.hardware = guest.hardware or node.hardware
                node.os = guest.os or node.os
        phys.nodes[pnode] = node
    if len(pnodes) > 1:
        phys.substrates[LAN_NAME] = Substrate(name=LAN_NAME, kind="lan", bandwidth=LAN_BANDWIDTH)
        for node in phys.nodes.values():
            node.interfaces.append(Interface(node=node.name, substrate=LAN_NAME, name="inf000"))
    return phys


def _ref(name: str) -> str:
    """Tcl reference whose DETER node name is ``name``: arrays turn ``a(b)`` into ``a-b``."""
    m = re.fullmatch(r"(.+)-([^-]+)", name)
    return f"${m.group(1)}({m.group(2)})" if m else f"${name}"


def phys_ns(phys: Topology, pid: str, eid: str) -> str:
    lines = [
        f"# Physical topology of containerized experiment {eid}.{pid}: one node per pnode.",
        "source tb_compat.tcl",
        "set ns [new Simulator]",
        "",
    ]
    for node in phys.nodes.values():
        ref = _ref(node.name)
        lines.append(f"set {ref[1:]} [$ns node]")
        lines.append(f"tb-set-hardware {ref} {node.hardware}")
        if node.os:
            lines.append(f"tb-set-node-os {ref} {node.os}")
    if LAN_NAME in phys.substrates:
        refs = " ".join(_ref(name) for name in phys.nodes)
        lines += ["", f'set {LAN_NAME} [$ns make-lan "{refs}" {LAN_BANDWIDTH_NS} 0ms]']
    lines += ["", "$ns rtproto Static", "$ns run", ""]
    return "\n".join(lines)


def write_phys_topo(topology: Topology, assignment: dict[str, list[str]], pid: str, eid: str, out_dir) -> None:
    """Write ``phys_topo.ns`` and ``phys_topo.xml`` into ``out_dir``."""
    out = Path(out_dir)
    phys = phys_topology(topology, assignment)
    (out / "phys_topo.ns").write_text(phys_ns(phys, pid, eid), encoding="utf-8")
    write_topdl(phys, out / "phys_topo.xml")
