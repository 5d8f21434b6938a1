"""Static routes so that every node reaches every other (rtproto Static), kept small.

The graph that matters is substrates joined by multi-homed nodes (routers). A breadth-first
search from every destination substrate gives, for every other substrate, its distance and
the router on it that is the next hop. A node then routes each foreign subnet through its
closest attached substrate; the most used gateway becomes one aggregate route covering the
whole experiment (one per /8 it uses, never 0.0.0.0/0), the others stay specific. A node with
one interface and one way out gets exactly one route (per /8).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, deque

from ..errors import Collector
from ..model import Route, Topology


def _aggregate(networks: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The smallest network covering all of them."""
    low = min(int(n.network_address) for n in networks)
    high = max(int(n.broadcast_address) for n in networks)
    prefix = 32 - (low ^ high).bit_length()
    return ipaddress.IPv4Network((low, prefix), strict=False)


def _aggregates(networks: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    """One covering network per /8 the experiment uses, so that fixed addresses in two blocks
    (10.x and 192.168.x) never make a 0.0.0.0/0 that would replace a node's own default route."""
    blocks: dict[int, list[ipaddress.IPv4Network]] = {}
    for network in networks:
        blocks.setdefault(int(network.network_address) >> 24, []).append(network)
    return [_aggregate(blocks[block]) for block in sorted(blocks)]


def plan_routes(topo: Topology) -> None:
    if topo.rtproto in ("Static", "Session"):
        _static(topo)
    elif topo.rtproto == "Manual":
        _manual(topo)


def _static(topo: Topology) -> None:
    address = {(i.node, i.substrate): i.ip for i in topo.interfaces()}
    routers_on: dict[str, list[str]] = {s: [] for s in topo.substrates}
    for node in topo.nodes.values():
        if len({i.substrate for i in node.interfaces}) > 1:
            for iface in node.interfaces:
                if node.name not in routers_on[iface.substrate]:
                    routers_on[iface.substrate].append(node.name)
    node_subs = {n.name: list(dict.fromkeys(i.substrate for i in n.interfaces)) for n in topo.nodes.values()}
    networks = {s.name: ipaddress.IPv4Network(s.network) for s in topo.substrates.values()}
    everything = _aggregates(list(networks.values()))
    block_of = {name: int(net.network_address) >> 24 for name, net in networks.items()}  # the /8 of each
    everything_blocks = [(block, int(block.network_address) >> 24) for block in everything]

    # next_hop[dest][sub] = (distance, router on `sub` towards dest)
    next_hop: dict[str, dict[str, tuple[int, str | None]]] = {}
    for dest in topo.substrates:
        seen = {dest: (0, None)}
        queue = deque([dest])
        while queue:
            sub = queue.popleft()
            dist = seen[sub][0]
            for router in routers_on[sub]:
                for other in node_subs[router]:
                    if other not in seen:
                        seen[other] = (dist + 1, router)
                        queue.append(other)
        next_hop[dest] = seen

    shared: dict[str, list[Route]] = {}  # one-substrate nodes on the same substrate route alike
    for node in topo.nodes.values():
        mine = node_subs[node.name]
        if not mine:
            continue
        if len(mine) == 1 and mine[0] in shared:
            node.routes = list(shared[mine[0]])
            continue
        via: dict[str, str] = {}  # destination substrate -> gateway address
        for dest in topo.substrates:
            if dest in mine:
                continue
            best = None
            for sub in mine:
                hop = next_hop[dest].get(sub)
                if hop and hop[1] != node.name and (best is None or hop[0] < best[0]):
                    best = (hop[0], sub, hop[1])
            if best:
                via[dest] = address[(best[2], best[1])]
        if not via:
            if len(mine) == 1:
                shared[mine[0]] = []
            continue
        counts = Counter(via.values())
        main_gateway = counts.most_common(1)[0][0]  # ties go to the gateway seen first
        wanted = {block_of[dest] for dest, gw in via.items() if gw == main_gateway}
        node.routes = [Route(str(block), main_gateway) for block, first in everything_blocks if first in wanted]
        for dest, gateway in via.items():
            if gateway != main_gateway:
                node.routes.append(Route(str(networks[dest]), gateway))
        if len(mine) == 1:
            shared[mine[0]] = list(node.routes)


def _manual(topo: Topology) -> None:
    errors = Collector()
    by_node = {n.name: n for n in topo.nodes.values()}
    for node in topo.nodes.values():
        node.routes = []
        mine = {i.substrate: i for i in node.interfaces}
        for route in node.manual_routes:
            if route.dest == node.name:
                errors.add(f"node {node.name!r}: route to {route.dest!r} leads to the node itself; a route names "
                           "another node, a link or LAN, or a network", topo.source, node.line)
                continue
            if route.gateway == node.name:
                errors.add(f"node {node.name!r}: route to {_shown_dest(route.dest)} names the node itself as the "
                           "next hop; the next hop is a neighbour on a shared link or LAN", topo.source, node.line)
                continue
            dest = _resolve_dest(topo, route.dest)
            gateway = route.gateway
            if gateway in by_node:
                shared = [i for i in by_node[gateway].interfaces if i.substrate in mine]
                if not shared:
                    errors.add(f"node {node.name!r}: route next hop {gateway!r} shares no link or LAN with it",
                               topo.source, node.line)
                    continue
                gateway = shared[0].ip
            if dest is None:
                errors.add(f"node {node.name!r}: route destination {route.dest!r} is not a node, link, LAN "
                           "or IPv4 network", topo.source, node.line)
                continue
            node.routes.append(Route(dest, gateway))
    errors.raise_if_any()
    _check_loops(topo, by_node, errors)
    errors.raise_if_any()


def _shown_dest(dest: str) -> str:
    return repr(dest.split(":", 1)[1]) if dest.startswith("substrate:") else repr(dest)


def _check_loops(topo: Topology, by_node: dict, errors: Collector) -> None:
    """Manual routes that send a destination round in a circle (a -> b -> a): packets would bounce until
    their TTL runs out. Follows each destination from node to next-hop node while they have a route for it."""
    hop: dict[tuple[str, str], str] = {}  # (node, destination as written) -> next-hop node
    for node in topo.nodes.values():
        for route in node.manual_routes:
            if route.gateway in by_node:
                hop.setdefault((node.name, route.dest), route.gateway)
    reported: set[tuple[str, frozenset]] = set()
    done: set[tuple[str, str]] = set()  # walked already: each (node, destination) is followed once
    for (start, dest) in hop:
        if (start, dest) in done:
            continue
        path = [start]
        seen = {start: 0}
        current = start
        while (current, dest) in hop:
            current = hop[(current, dest)]
            if current == dest or (current, dest) in done:
                break
            if current in seen:
                cycle = path[seen[current]:] + [current]
                key = (dest, frozenset(cycle))
                if key not in reported:
                    reported.add(key)
                    first = by_node[cycle[0]]
                    errors.add(f"node {cycle[0]!r}: manual routes to {_shown_dest(dest)} go round in a loop "
                               f"({' -> '.join(cycle)}); each next hop must lead towards the destination",
                               topo.source, first.line)
                break
            seen[current] = len(path)
            path.append(current)
        done.update((name, dest) for name in path)


def _resolve_dest(topo: Topology, dest: str) -> str | None:
    name = dest.split(":", 1)[1] if dest.startswith("substrate:") else dest
    if name in topo.substrates:
        return topo.substrates[name].network
    if name in topo.nodes and topo.nodes[name].interfaces:
        return f"{topo.nodes[name].interfaces[0].ip}/32"
    try:
        return str(ipaddress.IPv4Network(dest, strict=False))
    except ValueError:
        return None
