"""`containerize annotate IN OUT`: set or clear node attributes in TopDL (what DETER's shopdl.py was for).

  containerize annotate IN.xml|IN.tcl OUT.xml [--type PATTERN KIND] [--partition PATTERN N]
                        [--pass PATTERN N] [--set PATTERN ATTR=VALUE] [--clear PATTERN ATTR]

Edits apply in the order given; PATTERN is one or more node-name globs separated by commas
(``r*``, ``a-[12],b-*``, ``*``), and must match at least one node. An ns2 input is converted to
TopDL first (the compiler's own reader and writer), so mixed-mode and hand-packed experiments need
no hand-edited XML. Everything else in a TopDL input is kept as it is; the output is re-indented.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from pathlib import Path

from lxml import etree

from ..errors import ContainerizeError
from ..model import KINDS
from .base import CommandParser

ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.-]*$")
SHORTCUTS = {"type": "containers:node_type", "partition": "containers:partition", "pass": "containers:PartitionPass"}



class _Edit(argparse.Action):
    """Collect (action, pattern, value) in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        edits = getattr(namespace, "edits", None) or []
        edits.append((self.dest, values[0], values[1]))
        namespace.edits = edits


def _local(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


def _kids(el, name: str) -> list:
    return [c for c in el if _local(c) == name]


def _text(el) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def load_document(path: Path) -> etree._Element:
    """The TopDL document of PATH as an lxml tree (an ns2 file is compiled to TopDL first)."""
    if not path.is_file():
        raise ContainerizeError("no such topology file", str(path))
    if path.suffix in (".tcl", ".ns"):
        from ..readers.ns2 import read_ns2
        from ..writers.topdl import topdl_bytes

        data = topdl_bytes(read_ns2(str(path)))
        return etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    from ..readers.topdl import _Reader, read_topdl

    read_topdl(str(path))  # every error of the input, with its line
    return _Reader(str(path)).load()


def computers(root) -> dict[str, etree._Element]:
    found = {}
    for el in root.iter():
        if _local(el) == "computer":
            name = _text(next(iter(_kids(el, "name")), None))
            if name:
                found[name] = el
    return found


def matching(names: list[str], pattern: str) -> list[str]:
    globs = [g.strip() for g in pattern.split(",") if g.strip()]
    if not globs:
        raise ContainerizeError(f"empty node pattern {pattern!r}")
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    if not chosen:
        raise ContainerizeError(f"node pattern {pattern!r} matches no node (nodes: {', '.join(names[:10])}"
                                f"{', ...' if len(names) > 10 else ''})")
    return chosen


def _attribute_elements(computer) -> list:
    """The computer's own <attribute> children that hold <attribute>NAME</attribute><value>."""
    return [a for a in _kids(computer, "attribute") if _kids(a, "attribute")]


def set_attribute(computer, name: str, value: str) -> None:
    for attr in _attribute_elements(computer):
        if _text(_kids(attr, "attribute")[0]) == name:
            values = _kids(attr, "value")
            if values:
                values[0].text = value
                for extra in values[0]:
                    values[0].remove(extra)
            else:
                etree.SubElement(attr, _tag(computer, "value")).text = value
            return
    attr = etree.Element(_tag(computer, "attribute"))
    etree.SubElement(attr, _tag(computer, "attribute")).text = name
    etree.SubElement(attr, _tag(computer, "value")).text = value
    existing = _attribute_elements(computer)
    if existing:
        existing[-1].addnext(attr)
    else:
        computer.append(attr)


def clear_attribute(computer, name: str) -> bool:
    removed = False
    for attr in _attribute_elements(computer):
        if _text(_kids(attr, "attribute")[0]) == name:
            computer.remove(attr)
            removed = True
    return removed


def _tag(computer, local: str) -> str:
    """LOCAL in the namespace of COMPUTER (TopDL files may or may not use one)."""
    tag = computer.tag
    return f"{tag.rpartition('}')[0]}}}{local}" if tag.startswith("{") else local


def check_value(action: str, value: str) -> tuple[str, str]:
    """(attribute, value) of one edit, checked."""
    if action == "set":
        name, sep, text = value.partition("=")
        if not sep or not ATTR_NAME.match(name):
            raise ContainerizeError(f"--set {value!r}: expected ATTR=VALUE with a name like containers:node_type")
        action, value = {v: k for k, v in SHORTCUTS.items()}.get(name, "set"), text
        if action == "set":
            return name, text
    if action == "clear":
        if not ATTR_NAME.match(value):
            raise ContainerizeError(f"--clear {value!r}: not an attribute name")
        return value, ""
    if action == "type" and value not in KINDS:
        raise ContainerizeError(f"node type {value!r}: expected one of {', '.join(KINDS)}")
    if action in ("partition", "pass") and not value.isdigit():
        raise ContainerizeError(f"{SHORTCUTS[action]} {value!r}: expected a whole number (0, 1, ...)")
    return SHORTCUTS[action], value


def annotate(root, edits: list[tuple[str, str, str]]) -> list[str]:
    """Apply EDITS to the document; returns one line per edit saying what it did."""
    nodes = computers(root)
    if not nodes:
        raise ContainerizeError("the topology has no <computer> elements")
    report = []
    for action, pattern, value in edits:
        name, text = check_value(action, value)
        chosen = matching(list(nodes), pattern)
        if action == "clear":
            cleared = [n for n in chosen if clear_attribute(nodes[n], name)]
            report.append(f"cleared {name} on {len(cleared)} of {len(chosen)} node(s) matching {pattern}")
        else:
            for node in chosen:
                set_attribute(nodes[node], name, text)
            report.append(f"set {name}={text} on {len(chosen)} node(s) matching {pattern}")
    return report


def annotate_parser() -> argparse.ArgumentParser:
    parser = CommandParser("annotate",
                           description="Set or clear node attributes of a TopDL file (or of an ns2 file converted to "
                                       "TopDL) for nodes chosen by name patterns; edits apply in order.")
    parser.add_argument("input", metavar="IN", help="TopDL file, or ns2 file (.tcl/.ns) to convert")
    parser.add_argument("output", metavar="OUT", help="TopDL file to write ('-' for standard output)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (also when it is IN)")
    parser.add_argument("--type", dest="type", nargs=2, action=_Edit, metavar=("PATTERN", "KIND"),
                        help=f"containers:node_type ({', '.join(KINDS)})")
    parser.add_argument("--partition", dest="partition", nargs=2, action=_Edit, metavar=("PATTERN", "N"),
                        help="containers:partition (hand packing: nodes with the same N share a pnode)")
    parser.add_argument("--pass", dest="pass", nargs=2, action=_Edit, metavar=("PATTERN", "N"),
                        help="containers:PartitionPass (the partitioning pass that packs these nodes)")
    parser.add_argument("--set", dest="set", nargs=2, action=_Edit, metavar=("PATTERN", "ATTR=VALUE"),
                        help="any attribute")
    parser.add_argument("--clear", dest="clear", nargs=2, action=_Edit, metavar=("PATTERN", "ATTR"),
                        help="remove an attribute")
    return parser


def run_annotate(argv: list[str]) -> int:
    args = annotate_parser().parse_args(argv)
    edits = getattr(args, "edits", None) or []
    root = load_document(Path(args.input))
    report = annotate(root, edits)
    etree.indent(root, space="  ")
    data = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out = Path(args.output)
        if not out.parent.is_dir():
            raise ContainerizeError(f"{out.parent}: no such directory")
        if out.exists() and not args.force:
            raise ContainerizeError(f"{out} already exists; pass --force to replace it, or name another OUT")
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    for line in report or ["no edits: converted only"]:
        print(line, file=sys.stderr)
    return 0
