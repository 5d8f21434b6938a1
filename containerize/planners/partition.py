"""Pack nodes onto pnodes as DETER did: passes, packing, user partitions; few links cut.

Within a pass, nodes are split into classes that may not share a pnode (qemu and openvz
never together, every embedded_pnode alone). Each class is ordered by a depth-first walk of
the node/LAN graph, which keeps LAN members and chains of links adjacent, and cut into
chunks of `packing` nodes. That is linear in the topology size, and on LANs-behind-routers
trees it cuts close to the minimum (see bench/compile.py for the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from ..errors import Collector, shown
from ..model import Topology
from ..options import Options


@dataclass
class Partitioning:
    assignment: dict[str, list[str]] = field(default_factory=dict)  # pnode -> node names, file order
    pnode_types: dict[str, list[str]] = field(default_factory=dict)  # pnode -> hardware types
    pnode_pass: dict[str, int] = field(default_factory=dict)
    cut_links: int = 0  # substrates spanning more than one pnode


def _class_of(kind: str) -> str:
    # process nodes are switched like qemu, so they pack with the VMs.
    return {"qemu": "vm", "process": "vm", "openvz": "openvz"}.get(kind, kind)


def _pass_of(node, errors: Collector, source: str) -> int:
    raw = node.attributes.get("containers:PartitionPass")
    if raw is None:
        return 0
    number = _whole(raw)
    if number is None:
        errors.add(f"node {node.name!r}: containers:PartitionPass {shown(raw)} is not a non-negative integer "
                   f"{WHOLE}", source, node.line)
        return 0
    return number


WHOLE = "(0, 1, 2, ... up to 18 digits)"


def _whole(text: str) -> int | None:
    """A whole number from 0 written in ASCII digits, or None."""
    text = str(text).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _dfs_order(topo: Topology, names: list[str]) -> list[str]:
    wanted = set(names)
    graph = nx.Graph()
    graph.add_nodes_from(names)
    for node_name in names:
        for iface in topo.nodes[node_name].interfaces:
            graph.add_edge(node_name, ("sub", iface.substrate))
    order: list[str] = []
    position = {name: i for i, name in enumerate(names)}
    for component in sorted(nx.connected_components(graph), key=lambda c: min(
            (position[n] for n in c if n in wanted), default=len(names))):
        members = [n for n in component if n in wanted]
        if not members:
            continue
        start = min(members, key=position.__getitem__)
        order.extend(n for n in nx.dfs_preorder_nodes(graph, start) if n in wanted)
    return order


def partition(topo: Topology, options: Options) -> Partitioning:
    errors = Collector()
    if options.packing < 1:
        errors.add(f"--packing must be at least 1, not {options.packing}")
    if options.size is not None and options.size < 1:
        errors.add(f"--size must be at least 1, not {options.size}")
    for label, table in (("--pass-pack", options.pass_pack), ("--pass-size", options.pass_size)):
        for pass_no, value in table.items():
            if value < 1:
                errors.add(f"{label} {pass_no}:{value}: the value must be at least 1")
    errors.raise_if_any()

    user = {}
    for node in topo.nodes.values():
        raw = node.attributes.get("containers:partition")
        if raw is not None:
            number = _whole(raw)
            if number is None:
                errors.add(f"node {node.name!r}: containers:partition {shown(raw)} is not a non-negative "
                           f"integer {WHOLE}", topo.source, node.line)
            else:
                user[node.name] = number
    passes: dict[int, list[str]] = {}
    for node in topo.nodes.values():
        passes.setdefault(_pass_of(node, errors, topo.source), []).append(node.name)
    errors.raise_if_any()

    groups: list[tuple[int, list[str]]] = []  # (pass, node names) in pnode order
    chosen: dict[int, int] = {}  # group index -> the containers:partition value the user gave it
    if user and not options.force_partition:
        by_part: dict[int, list[str]] = {}
        unplaced = []
        for node in topo.nodes.values():
            if node.name in user:
                by_part.setdefault(user[node.name], []).append(node.name)
            else:
                unplaced.append(node.name)
        for part in sorted(by_part):
            names = by_part[part]
            alone = [n for n in names if topo.nodes[n].kind == "embedded_pnode"] if len(names) > 1 else []
            rest = [n for n in names if n not in alone] if alone else names
            if alone:
                _warn_alone(topo, part, alone, rest)
                if not rest:  # only physical nodes: the first keeps the partition
                    rest = alone[:1]
                    alone = alone[1:]
            chosen[len(groups)] = part
            groups.append((_pass_of(topo.nodes[rest[0]], errors, topo.source), rest))
            for name in alone:  # DETER gave every physical node a pnode of its own
                groups.append((_pass_of(topo.nodes[name], errors, topo.source), [name]))
        if unplaced:
            passes = {}
            for name in unplaced:
                passes.setdefault(_pass_of(topo.nodes[name], errors, topo.source), []).append(name)
        else:
            passes = {}
    for pass_no in sorted(passes):
        groups.extend(_pack_pass(topo, options, pass_no, passes[pass_no]))

    result = Partitioning()
    pnode_of: dict[str, str] = {}
    for index, (pass_no, names) in enumerate(groups):
        pnode = f"pnode-{index:04d}"
        result.assignment[pnode] = names
        result.pnode_pass[pnode] = pass_no
        result.pnode_types[pnode] = options.pass_pnodes.get(pass_no, options.pnode_types)
        for name in names:
            pnode_of[name] = pnode
            topo.nodes[name].pnode = pnode
            topo.nodes[name].partition = index
    _check_mixing(topo, result, chosen, errors)
    errors.raise_if_any()
    for members in topo.substrate_members().values():
        if len({pnode_of[i.node] for i in members}) > 1:
            result.cut_links += 1
    return result


def _pack_pass(topo: Topology, options: Options, pass_no: int, names: list[str]):
    classes: dict[str, list[str]] = {}
    for name in names:
        classes.setdefault(_class_of(topo.nodes[name].kind or ""), []).append(name)
    size = options.pass_size.get(pass_no, options.size)
    if options.pnode_hosts and size is not None:
        yield from _pack_onto_hosts(topo, options, pass_no, names, classes, size)
        return
    for cls in classes:  # dicts keep first-seen order
        members = classes[cls]
        if cls == "embedded_pnode":
            for name in members:
                yield pass_no, [name]
            continue
        packing = options.pass_pack.get(pass_no, options.packing)
        if size is not None:
            packing = max(1, math.ceil(len(members) / size))
        nodes_only = options.nodes_only or pass_no in options.pass_nodes_only
        order = members if nodes_only else _dfs_order(topo, members)
        position = {name: i for i, name in enumerate(members)}
        for start in range(0, len(order), packing):
            yield pass_no, sorted(order[start:start + packing], key=position.__getitem__)


def _pack_onto_hosts(topo: Topology, options: Options, pass_no: int, names: list[str],
                     classes: dict[str, list[str]], size: int):
    """--pnode-hosts: SIZE pnodes in all (the hosts given), shared by the classes by their node counts.

    Each embedded_pnode node takes a host; the other hosts go to the classes in proportion to their
    sizes (at least one each). Process nodes share a pnode with qemu or openvz nodes alike, so a pass
    with no qemu or no openvz nodes is packed as one class.
    """
    for name in classes.pop("embedded_pnode", []):
        yield pass_no, [name]
    budget = max(1, size - len(names) + sum(len(m) for m in classes.values()))
    kinds = {topo.nodes[n].kind for n in names}
    if len(classes) > 1 and not {"qemu", "openvz"} <= kinds:
        packed = {n for m in classes.values() for n in m}
        classes = {"all": [n for n in names if n in packed]}
    counts = [len(m) for m in classes.values()]
    shares = [1] * len(counts)
    for _ in range(budget - len(counts)):  # the next host to the class with the most nodes per host
        best = max(range(len(counts)), key=lambda i: counts[i] / shares[i])
        shares[best] += 1
    nodes_only = options.nodes_only or pass_no in options.pass_nodes_only
    position = {name: i for i, name in enumerate(names)}
    for members, share in zip(classes.values(), shares, strict=True):
        packing = max(1, math.ceil(len(members) / share))
        order = sorted(members, key=position.__getitem__) if nodes_only else _dfs_order(topo, members)
        for start in range(0, len(order), packing):
            yield pass_no, sorted(order[start:start + packing], key=position.__getitem__)


def _warn_alone(topo: Topology, part: int, alone: list[str], rest: list[str]) -> None:
    first = topo.nodes[alone[0]]
    where = f"{topo.source}:{first.line}" if first.line else topo.source
    plural = len(alone) > 1
    topo.warnings.append(
        f"{where}: containers:partition {part} holds {_some(rest + alone)}, but embedded_pnode node"
        f"{'s' * plural} {_some(alone)} {'are physical nodes' if plural else 'is a physical node'}: each gets a "
        "pnode of its own, as DETER did")


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _check_mixing(topo: Topology, result: Partitioning, chosen: dict[int, int], errors: Collector) -> None:
    for index, (pnode, names) in enumerate(result.assignment.items()):
        kinds = {topo.nodes[n].kind for n in names}
        where = f"containers:partition {chosen[index]}" if index in chosen else pnode
        if {"qemu", "openvz"} <= kinds:
            qemu = [n for n in names if topo.nodes[n].kind == "qemu"]
            openvz = [n for n in names if topo.nodes[n].kind == "openvz"]
            errors.add(f"{where} mixes qemu nodes ({_some(qemu)}) and openvz nodes ({_some(openvz)}), which "
                       "cannot share a pnode; give them different containers:partition values", topo.source,
                       topo.nodes[names[0]].line)
        if "embedded_pnode" in kinds and len(names) > 1:
            errors.add(f"embedded_pnode nodes must be alone on their pnode, but {where} holds "
                       f"{_some(names)}", topo.source, topo.nodes[names[0]].line)
