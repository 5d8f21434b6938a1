"""VDE switches per pnode, the port of every interface, and where wirefilters sit.

Each pnode runs one switch per substrate that has a switched interface on it. A shaped
interface gets a small private switch and a wirefilter joining it to the substrate switch,
so the guest (tap or qemu) always plugs into a switch, and shaping never sits on the
substrate switch itself (a LAN is shaped per member, as DETER did).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Topology
from .kinds import switched_kinds
from .shaping import InterfaceShaping, as_dict

PRIVATE_PORTS = 4


@dataclass
class PnodeNetwork:
    switches: list[dict] = field(default_factory=list)
    wirefilters: list[dict] = field(default_factory=list)
    # (node, ifname) -> {"switch": id, "port": n, "tc": dict|None}
    attachments: dict[tuple[str, str], dict] = field(default_factory=dict)


def plan_switches(topo: Topology, assignment: dict[str, list[str]], shaping: list[InterfaceShaping],
                  options) -> tuple[dict[str, PnodeNetwork], list[str]]:
    """Returns the per-pnode network plan and the substrates that span more than one pnode."""
    switched = switched_kinds(options)
    shaping_of = {(s.node, s.ifname): s for s in shaping}
    sub_index = {name: i for i, name in enumerate(topo.substrates)}
    pnodes_of_sub: dict[str, set[str]] = {}
    plans: dict[str, PnodeNetwork] = {}
    for pnode, names in assignment.items():
        net = PnodeNetwork()
        sub_switch: dict[str, dict] = {}
        for guest_index, name in enumerate(names):
            node = topo.nodes[name]
            for iface in node.interfaces:
                pnodes_of_sub.setdefault(iface.substrate, set()).add(pnode)
                plan = shaping_of[(name, iface.ifname)]
                if node.kind not in switched:
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": None, "port": None, "tc": tc}
                    continue
                switch = sub_switch.get(iface.substrate)
                if switch is None:
                    switch = {"id": f"s{sub_index[iface.substrate]}", "substrate": iface.substrate,
                              "ports": 0, "role": "substrate"}
                    sub_switch[iface.substrate] = switch
                    net.switches.append(switch)
                switch["ports"] += 1
                port = switch["ports"]
                if plan.method == "wirefilter":
                    private = f"p{guest_index}-{iface.ifname[3:]}"
                    net.switches.append({"id": private, "substrate": iface.substrate,
                                         "ports": PRIVATE_PORTS, "role": "private"})
                    net.wirefilters.append({
                        "id": f"w{guest_index}-{iface.ifname[3:]}", "node": name, "interface": iface.ifname,
                        "left": private, "right": switch["id"], "right_port": port,
                        "left_to_right": as_dict(plan.outbound), "right_to_left": as_dict(plan.inbound),
                    })
                    net.attachments[(name, iface.ifname)] = {"switch": private, "port": 1, "tc": None}
                else:
                    tc = as_dict(plan.outbound) if plan.method == "tc" else None
                    net.attachments[(name, iface.ifname)] = {"switch": switch["id"], "port": port, "tc": tc}
        for switch in net.switches:
            if switch["role"] == "substrate":
                # room for the planned ports, cross-pnode plugs and a few hand-plugged monitors
                switch["ports"] = max(8, switch["ports"] + 4)
        plans[pnode] = net
    crossing = [name for name in topo.substrates if len(pnodes_of_sub.get(name, ())) > 1]
    for net in plans.values():
        for switch in net.switches:
            switch["crosses_pnodes"] = switch["substrate"] in crossing
    return plans, crossing
