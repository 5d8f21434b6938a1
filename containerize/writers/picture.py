"""Draw the topology (``visualization.png``): nodes coloured by kind, LANs as small squares,
two-member links as plain edges.

The bytes depend only on the model: the layout uses a fixed seed, matplotlib runs on its Agg
canvas without pyplot (no global state, no display), and PNG/SVG metadata that carries versions
or dates is dropped. Large topologies skip labels and use a cheap layout so drawing stays fast.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..model import KINDS, Topology

SEED = 7
SPRING_LIMIT = 300  # vertices laid out with a full spring layout (networkx's dense version is fast)
LABEL_LIMIT = 120  # vertices beyond which names are not drawn
KIND_COLORS = {
    "embedded_pnode": "#d62728",
    "qemu": "#1f77b4",
    "openvz": "#2ca02c",
    "process": "#ff7f0e",
    None: "#7f7f7f",
}
LAN_COLOR = "#444444"
EDGE_COLOR = "#9a9a9a"


def topology_graph(topology: Topology) -> nx.Graph:
    """Vertices ("node", name) and ("lan", name); links join nodes directly, LANs through a hub."""
    graph = nx.Graph()
    for name in topology.nodes:
        graph.add_node(("node", name))
    members: dict[str, list[str]] = {name: [] for name in topology.substrates}
    for iface in topology.interfaces():
        if iface.substrate in members:
            members[iface.substrate].append(iface.node)
    for name, sub in topology.substrates.items():
        nodes = members[name]
        if sub.kind == "link" and len(nodes) == 2:
            if nodes[0] != nodes[1]:
                graph.add_edge(("node", nodes[0]), ("node", nodes[1]))
            continue
        graph.add_node(("lan", name))
        for node in nodes:
            graph.add_edge(("lan", name), ("node", node))
    return graph


def _grid(order: list) -> dict:
    """Place vertices on a square grid row by row (snake order keeps BFS neighbours close)."""
    side = max(1, math.ceil(math.sqrt(len(order))))
    pos = {}
    for index, vertex in enumerate(order):
        row, col = divmod(index, side)
        if row % 2:
            col = side - 1 - col
        pos[vertex] = (2.0 * col / side - 1.0, 1.0 - 2.0 * row / side)
    return pos


def _bfs_order(graph: nx.Graph) -> list:
    seen, order = set(), []
    for start in graph:
        if start in seen:
            continue
        seen.add(start)
        queue = deque([start])
        while queue:
            vertex = queue.popleft()
            order.append(vertex)
            for other in graph[vertex]:
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
    return order


def layout(graph: nx.Graph) -> dict:
    """Positions in about [-1, 1]^2. Small graphs: spring layout. Large graphs: lay out the skeleton
    (everything but leaves) and put each hub's leaves on a ring around it, which is fast and suits
    the star- and LAN-heavy topologies testbeds use."""
    if graph.number_of_nodes() <= SPRING_LIMIT:
        return nx.spring_layout(graph, seed=SEED) if graph.number_of_nodes() else {}
    parent = {}
    for vertex in graph:
        if graph.degree(vertex) == 1:
            (other,) = graph[vertex]
            if graph.degree(other) > 1:
                parent[vertex] = other
    skeleton = nx.Graph()
    skeleton.add_nodes_from(v for v in graph if v not in parent)
    skeleton.add_edges_from((a, b) for a, b in graph.edges() if a not in parent and b not in parent)
    if skeleton.number_of_nodes() <= SPRING_LIMIT:
        pos = nx.spring_layout(skeleton, seed=SEED, iterations=30)
    else:
        pos = _grid(_bfs_order(skeleton))
    spacing = 1.6 / math.sqrt(max(1, skeleton.number_of_nodes()))
    leaves: dict = {}
    for vertex, hub in parent.items():
        leaves.setdefault(hub, []).append(vertex)
    for hub, ring in leaves.items():
        cx, cy = pos[hub]
        radius = spacing * 0.45
        for index, vertex in enumerate(ring):
            angle = 2.0 * math.pi * index / len(ring)
            pos[vertex] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    return {vertex: tuple(map(float, pos[vertex])) for vertex in graph}


def write_picture(topology: Topology, path) -> None:
    """Draw ``topology`` into ``path`` (PNG, or SVG/PDF by suffix), byte-identical for the same model."""
    graph = topology_graph(topology)
    pos = layout(graph)
    count = graph.number_of_nodes()
    big = count > SPRING_LIMIT
    size = 12.0 if big else 8.0
    fig = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.92))
    ax.set_axis_off()
    fig.suptitle(f"{Path(topology.source).name}: {len(topology.nodes)} nodes, "
                 f"{len(topology.substrates)} links and LANs", fontsize=11)
    if not count:
        ax.text(0.5, 0.5, "empty topology", ha="center", va="center")
    marker = max(4.0, min(120.0, 6000.0 / max(1, count)))
    width = 0.3 if big else 0.8
    segments = [(pos[a], pos[b]) for a, b in graph.edges()]
    if segments:
        ax.add_collection(LineCollection(segments, colors=EDGE_COLOR, linewidths=width, zorder=1))
    for kind in (*KINDS, None):
        points = [pos[("node", n.name)] for n in topology.nodes.values() if n.kind == kind]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, s=marker, c=KIND_COLORS[kind], marker="o", zorder=3, linewidths=0,
                       label=kind or "undecided")
    lans = [pos[v] for v in graph if v[0] == "lan"]
    if lans:
        xs, ys = zip(*lans, strict=True)
        ax.scatter(xs, ys, s=marker * 0.6, c=LAN_COLOR, marker="s", zorder=2, linewidths=0, label="LAN")
    if count <= LABEL_LIMIT:
        for (what, name), (x, y) in pos.items():
            ax.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", zorder=4,
                        fontsize=7 if what == "node" else 6, color="black" if what == "node" else LAN_COLOR)
    if count:
        ax.autoscale_view()
        ax.margins(0.05)
        # legend symbols at a readable size even when the plotted markers are tiny
        ax.legend(loc="upper right", fontsize=8, frameon=False, markerscale=max(1.0, math.sqrt(60.0 / marker)))
    suffix = Path(path).suffix.lower()
    fmt = {".svg": "svg", ".pdf": "pdf"}.get(suffix, "png")
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
                "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}[fmt]
    if fmt == "svg":
        import matplotlib

        # SVG element ids are random unless salted
        with matplotlib.rc_context({"svg.hashsalt": "containerize"}):
            fig.savefig(path, format=fmt, metadata=metadata)
    else:
        fig.savefig(path, format=fmt, metadata=metadata)
