"""Read a DETER/fedd TopDL file into the Topology model.

TopDL units: ``<capacity><rate>`` is kb/s, ``<latency><time>`` is ms, whatever the ``<kind>``
(max, average, ...). Each ``<substrates>`` element is one substrate and each ``<elements>``
element wraps computers; both may repeat. Only ``<computer>`` elements become nodes.

Interface values: DETER writes ``<capacity>``/``<latency>``/``loss`` on every interface, repeating
the substrate's values. Values equal to the substrate's are dropped as redundant; others become the
interface's node-to-substrate overrides. The attributes this project writes itself (see
``containerize.writers.topdl``) are exact and always win.

The parser never resolves entities, loads DTDs or touches the network, and any DOCTYPE that
declares entities or names an external DTD is refused (billion laughs, XXE).
"""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path

from lxml import etree

from ..errors import Collector, ContainerizeError, one_line, shown
from ..model import KINDS, NO_ROUTING, RTPROTOS, Interface, Node, Route, Shaping, Substrate, Topology
from ..units import MAX_BANDWIDTH, parse_disk_size, parse_loss
from .attributes import warn_near_miss

# Attributes with a meaning in the model; shared with the writer so both agree.
ATTR_LOSS = "loss"
ATTR_IP = "ip4_address"
ATTR_NETMASK = "ip4_netmask"
ATTR_MAC = "containers:mac"
ATTR_KIND = "containers:kind"  # substrate: link|lan when the member count would say otherwise
ATTR_FIXED_NETMASK = "containers:netmask"  # substrate: tb-set-netmask
ATTR_NETWORK = "containers:network"  # substrate: planned subnet
ATTR_OVERRIDE = ("containers:override_rate", "containers:override_latency", "containers:override_loss")
ATTR_SIMPLEX = ("containers:simplex_rate", "containers:simplex_latency", "containers:simplex_loss")
ATTR_NODE_TYPE = "containers:node_type"
ATTR_PARTITION = "containers:partition"
ATTR_PNODE = "containers:pnode"
ATTR_STARTUP = "startup"
ATTR_TYPE = "type"
ATTR_OSID = "osid"
ATTR_DISKSPACE = "containers:openvz_diskspace"
ATTR_RTPROTO = "containers:rtproto"  # experiment: Static, Session, Manual or none (ns2's `$ns rtproto`)
ATTR_ROUTES = "containers:routes"  # computer: its `add-route`s, "DEST NEXTHOP;DEST NEXTHOP" (Manual routing)
# Node attributes that must be whole numbers.
INT_ATTRS = (ATTR_PARTITION, "containers:PartitionPass")
MAX_DIGITS = 18
# Elements put where TopDL has no place for them, and where they belong.
MISPLACED = {
    "computer": "<computer> directly in <experiment>; computers belong inside <elements>",
    "substrate": "<substrate> in <experiment>; TopDL writes each link or LAN as <substrates>",
    "interface": "<interface> directly in <experiment>; interfaces belong inside a <computer>",
}

MAX_LATENCY_MS = 3600_000.0


def read_topdl(path) -> Topology:
    """Parse ``path`` (a TopDL experiment) into a Topology; raise ContainerizeError on bad input."""
    return _Reader(str(path)).read()


def _local(el) -> str:
    """Tag without namespace; '' for comments, entities and processing instructions."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


class _Grouped:
    """An element with its child elements grouped by local name, found in one pass: a computer or an
    interface is asked for a dozen kinds of children, and 100,000 computers must read in seconds."""

    __slots__ = ("groups", "sourceline")

    def __init__(self, el):
        self.sourceline = el.sourceline
        self.groups: dict[str, list] = {}
        for child in el.iterchildren(etree.Element):
            tag = child.tag
            self.groups.setdefault(tag[tag.rfind("}") + 1:], []).append(child)


def _kids(el, name: str | None = None) -> list:
    """Child elements (no comments or processing instructions), those named ``name`` in any namespace."""
    if isinstance(el, _Grouped):
        return [c for group in el.groups.values() for c in group] if name is None else el.groups.get(name, [])
    return list(el.iterchildren(etree.Element if name is None else "{*}" + name))


def _text(el) -> str:
    if el is None:
        return ""
    if len(el) == 0:  # no child elements: the text is all there is
        return (el.text or "").strip()
    return "".join(el.itertext()).strip()


def _first(el, name: str):
    if isinstance(el, _Grouped):
        found = el.groups.get(name)
        return found[0] if found else None
    return next(el.iterchildren("{*}" + name), None)


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.errors = Collector()
        self.topo = Topology(source=source, fmt="topdl")
        # per interface: DETER-style (bandwidth, delay, loss) and a simplex entry, settled in resolve()
        self.pending: list[tuple[Interface, tuple, Shaping | None]] = []
        self.explicit_kind: dict[str, tuple[str, int | None]] = {}
        self.renamed: dict[str, tuple[str, int | None]] = {}  # name in the file -> (name here, line)
        self.misspelled: set[str] = set()  # attribute names warned about

    # -- helpers ---------------------------------------------------------------------------------
    def fail(self, message: str, el=None) -> None:
        self.errors.add(message, self.source, el.sourceline if el is not None else None)

    def number(self, text: str, what: str, el, *, minimum: float | None = None, positive: bool = False):
        """A finite float, or None after recording an error naming ``what``."""
        try:
            if not text.isascii():
                raise ValueError(text)
            value = float(text)
        except ValueError:
            self.fail(f"{what} {shown(text)} is not a number", el)
            return None
        if not math.isfinite(value):
            self.fail(f"{what} {shown(text)} must be a finite number", el)
            return None
        if positive and value <= 0:
            self.fail(f"{what} {shown(text)} must be positive", el)
            return None
        if minimum is not None and value < minimum:
            self.fail(f"{what} {shown(text)} must not be negative", el)
            return None
        return value

    def rate(self, text: str, what: str, el) -> float | None:
        """kb/s text -> bit/s (multiplying as units.parse_bandwidth does, so values compare equal)."""
        value = self.number(text, what, el, positive=True)
        if value is not None and value * 1e3 > MAX_BANDWIDTH:
            self.fail(f"{what} {shown(text)} is out of range (at most {MAX_BANDWIDTH / 1e3:.0f} kb/s)", el)
            return None
        return None if value is None else value * 1e3

    def latency(self, text: str, what: str, el) -> float | None:
        """ms text -> seconds."""
        value = self.number(text, what, el, minimum=0.0)
        if value is None:
            return None
        if value > MAX_LATENCY_MS:
            self.fail(f"{what} {shown(text)} is out of range (0 to {MAX_LATENCY_MS:.0f} ms)", el)
            return None
        return value * 1e-3

    def loss(self, text: str, what: str, el) -> float | None:
        try:
            return parse_loss(text)
        except ValueError as exc:
            self.fail(f"{what}: {exc}", el)
            return None

    def only(self, parent, name: str, what: str):
        """The one ``<name>`` child of ``parent`` (None if there is none); two or more are an error."""
        found = _kids(parent, name)
        if len(found) > 1:
            self.fail(f"{what}: {len(found)} <{name}> elements where one is expected", found[1])
        return found[0] if found else None

    def capacity(self, parent, what: str) -> float | None:
        return self.measure(parent, what, "capacity", "rate", "kb/s", "capacity rate", self.rate)

    def latency_of(self, parent, what: str) -> float | None:
        return self.measure(parent, what, "latency", "time", "ms", "latency", self.latency)

    def measure(self, parent, what: str, outer: str, inner: str, unit: str, label: str, parse) -> float | None:
        """The one ``<outer><inner>TEXT</inner></outer>`` child of ``parent``, read by ``parse`` (None if absent)."""
        found = self.only(parent, outer, what)
        if found is None:
            return None
        value = _first(found, inner)
        if value is None or not _text(value):
            self.fail(f"{what}: <{outer}> has no <{inner}> ({unit})", found)
            return None
        return parse(_text(value), f"{what}: {label}", value)

    def attributes(self, parent, what: str) -> list[tuple[str, str, object]]:
        """(name, value, element) of each <attribute><attribute/><value/></attribute> child."""
        result = []
        for attr in _kids(parent, "attribute"):
            key = _text(_first(attr, "attribute"))
            if not key:
                self.fail(f"{what}: <attribute> without an attribute name", attr)
                continue
            result.append((key, _text(_first(attr, "value")), attr))
        return result

    def unknown(self, key: str, what: str, el) -> None:
        """An attribute with no meaning here: warn when it is a near miss of one that has."""
        if key.startswith("containers") or "_" in key or ":" in key:
            warn_near_miss(self.topo.warnings, self.misspelled, key, f"{self.source}:{el.sourceline}", what)

    def name_of(self, el, what: str) -> str | None:
        name = _text(self.only(el, "name", what))
        if not name:
            self.fail(f"{what} without a <name>", el)
            return None
        return self.plain(name, el)

    def new_name(self, el, kind: str, defined: dict) -> tuple[str, str] | None:
        """(name, what to call it in messages) of a new substrate or computer ``el``; None, the error
        recorded, when it has no name or one already ``defined``."""
        name = self.name_of(el, kind)
        if name is None:
            return None
        what = f"{kind} {shown(name)}"
        if name in defined:
            self.fail(f"duplicate {what} (first defined at line {defined[name].line})", el)
            return None
        return name, what

    def plain(self, name: str, el=None) -> str:
        """A TopDL name as the experiment names it: DETER's TopDL names may hold '_', which becomes '-' as it
        does in ns2 files (host, namespace and switch names hold letters, digits and '-')."""
        if "_" not in name:
            return name
        plain = name.replace("_", "-")
        if el is not None and name not in self.renamed:
            self.renamed[name] = (plain, el.sourceline)
        return plain

    # -- document --------------------------------------------------------------------------------
    def load(self):
        try:
            data = Path(self.source).read_bytes()
        except OSError as exc:
            raise ContainerizeError(f"cannot read TopDL file: {exc.strerror or exc}", self.source) from None
        # never expand entities, fetch anything or lift libxml2's size and depth limits
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            if re.search(rb"<!DOCTYPE[^>]*\[.*<!ENTITY", data[:1 << 20], re.S):  # a billion laughs, say why
                self._refuse_doctype(data)
            message = " ".join(str(exc.msg or exc).split())
            # libxml2's advice is for programmers (parser options), not for the file's author
            message = re.sub(r",? *(use XML_PARSE_HUGE option|see xmlCtxtSetMaxAmplification\.?)", "", message)
            message = re.sub(r"\s+,", ",", message)
            if message.startswith("Invalid bytes in character encoding"):
                message += " (save the file as UTF-8, or name its encoding in <?xml ... encoding=\"...\"?>)"
            last = data.rstrip().count(b"\n") + 1
            if data.strip() and exc.lineno and exc.lineno >= last and not data.rstrip().endswith(b"experiment>"):
                message += " (the file ends there: is it cut short?)"
            raise ContainerizeError(f"not a well-formed XML (TopDL) file: {one_line(message)}", self.source,
                                    exc.lineno) from None
        if root is None:
            raise ContainerizeError("not a TopDL file: the document is empty", self.source)
        info = root.getroottree().docinfo
        dtd = info.internalDTD
        if info.system_url or info.public_id or (dtd is not None and any(True for _ in dtd.iterentities())):
            self._refuse_doctype(data)
        include = next(root.iter("{http://www.w3.org/2001/XInclude}*"), None)
        if include is not None:
            raise ContainerizeError(f"<{_local(include)}> (XInclude) is not allowed: a TopDL file is read alone and "
                                    "includes are never followed; paste the content in", self.source,
                                    include.sourceline)
        if _local(root) != "experiment":
            raise ContainerizeError(f"not a TopDL file: the root element is <{_local(root) or root.tag}>, "
                                    "expected <experiment>", self.source, root.sourceline)
        return root

    def _refuse_doctype(self, data: bytes):
        offset = data.find(b"<!DOCTYPE")
        line = data.count(b"\n", 0, offset) + 1 if offset >= 0 else None
        raise ContainerizeError(
            "DOCTYPE with entity declarations or an external DTD is not allowed in TopDL files "
            "(entities are never expanded); remove the DOCTYPE", self.source, line)

    def read(self) -> Topology:
        root = self.load()
        version = _first(root, "version")
        if version is not None and _text(version) not in ("1.0", "1"):
            self.topo.warnings.append(f"{self.source}:{version.sourceline}: TopDL version "
                                      f"{_text(version)!r} read as 1.0")
        misplaced = [el for el in _kids(root) if _local(el) in MISPLACED]
        if misplaced:  # alone: what follows from it (missing substrates, no nodes) would only confuse
            raise ContainerizeError(MISPLACED[_local(misplaced[0])], self.source, misplaced[0].sourceline)
        for key, value, attr in self.attributes(root, "experiment"):
            if key == ATTR_RTPROTO:
                known = {p.lower(): p for p in (*RTPROTOS, NO_ROUTING)}
                if value.strip().lower() not in known:
                    self.fail(f"experiment attribute {ATTR_RTPROTO} {shown(value)}: expected one of "
                              f"{', '.join((*RTPROTOS, NO_ROUTING))}", attr)
                else:
                    self.topo.rtproto = known[value.strip().lower()]
            else:
                self.unknown(key, "experiment", attr)
        for sub_el in _kids(root, "substrates"):
            self.substrate(sub_el)
        for wrapper in _kids(root, "elements"):
            for el in _kids(wrapper):
                if _local(el) == "computer":
                    self.computer(el)
                else:
                    self.topo.warnings.append(f"{self.source}:{el.sourceline}: <{_local(el)}> element "
                                              "ignored; only <computer> elements become nodes")
        self.resolve()
        self.errors.raise_if_any()
        if self.renamed:
            (first, (plain, line)), more = next(iter(self.renamed.items())), len(self.renamed) - 1
            others = f" and {more} other name{'s' * (more != 1)} with '_'" if more else ""
            self.topo.warnings.append(f"{self.source}:{line}: {first!r} is named {plain!r}{others} ('_' becomes '-', "
                                      "as in ns2 files: host, namespace and switch names hold letters, digits and "
                                      "'-')")
        return self.topo

    # -- substrates ------------------------------------------------------------------------------
    def substrate(self, el) -> None:
        misplaced = [c for c in _kids(el) if _local(c) in ("computer", "interface")]
        if misplaced:
            self.fail(f"<{_local(misplaced[0])}> inside <substrates>; computers belong inside <elements>",
                      misplaced[0])
            return
        named = self.new_name(el, "substrate", self.topo.substrates)
        if named is None:
            return
        name, what = named
        sub = Substrate(name=name, line=el.sourceline)
        sub.bandwidth = self.capacity(el, what)
        sub.delay = self.latency_of(el, what) or 0.0
        for key, value, attr in self.attributes(el, what):
            if key == ATTR_LOSS:
                sub.loss = self.loss(value, f"{what}: loss", attr) or 0.0
            elif key == ATTR_KIND:
                if value not in ("link", "lan"):
                    self.fail(f"{what}: {ATTR_KIND} {shown(value)} must be 'link' or 'lan'", attr)
                else:
                    self.explicit_kind[name] = (value, attr.sourceline)
            elif key == ATTR_FIXED_NETMASK:
                sub.fixed_netmask = value
            elif key == ATTR_NETWORK:
                try:
                    sub.network = str(ipaddress.IPv4Network(value))
                except ValueError:
                    self.fail(f"{what}: {ATTR_NETWORK} {shown(value)} is not an IPv4 network (10.0.1.0/24)", attr)
            else:
                self.unknown(key, what, attr)
                sub.attributes[key] = value
        self.topo.substrates[name] = sub

    # -- computers -------------------------------------------------------------------------------
    def computer(self, el) -> None:
        el = _Grouped(el)
        named = self.new_name(el, "computer", self.topo.nodes)
        if named is None:
            return
        name, what = named
        node = Node(name=name, line=el.sourceline)
        for key, value, attr in self.attributes(el, what):
            node.attributes[key] = value  # every attribute is kept, mapped ones too
            if key in INT_ATTRS:
                digits = value.strip()
                if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_DIGITS):
                    self.fail(f"{what}: {key} {shown(value)} is not a non-negative integer (0, 1, 2, ... up to "
                              f"{MAX_DIGITS} digits)", attr)
                elif key == ATTR_PARTITION:
                    node.partition = int(digits)
            elif key == ATTR_DISKSPACE:
                try:
                    parse_disk_size(value)
                except ValueError as exc:
                    self.fail(f"{what}: {key} {exc}", attr)
            elif key == ATTR_NODE_TYPE:
                # unknown kinds stay in the attributes; the kinds planner reports them
                node.kind = value if value in KINDS else None
            elif key == ATTR_STARTUP:
                node.startcmd = value
            elif key == ATTR_TYPE:
                node.hardware = value or None
            elif key == ATTR_OSID:
                node.os = value or None
            elif key == ATTR_PNODE:
                node.pnode = value
            elif key == ATTR_ROUTES:
                for item in (part.split() for part in value.split(";") if part.strip()):
                    if len(item) != 2:
                        self.fail(f"{what}: {ATTR_ROUTES} {shown(value)}: expected DEST NEXTHOP[;DEST NEXTHOP...] "
                                  "(DEST a node, substrate:NAME or a network; NEXTHOP a node)", attr)
                        break
                    node.manual_routes.append(Route(dest=item[0], gateway=item[1]))
            else:
                self.unknown(key, what, attr)
        if node.os is None:
            # fedd writes the osid inside <os> as an attribute (or names the OS)
            for os_el in _kids(el, "os"):
                osid = dict((k, v) for k, v, _ in self.attributes(os_el, what)).get(ATTR_OSID)
                node.os = osid or _text(_first(os_el, "name")) or None
                if node.os:
                    node.attributes[ATTR_OSID] = node.os  # as if given directly, so writing keeps it
                    break
        for index, if_el in enumerate(_kids(el, "interface")):
            iface = self.interface(if_el, node, index)
            if iface is not None:
                node.interfaces.append(iface)
        self.topo.nodes[name] = node

    def interface(self, el, node: Node, index: int) -> Interface | None:
        el = _Grouped(el)
        what = f"computer {node.name!r}"
        subs = [self.plain(_text(s)) for s in _kids(el, "substrate")]
        if not subs or not subs[0]:
            self.fail(f"{what}: interface without a <substrate>", el)
            return None
        if len(subs) > 1:
            self.fail(f"{what}: interface names {len(subs)} substrates ({', '.join(subs)}); "
                      "use one interface per substrate", el)
            return None
        iface = Interface(node=node.name, substrate=subs[0], line=el.sourceline)
        iface.name = _text(_first(el, "name")) or f"inf{index:03d}"
        what = f"{what}: interface {iface.name!r}"
        for other in node.interfaces:
            if other.substrate == iface.substrate:
                self.fail(f"{what}: second interface on substrate {iface.substrate!r}", el)
                return None
            if other.name == iface.name:
                self.fail(f"{what}: duplicate interface name", el)
                return None
        deter_bw = self.capacity(el, what)
        deter_delay = self.latency_of(el, what)
        deter_loss = None
        override: list[float | None] = [None, None, None]
        simplex: list[float | None] = [None, None, None]
        has_simplex = False
        for key, value, attr in self.attributes(el, what):
            if key == ATTR_IP:
                try:
                    iface.ip = str(ipaddress.IPv4Address(value))
                except ValueError:
                    self.fail(f"{what}: {ATTR_IP} {shown(value)} is not an IPv4 address", attr)
            elif key == ATTR_NETMASK:
                if _valid_netmask(value):
                    iface.netmask = value
                else:
                    self.fail(f"{what}: {ATTR_NETMASK} {shown(value)} is not a netmask (255.255.255.0)", attr)
            elif key == ATTR_MAC:
                iface.mac = value
            elif key == ATTR_LOSS:
                deter_loss = self.loss(value, f"{what}: loss", attr)
            elif key in ATTR_OVERRIDE:
                pos = ATTR_OVERRIDE.index(key)
                override[pos] = self.shaping_value(pos, value, f"{what}: {key}", attr)
            elif key in ATTR_SIMPLEX:
                pos = ATTR_SIMPLEX.index(key)
                has_simplex = True
                simplex[pos] = self.shaping_value(pos, value, f"{what}: {key}", attr)
            else:
                self.unknown(key, what, attr)
                iface.attributes[key] = value
        iface.bandwidth, iface.delay, iface.loss = override
        direction = Shaping(simplex[0], simplex[1] or 0.0, simplex[2] or 0.0) if has_simplex else None
        self.pending.append((iface, (deter_bw, deter_delay, deter_loss), direction))
        return iface

    def shaping_value(self, pos: int, value: str, what: str, el) -> float | None:
        if pos == 0:
            return self.rate(value, what, el)
        if pos == 1:
            return self.latency(value, what, el)
        return self.loss(value, what, el)

    # -- cross references ------------------------------------------------------------------------
    def resolve(self) -> None:
        members: dict[str, list[Interface]] = {name: [] for name in self.topo.substrates}
        for iface, (bw, delay, loss), direction in self.pending:
            sub = self.topo.substrates.get(iface.substrate)
            if sub is None:
                if iface.substrate in self.topo.nodes:
                    itself = " (itself)" if iface.substrate == iface.node else ""
                    self.errors.add(f"computer {iface.node!r}: interface {iface.name!r} names computer "
                                    f"{iface.substrate!r}{itself} as its substrate; <substrate> names one of the "
                                    "<substrates>", self.source, iface.line)
                else:
                    self.errors.add(f"computer {iface.node!r}: interface {iface.name!r} references missing "
                                    f"substrate {shown(iface.substrate)}", self.source, iface.line)
                continue
            members[sub.name].append(iface)
            # DETER repeats the substrate's values on each interface: only differences override.
            if iface.bandwidth is None and bw is not None and bw != sub.bandwidth:
                iface.bandwidth = bw
            if iface.delay is None and delay is not None and delay != sub.delay:
                iface.delay = delay
            if iface.loss is None and loss is not None and loss != sub.loss:
                iface.loss = loss
            if direction is not None:
                sub.simplex[iface.node] = direction
        for name, sub in self.topo.substrates.items():
            count = len(members[name])
            sub.kind = "link" if count == 2 else "lan"
            if name in self.explicit_kind:
                kind, line = self.explicit_kind[name]
                if kind == "link" and count != 2:
                    self.errors.add(f"substrate {name!r}: {ATTR_KIND} is 'link' but {count} interfaces use it "
                                    "(a link has exactly 2)", self.source, line)
                sub.kind = kind
            if count == 0:
                self.topo.warnings.append(f"{self.source}:{sub.line}: substrate {name!r} has no interfaces")


def _valid_netmask(text: str) -> bool:
    """A dotted netmask: ones then zeros (a prefix length or host mask is not accepted)."""
    try:
        value = int(ipaddress.IPv4Address(text))
    except ValueError:
        return False
    zeros = ~value & 0xFFFFFFFF
    return zeros & (zeros + 1) == 0
