"""Run the planners in order over one Topology: the pure middle of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .model import NO_ROUTING, ROUTING, Topology
from .options import Options
from .planners.addresses import assign_addresses, experiment_tag, fixed_subnets
from .planners.kinds import assign_kinds
from .planners.names import check_names
from .planners.partition import Partitioning, partition
from .planners.routes import plan_routes
from .planners.shaping import InterfaceShaping, plan_shaping
from .planners.switches import PnodeNetwork, plan_switches


@dataclass
class Experiment:
    """Everything the writers need; nothing here touches the filesystem."""

    topology: Topology
    options: Options
    tag: str
    partitioning: Partitioning
    shaping: list[InterfaceShaping]
    networks: dict[str, PnodeNetwork]
    crossing: list[str] = field(default_factory=list)

    @cached_property
    def pnode_index(self) -> dict[str, int]:
        return {pnode: index for index, pnode in enumerate(self.partitioning.assignment)}

    @property
    def name(self) -> str:
        return f"{self.options.experiment}.{self.options.project}"

    def pnode_place(self, pnode: str) -> tuple[str, str]:
        """(root directory, name prefix) of a pnode. Several local pnodes share one machine, so each
        pnode after the first gets its own root and prefix; a testbed pnode owns its machine."""
        root = self.options.site.get("pnode_root", "/var/containers")
        index = self.pnode_index[pnode]
        if self.options.site.get("target", "local") == "local" and index > 0:
            return f"{root}/pnodes/{pnode}", f"p{index}-"
        return root, ""

    def namespace(self, node: str, prefix: str = "") -> str:
        return f"{prefix}{node}.{self.options.experiment}.{self.options.project}"

    def lan_namespace(self, substrate: str, prefix: str = "") -> str:
        """The namespace of a LAN's kernel bridge (planners/switches.py bridged_lans): never a node's, whose
        names have no dot."""
        return f"{prefix}{substrate}.lan.{self.options.experiment}.{self.options.project}"


def check(topo: Topology) -> None:
    """The checks that need no planning (names, values, the subnets the file fixes): linear and cheap, so a
    huge input with a mistake fails in seconds. plan() runs them too unless told they passed."""
    check_names(topo)
    fixed_subnets(topo)


def choose_routing(topo: Topology, options: Options) -> str:
    """Topology.rtproto as planned: --routing, else what the file says; a TopDL file that says nothing gets
    Static (its author rarely means nodes that cannot reach each other), an ns2 file none, as on DETER.
    Sets it on the topology (so the planned TopDL files carry it) and says so when it was not the file's."""
    said = topo.rtproto
    if options.routing is not None:
        chosen = ROUTING[options.routing]
        if said is not None and said != chosen and not (chosen == "Static" and said == "Session"):
            topo.warnings.append(f"{topo.source}: --routing {options.routing} replaces the file's routing "
                                 f"({said}){'; its add-route routes are not used' if said == 'Manual' else ''}")
    elif said is not None:
        chosen = said
    elif topo.fmt == "topdl":
        chosen = "Static"
        topo.warnings.append(f"{topo.source}: the TopDL file names no routing (experiment attribute "
                             "containers:rtproto): static routes are computed, as ns2's `$ns rtproto Static`; "
                             "--routing none for none")
    else:
        chosen = NO_ROUTING
    topo.rtproto = chosen
    return chosen


def plan(topo: Topology, options: Options, *, checked: bool = False) -> Experiment:
    if not checked:
        check_names(topo)
    choose_routing(topo, options)
    assign_kinds(topo, options)
    parts = partition(topo, options)
    assign_addresses(topo, options.project, options.experiment)
    plan_routes(topo)
    shaping = plan_shaping(topo, options)
    networks, crossing = plan_switches(topo, parts.assignment, shaping, options)
    return Experiment(topo, options, experiment_tag(options.project, options.experiment), parts, shaping,
                      networks, crossing)
