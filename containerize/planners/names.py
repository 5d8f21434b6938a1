"""Names that end up in paths, hosts files and interface names must be plain."""

from __future__ import annotations

import re

from ..errors import Collector
from ..model import Topology

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
PNODE_RE = re.compile(r"pnode-\d+")
ALLOWED = "letters, digits and '-', starting with a letter or digit, at most 63 characters"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))


def check_names(topo: Topology) -> None:
    errors = Collector()
    if not topo.nodes:
        errors.add("the topology has no nodes; add at least one node", topo.source)
    for node in topo.nodes.values():
        if not valid_name(node.name):
            errors.add(f"invalid node name {node.name!r}; use {ALLOWED}", topo.source, node.line)
        elif PNODE_RE.fullmatch(node.name):
            errors.add(f"node name {node.name!r} is reserved for physical nodes; rename it",
                       topo.source, node.line)
        for iface in node.interfaces:
            if iface.substrate not in topo.substrates:
                errors.add(f"node {node.name!r} has an interface on missing substrate {iface.substrate!r}",
                           topo.source, iface.line or node.line)
    for sub in topo.substrates.values():
        if not valid_name(sub.name):
            errors.add(f"invalid link or LAN name {sub.name!r}; use {ALLOWED}", topo.source, sub.line)
        elif sub.name in topo.nodes:
            errors.add(f"name {sub.name!r} is used for both a node and a link or LAN", topo.source, sub.line)
    errors.raise_if_any()
    _check_host_names(topo, errors)
    errors.raise_if_any()


def _check_host_names(topo: Topology, errors: Collector) -> None:
    """Every name in the experiment's /etc/hosts (NODE, NODE-SUBSTRATE) must stand for one address.
    Host names are case-insensitive, so 'A' and 'a' are the same host."""
    owner: dict[str, str] = {}
    for node in topo.nodes.values():
        names = [(node.name, f"node {node.name!r}")]
        names += [(f"{node.name}-{i.substrate}", f"node {node.name!r} on {i.substrate!r}") for i in node.interfaces]
        for name, what in names:
            first = owner.setdefault(name.lower(), what)
            if first != what:
                errors.add(f"host name {name!r} of {what} is also the host name of {first}; rename one of them",
                           topo.source, node.line)
                break  # one message per node
