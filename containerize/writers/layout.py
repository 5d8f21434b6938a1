"""A fixed layout for topologies too large for Graphviz's force-directed programs (seconds per 1,000 nodes).

Testbed topologies are star- and LAN-heavy: the skeleton (every vertex but the leaves: routers,
LANs, servers) goes on a grid in breadth-first snake order, which keeps neighbours close, and each
hub's leaves are folded into it (drawn as "+N more nodes"): thousands of identical leaves say
nothing in a picture. Linear in the size of the topology; Graphviz then only draws (``neato -n2``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..model import Topology

SPACING = 90.0  # points between skeleton vertices


def topology_edges(topo: Topology) -> dict[str, list[str]]:
    """Adjacency of the drawn vertices: "n:NODE" and, for LANs, "l:LAN" hubs."""
    adjacency: dict[str, list[str]] = {f"n:{name}": [] for name in topo.nodes}
    for name, ifaces in topo.substrate_members().items():
        nodes = [f"n:{iface.node}" for iface in ifaces]
        sub = topo.substrates[name]
        if sub.kind == "link" and len(nodes) == 2:
            pairs = [(nodes[0], nodes[1])]
        else:
            adjacency.setdefault(f"l:{name}", [])
            pairs = [(f"l:{name}", node) for node in nodes]
        for a, b in pairs:
            if a != b and a in adjacency and b in adjacency:
                adjacency[a].append(b)
                adjacency[b].append(a)
    return adjacency


def _bfs_order(adjacency: dict[str, list[str]], vertices: list[str]) -> list[str]:
    keep, seen, order = set(vertices), set(), []
    for start in vertices:
        if start in seen:
            continue
        seen.add(start)
        queue = deque([start])
        while queue:
            vertex = queue.popleft()
            order.append(vertex)
            for other in adjacency[vertex]:
                if other in keep and other not in seen:
                    seen.add(other)
                    queue.append(other)
    return order


@dataclass
class FixedLayout:
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)  # points, by drawn vertex
    folded: dict[str, int] = field(default_factory=dict)  # hub vertex -> leaves folded into it


def fixed_layout(topo: Topology) -> FixedLayout:
    """Positions of the skeleton of topology_edges(TOPO), with every hub's leaves folded into it."""
    adjacency = topology_edges(topo)
    hub_of = {}
    for vertex, others in adjacency.items():
        if len(others) == 1 and len(adjacency[others[0]]) > 1:
            hub_of[vertex] = others[0]
    skeleton = _bfs_order(adjacency, [v for v in adjacency if v not in hub_of])
    side = max(1, math.ceil(math.sqrt(len(skeleton))))
    pos = {}
    for index, vertex in enumerate(skeleton):
        row, col = divmod(index, side)
        if row % 2:
            col = side - 1 - col
        pos[vertex] = (col * SPACING, -row * SPACING)
    folded: dict[str, int] = {}
    for hub in hub_of.values():
        folded[hub] = folded.get(hub, 0) + 1
    return FixedLayout(pos, folded)
