"""Fast paths equal the general ones: static routes on cycle-free router graphs against the search (random
forests), and the TopDL text writer against the lxml tree."""

from __future__ import annotations

import random
from pathlib import Path

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


# The TopDL text writer equals the lxml tree it replaced, byte for byte.

INPUTS = Path(__file__).resolve().parent / "topology" / "input"
ODD = ["", " ", "a&b<c>d", "x\ry\nz\tw", "ü€😀", "]]>", "'\"", "\x7f\x85", "{{ x }}", "\x01", "\ud800", "\ufffe"]


def _read(path: Path) -> Topology:
    from containerize.readers.ns2 import read_ns2
    from containerize.readers.topdl import read_topdl

    return read_ns2(str(path)) if path.suffix in (".tcl", ".ns") else read_topdl(str(path))


def _same(topo: Topology, tmp_path: Path, **kwargs) -> None:
    from containerize.writers import topdl

    try:
        expected = topdl._tree_bytes(topo, kwargs.get("planned", False), kwargs.get("annotations", True),
                                     kwargs.get("extra"))
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            topdl.topdl_bytes(topo, **kwargs)
        return
    assert topdl.topdl_bytes(topo, **kwargs) == expected
    topdl.write_topdl(topo, tmp_path / "t.xml", **kwargs)
    assert (tmp_path / "t.xml").read_bytes() == expected


@pytest.mark.parametrize("path", sorted(p for p in INPUTS.iterdir() if p.suffix in (".tcl", ".ns", ".xml")),
                         ids=lambda p: p.name)
def test_topdl_text_equals_lxml(path, tmp_path):
    topo = _read(path)
    for planned in (False, True):
        for annotated in (False, True):
            _same(topo, tmp_path, planned=planned, annotations=annotated)


@pytest.mark.parametrize("seed", range(60))
def test_topdl_text_equals_lxml_odd_values(seed, tmp_path):
    rng = random.Random(seed)
    topo = _read(INPUTS / rng.choice(["routed.tcl", "commands.tcl", "topdl-star.xml", "emulab.tcl"]))
    for _ in range(3):
        what = rng.choice(["node", "sub", "iface", "extra"])
        value = rng.choice(ODD) + rng.choice(ODD)
        node = rng.choice(list(topo.nodes.values()))
        if what == "node":
            node.attributes[rng.choice(["k", value or "k"])] = value
        elif what == "sub":
            rng.choice(list(topo.substrates.values())).attributes["k"] = value
        elif what == "iface" and node.interfaces:
            node.interfaces[0].attributes["containers:x"] = value
        else:
            node.startcmd = value
    extra = {node.name: {"containers:port": rng.choice(ODD[:9])} for node in topo.nodes.values()}
    _same(topo, tmp_path, planned=True, extra=extra)
    _same(topo, tmp_path)


# yamlout's renderer equals the plain one it replaced (json's encoder per value, every level recursing).

def _reference_render(data, depth: int = 0) -> str:
    import json

    compact = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode
    pad = " " * (depth + 1)
    if depth < 2 and isinstance(data, dict) and data:
        items = [f"{pad}{compact(str(k))}: {_reference_render(v, depth + 1)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if depth < 2 and isinstance(data, list) and data:
        items = [f"{pad}{_reference_render(v, depth + 1)}" for v in data]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    return compact(data)


class _Str(str):
    pass


class _Int(int):
    pass


def test_yaml_render_equals_the_plain_encoder():
    from containerize.writers import yamlout

    rng = random.Random(5)
    atoms = ["", "a", "{{ x }}", "é", "\n", 0, 1, -5, 10**30, True, False, None, 1.5, float("inf"), float("nan"),
             -0.0, _Str("s"), _Int(3)]

    def gen(depth):
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.7:
            return [gen(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(["k", "node", 1, True, None, 2.5, "x{{", _Str("k")]): gen(depth + 1)
                for _ in range(rng.randint(0, 4))}

    for _ in range(5000):
        data = gen(0)
        assert yamlout._render(data) == _reference_render(data)
