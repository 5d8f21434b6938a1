"""Static routes on cycle-free router graphs (the fast path) equal the general search's, on random forests."""

from __future__ import annotations

import random

import pytest

from containerize.model import Interface, Node, Substrate, Topology
from containerize.planners import routes


def _forest(seed: int) -> Topology:
    rng = random.Random(seed)
    topo = Topology(source="random", fmt="ns2", rtproto="Static")
    count = rng.randint(1, 30)
    for index in range(count):
        block = rng.choice((10, 10, 10, 192))
        name = f"s{index}"
        topo.substrates[name] = Substrate(name, network=f"{block}.{index}.{rng.randint(0, 3)}.0/24")
    names = list(topo.substrates)
    order = names[:]
    rng.shuffle(order)
    nodes: list[tuple[str, list[str]]] = []
    # routers joining a random forest: each new substrate hangs off an earlier one through a router
    for position, sub in enumerate(order[1:], 1):
        if rng.random() < 0.15:
            continue  # a new component
        parent = order[rng.randrange(position)]
        joined = [parent, sub]
        nodes.append((f"r{position}", joined))
    # some routers join a third substrate that is still alone (keeps the graph a forest)
    for _ in range(rng.randint(0, 3)):
        if nodes:
            lonely = [s for s in names if not any(s in subs for _, subs in nodes)]
            if lonely:
                rng.choice(nodes)[1].append(rng.choice(lonely))
    for index in range(rng.randint(0, 40)):
        sub = rng.choice(names)
        nodes.append((f"h{index}", [sub] * rng.choice((1, 1, 2))))
    rng.shuffle(nodes)
    ip = 0
    for name, subs in nodes:
        node = Node(name)
        if rng.random() < 0.2 and len(subs) > 1:
            subs = subs + [subs[0]]  # two interfaces on one substrate
        for sub in subs:
            ip += 1
            node.interfaces.append(Interface(name, sub, ip=f"{topo.substrates[sub].network.split('.')[0]}.250."
                                                              f"{ip // 250}.{ip % 250 + 1}"))
        topo.nodes[name] = node
    return topo


def _routes(topo: Topology) -> dict:
    routes._static(topo)
    return {n.name: [(r.dest, r.gateway) for r in n.routes] for n in topo.nodes.values()}


@pytest.mark.parametrize("seed", range(300))
def test_tree_routes_equal_the_search(seed, monkeypatch):
    fast = _routes(_forest(seed))
    monkeypatch.setattr(routes._Tree, "build", classmethod(lambda cls, *args: None))
    assert fast == _routes(_forest(seed))
