"""Draw the topology with Graphviz: ``visualization.png`` at compile time and ``containerize image``.

Nodes are boxes coloured by kind with their name and addresses; a LAN is a small grey ellipse with
its name and subnet, joined to its members; a two-member link is a plain edge. With ``partitions``
every pnode (or partition, for an uncompiled file) is a box around its nodes. The DOT text is
written here and laid out by a Graphviz program (``fdp``, ``sfdp`` for large topologies) run with
an argument list; the layout seed is fixed, so the same topology gives the same picture.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import ContainerizeError
from ..model import Topology
from ..units import format_bandwidth
from .layout import FixedLayout, fixed_layout

PROGRAMS = ("fixed", "fdp", "sfdp", "neato", "dot", "circo", "twopi", "osage")
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".dot": None, ".gv": None}
KIND_FILL = {"process": "#fdd9b5", "qemu": "#c6dbef", "openvz": "#c7e9c0", "embedded_pnode": "#fcbba1", None: "#eeeeee"}
KIND_LINE = {"process": "#e6550d", "qemu": "#3182bd", "openvz": "#31a354", "embedded_pnode": "#de2d26", None: "#777777"}
CLUSTER_FILLS = ("#f7f7f7", "#eef3fa", "#f3f9ef", "#fbf1ea", "#f4effa", "#faf7e6")
MAX_ADDRESSES = 4  # per node label; more are summarized
SFDP_ABOVE = 400  # vertices beyond which the default program is sfdp (fdp gets slow)
FIXED_ABOVE = 1500  # vertices beyond which even sfdp takes seconds: our own layout (layout.py), Graphviz draws


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shaping_label(sub) -> str:
    parts = [format_bandwidth(sub.bandwidth)]
    if sub.delay:
        parts.append(f"{sub.delay * 1000:g}ms")
    if sub.loss:
        parts.append(f"{sub.loss * 100:g}%")
    return " ".join(p for p in parts if p)


def _group_of(node, partitions: bool) -> str | None:
    if not partitions:
        return None
    pnode = node.attributes.get("containers:pnode") or node.pnode
    if pnode:
        return str(pnode)
    partition = node.partition if node.partition is not None else node.attributes.get("containers:partition")
    return f"partition {partition}" if partition is not None else None


def _kind(node) -> str | None:
    return node.kind or node.attributes.get("containers:node_type") or None


def _legend(title: str, topo: Topology) -> str:
    """An HTML-like graph label: the title, then one coloured cell per kind of node drawn."""
    import html

    kinds = []
    for node in topo.nodes.values():
        if _kind(node) not in kinds:
            kinds.append(_kind(node))
    cells = "".join(f'<td bgcolor="{KIND_FILL.get(k, KIND_FILL[None])}" color="{KIND_LINE.get(k, KIND_LINE[None])}"'
                    f' border="1"> {html.escape(k or "kind not set")} </td>' for k in kinds)
    ghost = '<td border="1" style="dashed"> ghost </td>' if any(n.ghost for n in topo.nodes.values()) else ""
    return (f'<<table border="0" cellspacing="4"><tr><td colspan="{len(kinds) + 1 + bool(ghost)}">'
            f'<font point-size="16">{html.escape(title)}</font></td></tr><tr>{cells}{ghost}<td></td></tr></table>>')


def topology_dot(topo: Topology, title: str = "", partitions: bool = False, addresses: bool = True,
                 link_labels: bool = False, program: str = "fdp", fixed: FixedLayout | None = None) -> str:
    """The DOT text of TOPO. With a FIXED layout every drawn vertex is pinned and folded leaves are left out."""

    def drawn(vertex: str) -> bool:
        return fixed is None or vertex in fixed.positions

    def pin(vertex: str) -> str:
        if fixed is None:
            return ""
        x, y = fixed.positions[vertex]
        return f", pos=\"{x:.1f},{y:.1f}!\""

    def folded(vertex: str) -> list[str]:
        count = fixed.folded.get(vertex, 0) if fixed else 0
        return [f"+{count} nodes"] if count else []

    members = topo.substrate_members()
    big = len(topo.nodes) > 150
    lines = [
        "graph topology {",
        # a fixed layout can span thousands of vertices: at most 30 inches a side keeps the raster cheap
        f"  graph [layout={'neato' if fixed else program}, start=7, overlap={'true' if fixed else 'false'}, "
        + ("size=\"30,30\", " if fixed else "") +
        f"splines={'false' if big else 'true'}, outputorder=edgesfirst, pad=0.3, "
        f"fontname=\"Helvetica\", fontsize=14, K={0.9 if big else 1.1}, sep=\"+6\", esep=\"+3\""
        + f", label={_legend(title, topo)}, labelloc=t];",
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=9, margin=\"0.06,0.03\", "
        "height=0.3, penwidth=1.2];",
        "  edge [color=\"#8c8c8c\", penwidth=1.0, fontname=\"Helvetica\", fontsize=8, fontcolor=\"#555555\"];",
    ]
    groups: dict[str | None, list[str]] = {}
    for node in topo.nodes.values():
        vertex = "n:" + node.name
        if not drawn(vertex):
            continue
        label = [node.name]
        if addresses:
            ips = [iface.ip for iface in node.interfaces if iface.ip]
            label += ips[:MAX_ADDRESSES] if len(ips) <= MAX_ADDRESSES else ips[:MAX_ADDRESSES - 1] + [
                f"+{len(ips) - MAX_ADDRESSES + 1} more"]
        style = "rounded,filled,dashed" if node.ghost else "rounded,filled"
        fill, line = KIND_FILL.get(_kind(node), KIND_FILL[None]), KIND_LINE.get(_kind(node), KIND_LINE[None])
        statement = (f"{_q(vertex)} [label={_q(chr(10).join(label + folded(vertex)))}, fillcolor=\"{fill}\", "
                     f"color=\"{line}\", style=\"{style}\"{pin(vertex)}];")
        groups.setdefault(_group_of(node, partitions), []).append(statement)
    edges = []
    for name, sub in topo.substrates.items():
        ifaces = members.get(name, [])
        nodes = [iface.node for iface in ifaces]
        shaping = _shaping_label(sub) if link_labels else ""
        if sub.kind == "link" and len(nodes) == 2:
            if drawn("n:" + nodes[0]) and drawn("n:" + nodes[1]):
                label = ", ".join(filter(None, [name if link_labels else "", shaping]))
                edges.append(f"  {_q('n:' + nodes[0])} -- {_q('n:' + nodes[1])}"
                             + (f" [label={_q(label)}]" if label else "") + ";")
            continue
        hub = "l:" + name
        if not drawn(hub):
            continue
        lan_label = [name]
        if addresses and sub.network:
            lan_label.append(sub.network)
        if shaping:
            lan_label.append(shaping)
        statement = (f"{_q(hub)} [label={_q(chr(10).join(lan_label + folded(hub)))}, shape=ellipse, style=filled, "
                     "fillcolor=\"#d9d9d9\", color=\"#737373\", fontsize=8, height=0.25, margin=\"0.02,0.01\""
                     f"{pin(hub)}];")
        # a LAN hub goes with most of its members, so that a LAN split over pnodes stays drawn as one
        owners = [_group_of(topo.nodes[n], partitions) for n in nodes if n in topo.nodes]
        owner = max(sorted(set(owners), key=str), key=owners.count) if owners else None
        groups.setdefault(owner, []).append(statement)
        edges += [f"  {_q(hub)} -- {_q('n:' + node)};" for node in nodes if drawn("n:" + node)]
    for index, (group, statements) in enumerate(groups.items()):
        if group is None:
            lines += [f"  {s}" for s in statements]
            continue
        lines.append(f"  subgraph {_q('cluster_' + group)} {{")
        lines.append(f"    label={_q(group)}; style=\"rounded,filled\"; color=\"#969696\"; "
                     f"fillcolor=\"{CLUSTER_FILLS[index % len(CLUSTER_FILLS)]}\"; fontsize=12;")
        lines += [f"    {s}" for s in statements]
        lines.append("  }")
    lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, out: Path, program: str, timeout: float = 600) -> None:
    fmt = FORMATS[out.suffix.lower()]
    if fmt is None:
        out.write_text(dot, encoding="utf-8")
        return
    # the fixed layout pins every vertex: neato -n2 only draws
    binary, extra = shutil.which("neato" if program == "fixed" else program), ["-n2"] if program == "fixed" else []
    if binary is None:
        raise ContainerizeError(f"{program} not found: install Graphviz (Debian package graphviz)")
    tmp = out.with_name(out.name + ".tmp")
    try:
        proc = subprocess.run([binary, *extra, f"-T{fmt}", "-o", str(tmp)], input=dot.encode(),  # noqa: S603
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise ContainerizeError(f"{program} took longer than {timeout:g} s; try --program sfdp") from None
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ContainerizeError(f"{program} failed: {message[-1] if message else f'exit {proc.returncode}'}")
    tmp.replace(out)


def default_program(topo: Topology) -> str:
    """fdp; sfdp where fdp would be slow; the fixed layout where sfdp would be."""
    vertices = len(topo.nodes) + len(topo.substrates)
    return "fixed" if vertices > FIXED_ABOVE else "sfdp" if vertices > SFDP_ABOVE else "fdp"


def write_picture(topology: Topology, path, title: str = "", partitions: bool = False, addresses: bool = True,
                  link_labels: bool = False, program: str | None = None) -> None:
    """Draw TOPOLOGY into PATH (.png, .svg, .pdf, or the DOT text for .dot/.gv)."""
    program = program or default_program(topology)
    title = title or (f"{Path(topology.source).name}: {len(topology.nodes)} nodes, "
                      f"{len(topology.substrates)} links and LANs")
    fixed = fixed_layout(topology) if program == "fixed" else None
    dot = topology_dot(topology, title, partitions, addresses, link_labels, program, fixed)
    render(dot, Path(path), program)
