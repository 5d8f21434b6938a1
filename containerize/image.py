"""`containerize image`: draw a topology with Graphviz (what DETER's container_image.py did).

  containerize image EXPDIR [-o OUT.png|.svg|.pdf|.dot] [--partitions] [--program fdp] ...
  containerize image --experiment PROJECT/EXPERIMENT ...     experiments/PROJECT/EXPERIMENT
  containerize image --topo FILE ...                         an ns2 or TopDL file, not compiled

Nodes are boxes coloured by kind with their name and addresses; a LAN is a small grey ellipse
with its name and subnet, joined to its members; a two-member link is a plain edge. With
``--partitions`` every pnode (or partition, for an uncompiled file) is a box around its nodes.
The DOT text is written by this module and laid out by the Graphviz program (``fdp`` by default),
run with an argument list; the layout seed is fixed, so the same topology gives the same picture.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import ContainerizeError
from .model import Topology

EXIT_USAGE = 2
PROGRAMS = ("fdp", "sfdp", "neato", "dot", "circo", "twopi", "osage")
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".dot": None, ".gv": None}
KIND_FILL = {"process": "#fdd9b5", "qemu": "#c6dbef", "openvz": "#c7e9c0", "embedded_pnode": "#fcbba1", None: "#eeeeee"}
KIND_LINE = {"process": "#e6550d", "qemu": "#3182bd", "openvz": "#31a354", "embedded_pnode": "#de2d26", None: "#777777"}
CLUSTER_FILLS = ("#f7f7f7", "#eef3fa", "#f3f9ef", "#fbf1ea", "#f4effa", "#faf7e6")
MAX_ADDRESSES = 4  # per node label; more are summarized
SFDP_ABOVE = 400  # vertices beyond which the default program is sfdp (fdp gets slow)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _rate(bandwidth: float | None) -> str:
    if not bandwidth:
        return ""
    for unit, factor in (("Gb", 1e9), ("Mb", 1e6), ("kb", 1e3)):
        if bandwidth >= factor:
            return f"{bandwidth / factor:g}{unit}"
    return f"{bandwidth:g}b"


def _shaping_label(sub) -> str:
    parts = [_rate(sub.bandwidth)]
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
                 link_labels: bool = False, program: str = "fdp") -> str:
    """The DOT text of TOPO."""
    members = topo.substrate_members()
    big = len(topo.nodes) > 150
    lines = [
        "graph topology {",
        f"  graph [layout={program}, start=7, overlap=false, splines={'false' if big else 'true'}, "
        "outputorder=edgesfirst, pad=0.3, "
        f"fontname=\"Helvetica\", fontsize=14, K={0.9 if big else 1.1}, sep=\"+6\", esep=\"+3\""
        + f", label={_legend(title, topo)}, labelloc=t];",
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=9, margin=\"0.06,0.03\", "
        "height=0.3, penwidth=1.2];",
        "  edge [color=\"#8c8c8c\", penwidth=1.0, fontname=\"Helvetica\", fontsize=8, fontcolor=\"#555555\"];",
    ]
    groups: dict[str | None, list[str]] = {}
    for node in topo.nodes.values():
        label = [node.name]
        if addresses:
            ips = [iface.ip for iface in node.interfaces if iface.ip]
            label += ips[:MAX_ADDRESSES] if len(ips) <= MAX_ADDRESSES else ips[:MAX_ADDRESSES - 1] + [
                f"+{len(ips) - MAX_ADDRESSES + 1} more"]
        style = "rounded,filled,dashed" if node.ghost else "rounded,filled"
        fill, line = KIND_FILL.get(_kind(node), KIND_FILL[None]), KIND_LINE.get(_kind(node), KIND_LINE[None])
        statement = (f"{_q('n:' + node.name)} [label={_q(chr(10).join(label))}, fillcolor=\"{fill}\", "
                     f"color=\"{line}\", style=\"{style}\"];")
        groups.setdefault(_group_of(node, partitions), []).append(statement)
    edges = []
    for name, sub in topo.substrates.items():
        ifaces = members.get(name, [])
        nodes = [iface.node for iface in ifaces]
        shaping = _shaping_label(sub) if link_labels else ""
        if sub.kind == "link" and len(nodes) == 2:
            label = ", ".join(filter(None, [name if link_labels else "", shaping]))
            edges.append(f"  {_q('n:' + nodes[0])} -- {_q('n:' + nodes[1])}"
                         + (f" [label={_q(label)}]" if label else "") + ";")
            continue
        lan_label = [name]
        if addresses and sub.network:
            lan_label.append(sub.network)
        if shaping:
            lan_label.append(shaping)
        statement = (f"{_q('l:' + name)} [label={_q(chr(10).join(lan_label))}, shape=ellipse, style=filled, "
                     "fillcolor=\"#d9d9d9\", color=\"#737373\", fontsize=8, height=0.25, margin=\"0.02,0.01\"];")
        # a LAN hub goes with most of its members, so that a LAN split over pnodes stays drawn as one
        owners = [_group_of(topo.nodes[n], partitions) for n in nodes if n in topo.nodes]
        owner = max(sorted(set(owners), key=str), key=owners.count) if owners else None
        groups.setdefault(owner, []).append(statement)
        for node in nodes:
            edges.append(f"  {_q('l:' + name)} -- {_q('n:' + node)};")
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
    binary = shutil.which(program)
    if binary is None:
        raise ContainerizeError(f"{program} not found: install Graphviz (Debian package graphviz)")
    tmp = out.with_name(out.name + ".tmp")
    try:
        proc = subprocess.run([binary, f"-T{fmt}", "-o", str(tmp)], input=dot.encode(),  # noqa: S603
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise ContainerizeError(f"{program} took longer than {timeout:g} s; try --program sfdp") from None
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ContainerizeError(f"{program} failed: {message[-1] if message else f'exit {proc.returncode}'}")
    tmp.replace(out)


def load(args) -> tuple[Topology, str, Path]:
    """(topology, title, default output) from the chosen source."""
    sources = [s for s in (args.expdir, args.experiment, args.topo) if s]
    if len(sources) != 1:
        raise ContainerizeError("containerize image: give exactly one of EXPDIR, --experiment PROJECT/EXPERIMENT, "
                                "--topo FILE")
    if args.topo:
        from .cli import read_topology

        path = Path(args.topo)
        topo = read_topology(path)
        return topo, path.name, Path(path.stem + ".png")
    if args.experiment:
        project, _, experiment = args.experiment.partition("/")
        if not project or not experiment:
            raise ContainerizeError(f"--experiment {args.experiment!r}: expected PROJECT/EXPERIMENT")
        expdir = Path(args.experiments_root) / project / experiment
    else:
        expdir = Path(args.expdir)
    from .expdir import ExperimentDir
    from .readers.topdl import read_topdl

    exp = ExperimentDir(expdir)
    planned = expdir / "partitioned.xml"
    if not planned.exists():
        raise ContainerizeError(f"{expdir}: no partitioned.xml; recompile the experiment")
    return read_topdl(str(planned)), exp.name, expdir / "topology.png"


def image_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="containerize image",
                     description="Draw a topology (node names and addresses, LANs, optionally pnodes) with Graphviz.")
    parser.add_argument("expdir", metavar="EXPDIR", nargs="?", help="a compiled experiment directory")
    parser.add_argument("--experiment", metavar="PROJECT/EXPERIMENT",
                        help="the experiment compiled into EXPERIMENTS_ROOT/PROJECT/EXPERIMENT")
    parser.add_argument("--experiments-root", default="experiments", metavar="DIR",
                        help="where --experiment looks (default experiments)")
    parser.add_argument("--topo", metavar="FILE", help="an ns2 (.tcl/.ns) or TopDL file, drawn as written")
    parser.add_argument("-o", "--out", metavar="FILE",
                        help="output .png, .svg, .pdf or .dot (default EXPDIR/topology.png, or TOPO-NAME.png)")
    parser.add_argument("--force", action="store_true", help="replace the picture named by --out if it exists")
    parser.add_argument("--partitions", action="store_true", help="draw a box around the nodes of each pnode")
    parser.add_argument("--program", choices=PROGRAMS, help=f"Graphviz layout program (fdp; sfdp above "
                                                            f"{SFDP_ABOVE} nodes)")
    parser.add_argument("--no-addresses", dest="addresses", action="store_false", help="names only")
    parser.add_argument("--link-labels", action="store_true", help="label links and LANs with name and shaping")
    return parser


def run_image(argv: list[str]) -> int:
    args = image_parser().parse_args(argv)
    topo, title, default_out = load(args)
    out = Path(args.out) if args.out else default_out
    if out.suffix.lower() not in FORMATS:
        raise ContainerizeError(f"{out}: unknown picture format; use .png, .svg, .pdf or .dot")
    if not out.parent.is_dir():
        raise ContainerizeError(f"{out.parent}: no such directory")
    if args.out and out.exists() and not args.force:  # (the default picture is the experiment's own, redrawn)
        raise ContainerizeError(f"{out} already exists; pass --force to replace it, or name another --out")
    program = args.program or ("sfdp" if len(topo.nodes) + len(topo.substrates) > SFDP_ABOVE else "fdp")
    started = time.monotonic()
    if sys.stderr.isatty() and len(topo.nodes) > 200:
        sys.stderr.write(f"laying out {len(topo.nodes)} nodes with {program}...\n")
    render(topology_dot(topo, title, args.partitions, args.addresses, args.link_labels, program), out, program)
    print(f"{out}: {len(topo.nodes)} nodes, {len(topo.substrates)} links/LANs, drawn by {program} "
          f"in {time.monotonic() - started:.1f} s")
    return 0
