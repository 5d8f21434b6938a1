"""Decide every node's container kind and check the per-kind limits."""

from __future__ import annotations

from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import cpu_set

from ..config import as_list
from ..errors import Collector, shown
from ..model import KINDS, Topology
from ..options import Options
from ..units import parse_disk_size
from .names import valid_word


def assign_kinds(topo: Topology, options: Options) -> None:
    """containers:node_type wins, then a kind the reader set, then --default-container."""
    errors = Collector()
    max_ifaces = int(options.site.get("qemu_max_interfaces", "16"))
    for node in topo.nodes.values():
        kind = node.attributes.get("containers:node_type") or node.kind or options.default_container
        if kind not in KINDS:
            errors.add(f"node {node.name!r}: unknown container kind {shown(kind)}; valid kinds: {', '.join(KINDS)}",
                       topo.source, node.line)
            continue
        diskspace = node.attributes.get("containers:openvz_diskspace")
        if diskspace:
            try:
                parse_disk_size(diskspace)
            except ValueError as exc:
                errors.add(f"node {node.name!r}: containers:openvz_diskspace {exc}", topo.source, node.line)
        template = node.attributes.get("containers:openvz_template")
        if template and not valid_word(template, slash=False):
            errors.add(f"node {node.name!r}: containers:openvz_template {shown(template)} is not a template name "
                       "such as debian-12 (letters, digits and . _ - +, no '/')", topo.source, node.line)
        node.kind = kind
        cpus = node.attributes.get("containers:cpus")
        if cpus is not None:
            problem = cpu_list_problem(cpus)
            if kind != "process":
                problem = f"applies to process nodes only, not {kind}"
            if problem:
                errors.add(f"node {node.name!r}: containers:cpus {shown(cpus)} {problem}", topo.source, node.line)
        if kind == "qemu" and len(node.interfaces) > max_ifaces:
            errors.add(f"node {node.name!r}: qemu node has {len(node.interfaces)} interfaces, more than the "
                       f"{max_ifaces} supported (site key qemu_max_interfaces)", topo.source, node.line)
    errors.raise_if_any()


def cpu_list_problem(text: str) -> str | None:
    """What is wrong with a CPU list such as 1 or 0-3,6 (taskset's --cpu-list form), or None: the check
    process_nodes makes again on the pnode (module_utils/process_plan.py)."""
    try:
        cpu_set(text)
    except ValueError as exc:
        return str(exc)
    return None


def switched_kinds(options: Options) -> set[str]:
    """Kinds whose interfaces plug into VDE switches (site key switched_containers)."""
    return set(as_list(options.site.get("switched_containers", "qemu,process,openvz")))
