"""One call that writes a whole experiment directory (into a fresh temporary directory)."""

from __future__ import annotations

from pathlib import Path

from ..compiler import Experiment
from .deter import write_deter_files
from .inventory import write_inventory


def write_experiment(exp: Experiment, out: Path, source: Path, input_topdl: bytes, image: bool = True) -> None:
    """`input_topdl` is the input model as TopDL, rendered before planning (topo.xml)."""
    from .physical import write_phys_topo
    from .topdl import topdl_bytes

    write_inventory(exp, out)
    write_deter_files(exp, out, source)
    (out / "topo.xml").write_bytes(input_topdl)
    planned = topdl_bytes(exp.topology, planned=True)  # kinds and partitions are both decided by now
    (out / "annotated.xml").write_bytes(planned)
    (out / "partitioned.xml").write_bytes(planned)
    write_phys_topo(exp.topology, exp.partitioning.assignment, exp.options.project, exp.options.experiment, out,
                    pnode_types=exp.partitioning.pnode_types, site=exp.options.site,
                    pnet={pnode: net.pnet for pnode, net in exp.networks.items()})
    if image:
        from .picture import write_picture

        write_picture(exp.topology, out / "visualization.png")
