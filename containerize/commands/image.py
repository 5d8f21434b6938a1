"""`containerize image`: draw a topology with Graphviz (what DETER's container_image.py did).

  containerize image EXPDIR [-o OUT.png|.svg|.pdf|.dot] [--partitions] [--program fdp] ...
  containerize image --experiment PROJECT/EXPERIMENT ...     experiments/PROJECT/EXPERIMENT
  containerize image --topo FILE ...                         an ns2 or TopDL file, not compiled

The drawing is containerize/writers/picture.py's, the one that draws visualization.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import ContainerizeError
from ..model import Topology
from ..writers.picture import FORMATS, PROGRAMS, SFDP_ABOVE, default_program, write_picture
from .base import CommandParser


def load(args) -> tuple[Topology, str, Path]:
    """(topology, title, default output) from the chosen source."""
    sources = [s for s in (args.expdir, args.experiment, args.topo) if s]
    if len(sources) != 1:
        raise ContainerizeError("containerize image: give exactly one of EXPDIR, --experiment PROJECT/EXPERIMENT, "
                                "--topo FILE")
    if args.topo:
        from ..cli import read_topology

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
    from ..expdir import ExperimentDir
    from ..readers.topdl import read_topdl

    exp = ExperimentDir(expdir)
    planned = expdir / "partitioned.xml"
    if not planned.exists():
        raise ContainerizeError(f"{expdir}: no partitioned.xml; recompile the experiment")
    return read_topdl(str(planned)), exp.name, expdir / "topology.png"


def image_parser() -> argparse.ArgumentParser:
    parser = CommandParser("image", description="Draw a topology (node names and addresses, LANs, "
                                                "optionally pnodes) with Graphviz.")
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
    program = args.program or default_program(topo)
    started = time.monotonic()
    if sys.stderr.isatty() and len(topo.nodes) > 200:
        sys.stderr.write(f"laying out {len(topo.nodes)} nodes with {program}...\n")
    write_picture(topo, out, title, args.partitions, args.addresses, args.link_labels, program)
    print(f"{out}: {len(topo.nodes)} nodes, {len(topo.substrates)} links/LANs, drawn by {program} "
          f"in {time.monotonic() - started:.1f} s")
    return 0
