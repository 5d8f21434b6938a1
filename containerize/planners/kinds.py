"""Decide every node's container kind and check the per-kind limits."""

from __future__ import annotations

from ..config import as_list
from ..errors import Collector
from ..model import KINDS, Topology
from ..options import Options


def assign_kinds(topo: Topology, options: Options) -> None:
    """containers:node_type wins, then a kind the reader set, then --default-container."""
    errors = Collector()
    max_ifaces = int(options.site.get("qemu_max_interfaces", "16"))
    for node in topo.nodes.values():
        kind = node.attributes.get("containers:node_type") or node.kind or options.default_container
        if kind not in KINDS:
            errors.add(f"node {node.name!r}: unknown container kind {kind!r}; valid kinds: {', '.join(KINDS)}",
                       topo.source, node.line)
            continue
        node.kind = kind
        if kind == "qemu" and len(node.interfaces) > max_ifaces:
            errors.add(f"node {node.name!r}: qemu node has {len(node.interfaces)} interfaces, more than the "
                       f"{max_ifaces} supported (site key qemu_max_interfaces)", topo.source, node.line)
    errors.raise_if_any()


def switched_kinds(options: Options) -> set[str]:
    """Kinds whose interfaces plug into VDE switches (site key switched_containers)."""
    return set(as_list(options.site.get("switched_containers", "qemu,process,openvz")))
