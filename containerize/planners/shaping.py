"""Per interface and direction: bandwidth, delay and loss, and where they are applied.

Switched kinds (site key switched_containers) are shaped by a VDE wirefilter between the
node and its substrate switch, unless end-node shaping is asked for; other kinds are shaped
by tc on the node's own interface. A substrate with bandwidth but no delay or loss is shaped
by tc (tbf) on every sender's egress even for switched kinds: same result, far fewer processes.
DETER's rule for switch shaping: every node-to-substrate hop carries half the node-to-node
delay and loss 1-sqrt(1-L), so that node to node (two hops) matches the file. End-node
shaping acts on egress only, so the sender's interface carries the whole node-to-node value.
A link between a wirefilter-shaped and a tc-shaped node is shaped entirely by the wirefilter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import as_bool
from ..model import Interface, Shaping, Substrate, Topology
from ..options import Options
from .kinds import switched_kinds


@dataclass
class InterfaceShaping:
    node: str
    ifname: str
    substrate: str
    method: str | None  # "wirefilter", "tc" or None (nothing to do)
    outbound: Shaping  # leaving the node
    inbound: Shaping  # arriving at the node (wirefilter only; tc cannot shape ingress)


def _half_loss(loss: float) -> float:
    return 1.0 - math.sqrt(1.0 - loss)


def _direction(sub: Substrate, iface: Interface, sender: str | None) -> Shaping:
    """Node-to-node behaviour of traffic sent by `sender` (None: the substrate's values)."""
    base = sub.simplex.get(sender) if sender else None
    if base is None:
        base = Shaping(sub.bandwidth, sub.delay, sub.loss)
    return Shaping(base.bandwidth, base.delay, base.loss)


def _hop(sub: Substrate, iface: Interface, node_to_node: Shaping) -> Shaping:
    """One node-to-switch hop: per-node LAN overrides win, otherwise half of node to node."""
    return Shaping(
        iface.bandwidth if iface.bandwidth is not None else node_to_node.bandwidth,
        iface.delay if iface.delay is not None else node_to_node.delay / 2.0,
        iface.loss if iface.loss is not None else _half_loss(node_to_node.loss),
    )


def plan_shaping(topo: Topology, options: Options) -> list[InterfaceShaping]:
    switched = switched_kinds(options)
    if options.end_node_shaping is None:
        end_node = not as_bool(options.site.get("switch_shaping", "true"))
    else:
        end_node = options.end_node_shaping
    members = topo.substrate_members()
    bandwidth_only = {
        sub.name for sub in topo.substrates.values()
        if not sub.delay and not sub.loss
        and all(not s.delay and not s.loss for s in sub.simplex.values())
        and all(not i.delay and not i.loss and i.bandwidth is None for i in members[sub.name])
    }
    plan = []
    for node in topo.nodes.values():
        for iface in node.interfaces:
            sub = topo.substrates[iface.substrate]
            # only a link's peer matters (listing a LAN's for each member is quadratic in its size)
            peers = [m.node for m in members[sub.name] if m.node != node.name] if sub.kind == "link" else []
            outbound_n2n = _direction(sub, iface, node.name)
            # Arriving traffic: for a link it is the peer's direction; on a LAN the substrate's.
            inbound_n2n = _direction(sub, iface, peers[0] if len(peers) == 1 else None)
            use_switch = node.kind in switched and not end_node
            if use_switch and sub.name in bandwidth_only:
                # No delay or loss anywhere on this substrate: a tbf on each sender's egress gives the
                # same bottleneck as two wirefilter hops, without a private switch and a wirefilter.
                outbound, inbound, method = Shaping(outbound_n2n.bandwidth), Shaping(), "tc"
            elif use_switch:
                outbound, inbound, method = _hop(sub, iface, outbound_n2n), _hop(sub, iface, inbound_n2n), \
                    "wirefilter"
            else:
                doubled = Shaping(iface.bandwidth, 2 * iface.delay if iface.delay is not None else None,
                                  1 - (1 - iface.loss) ** 2 if iface.loss is not None else None)
                outbound = Shaping(
                    doubled.bandwidth if doubled.bandwidth is not None else outbound_n2n.bandwidth,
                    doubled.delay if doubled.delay is not None else outbound_n2n.delay,
                    doubled.loss if doubled.loss is not None else outbound_n2n.loss)
                inbound, method = Shaping(), "tc"
            if outbound.is_null() and inbound.is_null():
                method = None
            plan.append(InterfaceShaping(node.name, iface.ifname, sub.name, method, outbound, inbound))
    _mixed_methods(topo, members, plan)
    return plan


def _combine(first: Shaping, second: Shaping) -> Shaping:
    """Two hops one after the other: the narrower bandwidth, delays added, losses compounded."""
    rates = [rate for rate in (first.bandwidth, second.bandwidth) if rate is not None]
    return Shaping(min(rates) if rates else None, first.delay + second.delay,
                   1.0 - (1.0 - first.loss) * (1.0 - second.loss))


def _mixed_methods(topo: Topology, members: dict, plan: list[InterfaceShaping]) -> None:
    """A wirefilter shapes both directions but tc only the sender's egress, so on a substrate whose
    members use both, the two halves of a hop would not add up. With two members the wirefilter
    takes both hops of each direction and the tc end does nothing; with more there is no exact
    answer, so say so."""
    entry = {(s.node, s.substrate): s for s in plan}
    for name, ifaces in members.items():
        methods = {entry[(i.node, name)].method for i in ifaces}
        if not {"wirefilter", "tc"} <= methods:
            continue
        sub = topo.substrates[name]
        if len(ifaces) == 2:
            wf, tc = sorted(ifaces, key=lambda i: entry[(i.node, name)].method != "wirefilter")
            there, back = _direction(sub, wf, wf.node), _direction(sub, tc, tc.node)
            shaped = entry[(wf.node, name)]
            shaped.outbound = _combine(_hop(sub, wf, there), _hop(sub, tc, there))
            shaped.inbound = _combine(_hop(sub, tc, back), _hop(sub, wf, back))
            idle = entry[(tc.node, name)]
            idle.method, idle.outbound, idle.inbound = None, Shaping(), Shaping()
        else:
            where = f"{topo.source}:{sub.line}" if sub.line else topo.source
            topo.warnings.append(
                f"{where}: {name} joins nodes shaped by VDE wirefilters and nodes shaped by tc on their own "
                "interfaces; delay and loss between the two groups are only approximate (use "
                "--end-node-shaping to shape every node alike)")


def as_dict(shaping: Shaping) -> dict:
    return {
        "bandwidth": int(round(shaping.bandwidth)) if shaping.bandwidth is not None else None,
        "delay_ms": round(shaping.delay * 1000.0, 6),
        "loss": round(shaping.loss, 9),
    }
