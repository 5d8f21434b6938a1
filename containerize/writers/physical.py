"""The host experiment a DETER testbed would swap in: ``phys_topo.ns`` and ``phys_topo.xml``.

One physical node per pnode of the assignment (``pnode-NNNN``, written as the ns2 array element
``pnode(NNNN)``, which DETER names ``pnode-NNNN``), all on one LAN ("pnet", the experiment
network that carries the substrates crossing pnodes) when there is more than one.

- Hardware: a pnode hosting an embedded_pnode node takes that node's hardware type; the others
  take the pnode types of their partitioning pass: one type as is, several as a soft vtype
  (``tb-make-soft-vtype``) that the testbed resolves to whichever of them is free.
- Host OS per container kind: an embedded_pnode node's own OS; ``openvz_host_os`` for a pnode with
  openvz nodes; ``qemu_host_os`` for qemu and process nodes (site keys).
- Addresses on pnet come from the switches planner (``tb-set-ip-lan``), so the VXLAN uplinks know
  their peers before the testbed swaps the host experiment in.
- Start command: the bootstrap that prepares a pnode for Ansible (``EXEC_ROOT/bootstrap-pnode``,
  ``scripts/bootstrap-pnode.sh`` here); swap-in itself is then ``ansible-playbook`` over SSH.
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
VTYPE_NAME = "pnodetype{index}"
BOOTSTRAP = "sudo {exec_root}/bootstrap-pnode {pid} {eid} {pnode}"


def _host_os(kinds: set[str], site: dict[str, str]) -> str | None:
    if "openvz" in kinds:
        return site.get("openvz_host_os") or None
    if kinds & {"qemu", "process"}:
        return site.get("qemu_host_os") or None
    return None


def phys_topology(topology: Topology, assignment: dict[str, list[str]], pnode_types: dict[str, list[str]] | None = None,
                  site: dict[str, str] | None = None, pnet: dict[str, dict | None] | None = None,
                  pid: str = "", eid: str = "") -> Topology:
    """The physical topology as a model: one node per pnode (assignment order), one LAN if needed.

    Without PNODE_TYPES, SITE and PNET (the compiler always passes them) every pnode is a plain
    ``pc`` with no OS, address or start command, as the first version of this writer did.
    """
    phys = Topology(source=topology.source, fmt=topology.fmt)
    pnodes = list(assignment)
    for pnode in pnodes:
        node = Node(name=pnode, hardware=DEFAULT_HARDWARE)
        types = (pnode_types or {}).get(pnode) or []
        if len(types) == 1:
            node.hardware = types[0]
        elif types:
            vtype = next((n for n, t in phys.vtypes.items() if t == types), None)
            if vtype is None:
                vtype = VTYPE_NAME.format(index=len(phys.vtypes))
                phys.vtypes[vtype] = list(types)
            node.hardware = vtype
        kinds = set()
        for name in assignment[pnode]:
            plan = topology.nodes.get(name)
            if plan is None:
                continue
            kinds.add(plan.kind)
            if plan.kind == "embedded_pnode":
                node.hardware = plan.hardware or node.hardware
                node.os = plan.os or node.os
        if site is not None:
            node.os = node.os or _host_os(kinds, site)
            node.startcmd = BOOTSTRAP.format(exec_root=site.get("exec_root", "/share/containers"), pid=pid, eid=eid,
                                             pnode=pnode)
        phys.nodes[pnode] = node
    if len(pnodes) > 1:
        phys.substrates[LAN_NAME] = Substrate(name=LAN_NAME, kind="lan", bandwidth=LAN_BANDWIDTH)
        for node in phys.nodes.values():
            place = (pnet or {}).get(node.name) or {}
            iface = Interface(node=node.name, substrate=LAN_NAME, name="inf000", ip=place.get("address"))
            if place.get("prefix") is not None:
                iface.netmask = _netmask(int(place["prefix"]))
            node.interfaces.append(iface)
    return phys


def _netmask(prefix: int) -> str:
    value = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _ref(name: str) -> str:
    """Tcl reference whose DETER node name is ``name``: arrays turn ``a(b)`` into ``a-b``."""
    m = re.fullmatch(r"(.+)-([^-]+)", name)
    return f"${m.group(1)}({m.group(2)})" if m else f"${name}"


def _quote(text: str) -> str:
    """A Tcl word in double quotes: nothing in it is substituted."""
    return '"' + re.sub(r'([\\"$\[\]])', r"\\\1", text) + '"'


def _word(text: str) -> str:
    """One Tcl word: as is when plain (pc3000, Ubuntu1404-64-STD), else quoted. Hardware types and OS
    names come from the topology: `pc; exec ...` or a newline must not become a second command."""
    return text if re.fullmatch(r"[A-Za-z0-9_.:/+=@%,-]+", text) else _quote(text)


def _list(words: list[str]) -> str:
    """A Tcl list of WORDS: {a b} when every word is plain, else [list "a" "b"]."""
    if all(_word(w) == w for w in words):
        return "{" + " ".join(words) + "}"
    return "[list " + " ".join(_word(w) for w in words) + "]"


def phys_ns(phys: Topology, pid: str, eid: str) -> str:
    lines = [
        f"# Physical topology of containerized experiment {eid}.{pid}: one node per pnode.",
        "source tb_compat.tcl",
        "set ns [new Simulator]",
        "",
    ]
    for vtype, types in phys.vtypes.items():
        lines.append(f"tb-make-soft-vtype {vtype} {_list(types)}")
    if phys.vtypes:
        lines.append("")
    for node in phys.nodes.values():
        ref = _ref(node.name)
        lines.append(f"set {ref[1:]} [$ns node]")
        lines.append(f"tb-set-hardware {ref} {_word(node.hardware)}")
        if node.os:
            lines.append(f"tb-set-node-os {ref} {_word(node.os)}")
        if node.startcmd:
            lines.append(f"tb-set-node-startcmd {ref} {_quote(node.startcmd)}")
    if LAN_NAME in phys.substrates:
        refs = " ".join(_ref(name) for name in phys.nodes)
        lines += ["", f'set {LAN_NAME} [$ns make-lan "{refs}" {LAN_BANDWIDTH_NS} 0ms]']
        netmasks = set()
        for node in phys.nodes.values():
            for iface in node.interfaces:
                if iface.substrate == LAN_NAME and iface.ip:
                    lines.append(f"tb-set-ip-lan {_ref(node.name)} ${LAN_NAME} {iface.ip}")
                    netmasks.add(iface.netmask)
        if len(netmasks) == 1 and None not in netmasks:
            lines.append(f"tb-set-netmask ${LAN_NAME} {netmasks.pop()}")
    lines += ["", "$ns rtproto Static", "$ns run", ""]
    return "\n".join(lines)


def write_phys_topo(topology: Topology, assignment: dict[str, list[str]], pid: str, eid: str, out_dir, *,
                    pnode_types: dict[str, list[str]] | None = None, site: dict[str, str] | None = None,
                    pnet: dict[str, dict | None] | None = None) -> None:
    """Write ``phys_topo.ns`` and ``phys_topo.xml`` into ``out_dir``."""
    out = Path(out_dir)
    phys = phys_topology(topology, assignment, pnode_types, site, pnet, pid, eid)
    (out / "phys_topo.ns").write_text(phys_ns(phys, pid, eid), encoding="utf-8")
    write_topdl(phys, out / "phys_topo.xml")
