"""Names that end up in paths, hosts files and interface names must be plain."""

from __future__ import annotations

import re

from ..errors import Collector, shown
from ..model import Topology

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", re.ASCII)
PNODE_RE = re.compile(r"pnode-\d+", re.ASCII)
ALLOWED = "letters, digits and '-', starting with a letter or digit, at most 63 characters"
# Hardware types and OS ids end up unquoted in phys_topo.ns (tb-set-hardware $pnode TYPE): plain words only.
WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/-]{0,127}", re.ASCII)
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}", re.ASCII)
MAX_STARTCMD = 65536  # characters; a longer start command belongs in a script the command runs


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))


def valid_word(word: str, *, slash: bool = True) -> bool:
    """A hardware type, OS id or template name: letters, digits and . _ : + - (and / unless ``slash`` is off)."""
    return bool(WORD_RE.fullmatch(word)) and (slash or "/" not in word) and ".." not in word


def valid_user(user: str) -> bool:
    return bool(USER_RE.fullmatch(user))


def check_names(topo: Topology) -> None:
    errors = Collector()
    if not topo.nodes:
        skipped = next((w for w in topo.warnings if ": skipped " in w), None)
        hint = f" (note {skipped.split(': ', 1)[0]}: {skipped.split(': ', 1)[1]})" if skipped else ""
        errors.add(f"the topology has no nodes; add at least one node{hint}", topo.source)
    for node in topo.nodes.values():
        if not valid_name(node.name):
            errors.add(f"invalid node name {shown(node.name)}; use {ALLOWED}", topo.source, node.line)
        elif PNODE_RE.fullmatch(node.name):
            errors.add(f"node name {node.name!r} is reserved for physical nodes; rename it",
                       topo.source, node.line)
        for iface in node.interfaces:
            if iface.substrate not in topo.substrates:
                errors.add(f"node {node.name!r} has an interface on missing substrate {shown(iface.substrate)}",
                           topo.source, iface.line or node.line)
    for sub in topo.substrates.values():
        if not valid_name(sub.name):
            errors.add(f"invalid link or LAN name {shown(sub.name)}; use {ALLOWED}", topo.source, sub.line)
        elif sub.name in topo.nodes:
            errors.add(f"name {sub.name!r} is used for both a node and a link or LAN", topo.source, sub.line)
    errors.raise_if_any()
    _check_host_names(topo, errors)
    errors.raise_if_any()
    _check_values(topo, errors)
    errors.raise_if_any()


def _check_values(topo: Topology, errors: Collector) -> None:
    """Per-node values that are written into files the testbed runs: start commands, OS and hardware."""
    for node in topo.nodes.values():
        for what, value in (("OS", node.os), ("hardware type", node.hardware)):
            if value and not valid_word(value):
                errors.add(f"node {node.name!r}: {what} {shown(value)} is not a plain name; use letters, digits "
                           "and . _ : + - /", topo.source, node.line)
        if node.startcmd is not None:
            if len(node.startcmd) > MAX_STARTCMD:
                errors.add(f"node {node.name!r}: the start command has {len(node.startcmd)} characters, more than "
                           f"{MAX_STARTCMD}; put a long script in a file and start that", topo.source, node.line)
            elif "\0" in node.startcmd:
                errors.add(f"node {node.name!r}: the start command contains a NUL character; a command cannot "
                           "hold one", topo.source, node.line)


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
