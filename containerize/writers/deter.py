"""The DETER-compatible files of an experiment directory (what old tools and users read)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..compiler import Experiment
from ..planners.shaping import as_dict
from .inventory import HEADER, hosts_entries
from .yamlout import dump, write_text


def write_deter_files(exp: Experiment, out: Path, source: Path) -> None:
    topo, options = exp.topology, exp.options
    shutil.copyfile(source, out / ("experiment.tcl" if topo.fmt == "ns2" else "experiment.xml"))

    lines = [f"{e['address']}\t{' '.join(e['names'])}\n" for e in hosts_entries(exp)]
    (out / "hosts").write_text("".join(lines), encoding="utf-8")

    route_dir = out / "route"
    route_dir.mkdir()
    directory = os.open(route_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for node in topo.nodes.values():  # one file per node: open, write, close, names relative to route/
            write_text(node.name, "".join(f"{r.dest} {r.gateway}\n" for r in node.routes), dir_fd=directory)
    finally:
        os.close(directory)

    dump(exp.partitioning.assignment, out / "assignment", HEADER)
    dump([{"node": s.node, "interface": s.ifname, "substrate": s.substrate, "method": s.method,
           "outbound": as_dict(s.outbound), "inbound": as_dict(s.inbound)} for s in exp.shaping],
         out / "shaping.yaml", HEADER)
    dump({p: net.wirefilters for p, net in exp.networks.items()}, out / "wirefilters.yaml", HEADER)
    for pnode, net in exp.networks.items():
        dump({"switches": net.switches,
              "ports": [{"node": n, "interface": i, **a} for (n, i), a in net.attachments.items()]},
             out / "switch" / f"{pnode}.yaml", HEADER)
    (out / "ghosts").write_text("".join(f"{n.name}\n" for n in topo.nodes.values() if n.ghost),
                                encoding="utf-8")
    site = "".join(f"{key} = {value}\n" for key, value in sorted(options.site.items()))
    (out / "site.conf").write_text(f"[globals]\n{site}", encoding="utf-8")
    (out / "pid_eid").write_text(f"{options.project} {options.experiment}\n", encoding="utf-8")
    # DETER's per-experiment files that users' scripts read (docs/experiment-directory.md)
    dump(exp.partitioning.pnode_types, out / "pnode_types.yaml", HEADER)
    dump(options.qemu_prefer_users, out / "qemu_users.yaml", HEADER)
    dump({p: {"pnet": net.pnet, "uplinks": net.uplinks} for p, net in exp.networks.items()},
         out / "switch_extra.yaml", HEADER)
    (out / "openvz_guest_url").write_text(_line(options.site.get("openvz_guest_url", "")), encoding="utf-8")
    (out / "maverick_url").write_text(_line(options.site.get("maverick_url") or options.site.get("qemu_url", "")),
                                      encoding="utf-8")


def _line(value: str) -> str:
    return f"{value}\n" if value else ""
