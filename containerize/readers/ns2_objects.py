"""What an ns2 file creates while it runs (nodes, links and LANs, interfaces), and the checks of
the values it passes: the reader (ns2.py) builds these, then turns them into the Topology model."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..errors import ContainerizeError


@dataclass(eq=False, slots=True)
class _Obj:
    handle: str
    kind: str  # sim | node | link | lan | lanlink | void
    line: int | None = None
    index: int = 0  # creation index among objects of the same kind, for generated names
    name: str | None = None
    var: str | None = None  # the variable the name came from


@dataclass(eq=False, slots=True)
class _Node(_Obj):
    ifaces: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    os: str | None = None
    hardware: str | None = None
    startcmd: str | None = None
    ip: tuple | None = None  # (address, line) from tb-set-ip, applied when the file has run
    routes: list = field(default_factory=list)  # (destination object, next-hop node)


@dataclass(eq=False, slots=True)
class _Sub(_Obj):
    bandwidth: float | None = None
    delay: float = 0.0
    loss: float = 0.0
    queue: str | None = None
    netmask: str | None = None
    simplex: dict = field(default_factory=dict)  # _Node -> Shaping
    members: list = field(default_factory=list)  # _Iface


@dataclass(eq=False, slots=True)
class _Iface:
    node: _Node
    sub: _Sub
    line: int | None
    ip: str | None = None
    bandwidth: float | None = None
    delay: float | None = None
    loss: float | None = None


@dataclass(eq=False, slots=True)
class _LanLink(_Obj):
    lan: _Sub | None = None
    node: _Node | None = None


def _arity(usage: str) -> tuple[int, float]:
    """'node type ?args?' -> (2, inf): how many words a usage string allows."""
    optional = re.findall(r"\?([^?]*)\?", usage)
    required = re.sub(r"\?[^?]*\?", " ", usage).split()
    if "args" in required or "args" in optional:
        return len(required) - ("args" in required), float("inf")
    return len(required), len(required) + sum(len(group.split()) for group in optional)


def _wrong_args(shown: str, usage: str) -> ContainerizeError:
    return ContainerizeError(f'wrong # args: should be "{shown} {usage}"' if usage else
                             f'wrong # args: should be "{shown}"')


def _var_to_name(var: str) -> str:
    """DETER's rule, 'n(3)' -> 'n-3' ('(' becomes '-', ')' goes), made valid where that is plain:
    'host(1,2)' -> 'host-1-2', 'my_node' -> 'my-node'; a leading '::' is dropped."""
    name = var[2:] if var.startswith("::") else var
    if "(" in name:
        m = _ELEMENT.fullmatch(name)
        if m:
            name = f"{m.group(1)}-{m.group(2).replace(',', '-')}"
    return name.replace("_", "-")


_ELEMENT = re.compile(r"([^()]*)\((.*)\)", re.S)



def _text(data: bytes, source: str) -> str:
    """The file as text: UTF-8 (a BOM is fine), no NUL bytes. Anything else is not an ns2 file."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise ContainerizeError("the file holds a NUL byte, so it is not text; an ns2 topology is a Tcl script",
                                source, data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContainerizeError(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02X}); save it as UTF-8",
                                source, data.count(b"\n", 0, exc.start) + 1) from None


def _value(parse, text: str, cmd: str):
    try:
        return parse(text)
    except ValueError as exc:
        raise ContainerizeError(f"{cmd}: {exc}") from None


def _address(text: str, cmd: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ContainerizeError(f"{cmd}: {text!r} is not an IPv4 address") from None
