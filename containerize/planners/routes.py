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
    node_subs = {n.name: list(dict.fromkeys(i.substrate for i in n.interfaces)) for n in topo.nodes.values()}
    for node in topo.nodes.values():
        if len(node_subs[node.name]) > 1:
            for sub in node_subs[node.name]:
                routers_on[sub].append(node.name)  # node_subs holds each substrate once
    networks = {s.name: ipaddress.IPv4Network(s.network) for s in topo.substrates.values()}
    everything = _aggregates(list(networks.values()))
    block_of = {name: int(net.network_address) >> 24 for name, net in networks.items()}  # the /8 of each
    everything_blocks = [(block, int(block.network_address) >> 24) for block in everything]
    tree = _Tree.build(topo, routers_on, node_subs)
    if tree is not None:
        _static_tree(topo, tree, address, routers_on, node_subs, networks, block_of, everything_blocks)
        return

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

    def routes_of(node, mine: list[str]) -> list[Route] | None:
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
            return None
        counts = Counter(via.values())
        main_gateway = counts.most_common(1)[0][0]  # ties go to the gateway seen first
        wanted = {block_of[dest] for dest, gw in via.items() if gw == main_gateway}
        routes = [Route(str(block), main_gateway) for block, first in everything_blocks if first in wanted]
        for dest, gateway in via.items():
            if gateway != main_gateway:
                routes.append(Route(str(networks[dest]), gateway))
        return routes

    _route_nodes(topo, node_subs, routes_of)


def _route_nodes(topo: Topology, node_subs: dict[str, list[str]], routes_of) -> None:
    """Set each node's routes to ``routes_of(node, its substrates)`` (None: it has none). Nodes whose only
    substrate is the same route alike, so that is asked once per substrate."""
    shared: dict[str, list[Route]] = {}
    for node in topo.nodes.values():
        mine = node_subs[node.name]
        if not mine:
            continue
        if len(mine) == 1 and mine[0] in shared:
            node.routes = list(shared[mine[0]])
            continue
        routes = routes_of(node, mine)
        if routes is not None:
            node.routes = routes
        if len(mine) == 1:
            shared[mine[0]] = list(routes or [])


class _Tree:
    """The graph of substrates and routers (nodes on more than one substrate) when it has no cycle: every
    path is then unique, so the router a substrate reaches a destination through is the one whose side of
    the tree holds it. Depth-first from the first substrate of each component (the lowest index in it):
    ``order`` lists substrate indices in preorder, a vertex's subtree is ``order[start[v]:end[v]]``.
    Vertices: substrates 0..S-1 in file order, routers S.. in node order."""

    def __init__(self, size: int):
        self.parent = [-1] * size
        self.start = [0] * size
        self.end = [0] * size
        self.low = [size] * size  # lowest substrate index in the subtree
        self.component = [0] * size
        self.order: list[int] = []
        self.roots: list[int] = []  # per component: its root (also its lowest substrate index)

    @classmethod
    def build(cls, topo: Topology, routers_on: dict[str, list[str]], node_subs: dict[str, list[str]]):
        subs = list(topo.substrates)
        sub_id = {name: index for index, name in enumerate(subs)}
        routers = [name for name, mine in node_subs.items() if len(mine) > 1]
        router_id = {name: len(subs) + index for index, name in enumerate(routers)}
        adjacent = [[router_id[r] for r in routers_on[s]] for s in subs]
        adjacent += [[sub_id[s] for s in node_subs[r]] for r in routers]
        tree = cls(len(adjacent))
        seen = [False] * len(adjacent)
        count = len(subs)
        for root in range(count):
            if seen[root]:
                continue
            component = len(tree.roots)
            tree.roots.append(root)
            seen[root] = True
            stack = [(root, iter(adjacent[root]))]
            tree.start[root] = len(tree.order)
            tree.order.append(root)
            tree.low[root] = root
            tree.component[root] = component
            while stack:
                vertex, neighbours = stack[-1]
                for other in neighbours:
                    if other == tree.parent[vertex]:
                        continue
                    if seen[other]:
                        return None  # a cycle: more than one path somewhere
                    seen[other] = True
                    tree.parent[other] = vertex
                    tree.component[other] = component
                    tree.start[other] = len(tree.order)
                    if other < count:
                        tree.order.append(other)
                        tree.low[other] = other
                    stack.append((other, iter(adjacent[other])))
                    break
                else:
                    stack.pop()
                    tree.end[vertex] = len(tree.order)
                    if tree.parent[vertex] >= 0:
                        tree.low[tree.parent[vertex]] = min(tree.low[tree.parent[vertex]], tree.low[vertex])
        tree.sub_id, tree.router_id = sub_id, router_id
        return tree

    def behind(self, sub: int, router: int) -> tuple[int, int, list[int], list[int]]:
        """The destinations substrate SUB reaches through ROUTER on it: (how many, lowest index, and the
        two runs of ``order`` that hold them)."""
        if self.parent[router] == sub:  # down the tree: the router's subtree
            start, end = self.start[router], self.end[router]
            return end - start, self.low[router], [start, end], [end, end]
        root = self.roots[self.component[sub]]  # up the tree: the component but SUB's subtree
        first, last = self.start[root], self.end[root]
        size = last - first - (self.end[sub] - self.start[sub])
        return size, root, [first, self.start[sub]], [self.end[sub], last]


def _static_tree(topo: Topology, tree: _Tree, address, routers_on, node_subs, networks, block_of,
                 everything_blocks) -> None:
    """_static's routes when every path is unique (no cycle): the same routes, without a search per
    destination. Each destination is reached through exactly one (own substrate, router on it) pair:
    the router whose side of the tree holds it."""
    subs = list(topo.substrates)
    net_text = [str(networks[name]) for name in subs]
    blocks = [block_of[name] for name in subs]
    component_blocks: list[Counter] = [Counter() for _ in tree.roots]
    for index in tree.order:
        component_blocks[tree.component[index]][blocks[index]] += 1
    router_ids = {name: [tree.router_id[r] for r in routers] for name, routers in routers_on.items()}
    router_names = {vertex: name for name, vertex in tree.router_id.items()}
    order = tree.order

    def routes_of(node, mine: list[str]) -> list[Route] | None:
        me = tree.router_id.get(node.name, -1)
        gateways: dict[str, list] = {}  # gateway -> [destinations, lowest index, runs of order]
        for name in mine:
            sub = tree.sub_id[name]
            for router in router_ids[name]:
                if router == me:
                    continue
                size, low, run1, run2 = tree.behind(sub, router)
                if not size:
                    continue
                gateway = address[(router_names[router], name)]
                entry = gateways.get(gateway)
                if entry is None:
                    gateways[gateway] = [size, low, [run1, run2]]
                else:
                    entry[0] += size
                    entry[1] = min(entry[1], low)
                    entry[2] += [run1, run2]
        if not gateways:
            return None
        # the most used gateway; ties go to the one whose first destination comes first
        main_gateway = min(gateways, key=lambda gw: (-gateways[gw][0], gateways[gw][1]))
        others = []
        for gateway, (_, _, runs) in gateways.items():
            if gateway != main_gateway:
                for start, end in runs:
                    others += [(index, gateway) for index in order[start:end]]
        others.sort()
        reach = component_blocks[tree.component[tree.sub_id[mine[0]]]].copy()
        for name in mine:
            reach[block_of[name]] -= 1
        for index, _ in others:
            reach[blocks[index]] -= 1
        routes = [Route(str(block), main_gateway) for block, first in everything_blocks if reach[first] > 0]
        return routes + [Route(net_text[index], gateway) for index, gateway in others]

    _route_nodes(topo, node_subs, routes_of)


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
