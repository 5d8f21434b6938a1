"""One call that writes a whole experiment directory (into a fresh temporary directory)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from ..compiler import Experiment
from .deter import write_deter_files
from .inventory import write_inventory


def write_experiment(exp: Experiment, out: Path, source: Path, input_topdl: bytes, image: bool = True) -> None:
    """`input_topdl` is the input model as TopDL without container annotations, rendered before planning
    (DETER's converted.xml); topo.xml is the planned containers topology, as DETER's was."""
    from .physical import write_phys_topo
    from .topdl import write_topdl

    picture = None
    if image:  # Graphviz draws on the other core while the files below are written
        from .picture import write_picture

        picture = _Background(write_picture, exp.topology, out / "visualization.png")
        picture.start()
    try:
        write_inventory(exp, out)
        write_deter_files(exp, out, source)
        (out / "converted.xml").write_bytes(input_topdl)
        write_topdl(exp.topology, out / "annotated.xml", planned=True)  # kinds and partitions are decided by now
        shutil.copyfile(out / "annotated.xml", out / "partitioned.xml")  # the same bytes
        write_topdl(exp.topology, out / "topo.xml", planned=True, extra=containers_attributes(exp))
        write_phys_topo(exp.topology, exp.partitioning.assignment, exp.options.project, exp.options.experiment,
                        out, pnode_types=exp.partitioning.pnode_types, site=exp.options.site,
                        pnet={pnode: net.pnet for pnode, net in exp.networks.items()})
    finally:
        if picture is not None:
            picture.join()  # never leave Graphviz writing into a directory that is about to be removed
    if picture is not None and picture.error is not None:
        raise picture.error


class _Background(threading.Thread):
    """One call on another thread; its exception kept for the caller to raise after join()."""

    def __init__(self, work, *args):
        super().__init__(name="containerize-picture", daemon=True)
        self.work, self.args_, self.error = work, args, None

    def run(self) -> None:
        try:
            self.work(*self.args_)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            self.error = exc


def node_image(exp: Experiment, node) -> dict[str, str]:
    """What a node is made from, as containers:* attributes: a qemu node's image and architecture, an openvz
    node's template and disk space (the file's attribute, else the option, else the site key)."""
    options, attrs = exp.options, node.attributes
    if node.kind == "qemu":
        return {"containers:qemu_url": attrs.get("containers:qemu_url") or attrs.get("containers:maverick_url")
                or options.site.get("qemu_url", ""),
                "containers:qemu_arch": attrs.get("containers:qemu_arch") or options.site.get("qemu_arch", "")}
    if node.kind == "openvz":
        return {"containers:openvz_template": attrs.get("containers:openvz_template") or options.openvz_template
                or options.site.get("openvz_template", ""),
                "containers:openvz_diskspace": attrs.get("containers:openvz_diskspace") or options.openvz_diskspace
                or options.site.get("openvz_diskspace", "")}
    return {}


def containers_attributes(exp: Experiment) -> dict:
    """The planned containers topology beyond partitioned.xml (topo.xml): per node its image or template and
    disk size; per interface the VDE switch and port it plugs into (none for tc-only kinds)."""
    extra: dict = {}
    for node in exp.topology.nodes.values():
        image = node_image(exp, node)
        if image:
            extra[node.name] = image
        attachments = exp.networks[node.pnode].attachments
        for iface in node.interfaces:
            attach = attachments[(node.name, iface.ifname)]
            if attach["switch"] is not None:
                extra[(node.name, iface.name)] = {"containers:switch": attach["switch"],
                                                  "containers:port": str(attach["port"])}
    return extra
